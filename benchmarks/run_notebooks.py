"""Time every course notebook in a fresh kernel and publish the table (make bench).

Usage: python benchmarks/run_notebooks.py [--only NN ...] [--timeout SECONDS] [--no-readme]

Each notebook runs top to bottom in its own new kernel (nbclient, kernel ``python3``, working
directory ``notebooks/``). For each we record the wall time (kernel start-up included), the CPU
time of the kernel process (user + system, children included) and its peak memory: the
high-water mark of the resident set (``VmHWM`` from /proc on Linux; elsewhere the largest RSS
seen by polling every 0.1 s). Results are kept in ``benchmarks/notebooks.json`` so that
``--only 03`` re-times one chapter and keeps the others' rows; the Markdown table, with a
description of the machine, goes to ``benchmarks/notebooks.md`` and into README.md between
``<!-- bench:start -->`` and ``<!-- bench:end -->``. Budgets (COURSE_DESIGN): a notebook over 90 s
or all notebooks over 12 min are flagged in the table. Exit status 1 if any notebook failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_BUDGET_S = 90.0
TOTAL_BUDGET_S = 12 * 60.0
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass
class Result:
    """One notebook's run. ``error`` is empty when every cell ran."""

    notebook: str
    wall_s: float
    cpu_s: float
    peak_mib: float
    date: str
    error: str = ""


# ----------------------------------------------------------------------------- measuring

def _read_peak_and_cpu(pid: int) -> tuple[float, float]:
    """(peak RSS in MiB so far, CPU seconds so far) of a live process."""
    import psutil

    proc = psutil.Process(pid)
    t = proc.cpu_times()
    cpu = t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, cpu
    return proc.memory_info().rss / 2**20, cpu


class _Probe:
    """Follows the kernel process: peak memory and CPU time, read after every cell (and polled)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.peak_mib = 0.0
        self.cpu_s = 0.0
        self._stop = threading.Event()

    def sample(self, **_: object) -> None:
        if self.pid is None:
            return
        try:
            peak, cpu = _read_peak_and_cpu(self.pid)
        except Exception:  # the kernel may be gone (crash, shutdown): keep the last reading
            return
        self.peak_mib = max(self.peak_mib, peak)
        self.cpu_s = max(self.cpu_s, cpu)

    def poll(self) -> None:  # catches peaks inside a long cell where VmHWM does not exist
        while not self._stop.wait(0.1):
            self.sample()

    def stop(self) -> None:
        self._stop.set()


def run_notebook(path: Path, timeout: float) -> Result:
    """Execute one notebook in a fresh ``python3`` kernel and measure it."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    probe = _Probe()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=probe.sample, on_cell_error=probe.sample)

    def find_pid(**_: object) -> None:
        probe.pid = getattr(getattr(client.km, "provisioner", None), "pid", None)

    client.on_notebook_start = find_pid  # the kernel is up by then: nbclient's own hook
    poller = threading.Thread(target=probe.poll, daemon=True)
    error = ""
    start = time.perf_counter()
    poller.start()
    try:
        client.execute()
    except Exception as exc:  # CellExecutionError, timeout, dead kernel: report, keep going
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # drop terminal colours
        last = (text.splitlines() or [""])[-1]
        error = f"{type(exc).__name__}: {last[:200]}"
    wall = time.perf_counter() - start
    probe.stop()
    return Result(notebook=path.name, wall_s=wall, cpu_s=probe.cpu_s, peak_mib=probe.peak_mib,
                  date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"), error=error)


def describe_machine() -> dict[str, str]:
    """What the numbers were measured on (they mean little without it)."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    info = {
        "CPU": cpu,
        "cores": f"{usable} usable of {os.cpu_count()} logical",
        "Python": platform.python_version(),
        "OS": f"{platform.system()} {platform.release()}",
        "date (UTC)": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }
    try:
        import psutil

        info["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
        info["load average at start"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except (ImportError, OSError, AttributeError):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch threads"] = str(torch.get_num_threads())
    except ImportError:
        info["torch"] = "not installed"
    return info


# ----------------------------------------------------------------------------- publishing

def render_table(results: list[Result], machine: dict[str, str]) -> str:
    """Markdown: one row per notebook, a total row, budget flags, then the machine."""
    rows = ["| Notebook | Wall (s) | CPU (s) | Peak memory (MiB) | Result | Measured (UTC) |",
            "|---|---:|---:|---:|---|---|"]
    for r in sorted(results, key=lambda r: r.notebook):
        flags = []
        if r.error:
            flags.append(f"❌ failed ({r.error.replace('|', '/')})")
        if r.wall_s > NOTEBOOK_BUDGET_S:
            flags.append(f"⚠️ over the {NOTEBOOK_BUDGET_S:.0f} s budget")
        rows.append(f"| `{r.notebook}` | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.peak_mib:.0f} | "
                    f"{'; '.join(flags) or 'ok'} | {r.date} |")
    total = sum(r.wall_s for r in results)
    total_flag = (f"⚠️ over the {TOTAL_BUDGET_S / 60:.0f} min budget" if total > TOTAL_BUDGET_S
                  else f"within the {TOTAL_BUDGET_S / 60:.0f} min budget")
    rows.append(f"| **total** | **{total:.1f}** | **{sum(r.cpu_s for r in results):.1f}** | "
                f"{max((r.peak_mib for r in results), default=0):.0f} (max) | {total_flag} | |")
    machine_lines = [f"- {k}: {v}" for k, v in machine.items()]
    return "\n".join(
        rows
        + ["", f"Budgets: each notebook ≤ {NOTEBOOK_BUDGET_S:.0f} s, all notebooks ≤ "
           f"{TOTAL_BUDGET_S / 60:.0f} min (on 2 CPU cores). Wall time includes kernel start-up; "
           "a busy machine inflates it, CPU time much less.", "", "Machine:"]
        + machine_lines
    ) + "\n"


def update_readme(readme: Path, table: str) -> bool:
    """Put ``table`` between the bench markers in ``readme``; True if the file changed."""
    text = readme.read_text(encoding="utf-8")
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"{readme} needs exactly one {START} line followed by one {END} line "
                         "where the benchmark table goes")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{table}{END}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def merge(old: list[Result], new: list[Result], existing: set[str]) -> list[Result]:
    """New rows replace old rows of the same notebook; rows of deleted notebooks go."""
    by_name = {r.notebook: r for r in old if r.notebook in existing}
    by_name.update({r.notebook: r for r in new})
    return sorted(by_name.values(), key=lambda r: r.notebook)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NN", default=None,
                        help="run only the notebooks whose names start with NN_ (e.g. --only 01 03)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds a single cell may run before it counts as failed (600)")
    parser.add_argument("--notebooks", type=Path, default=REPO / "notebooks")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "notebooks.md")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")

    notebooks = sorted(p for p in args.notebooks.glob("*.ipynb") if not p.name.startswith("_"))
    if args.only:
        wanted = [n.rstrip("_") for n in args.only]
        notebooks = [p for p in notebooks if p.name.split("_", 1)[0] in wanted]
        if not notebooks:
            parser.error(f"no notebook in {args.notebooks} starts with {', '.join(wanted)}_")
    if not notebooks:
        parser.error(f"no notebooks in {args.notebooks}")

    os.environ.setdefault("MPLBACKEND", "Agg")
    machine = describe_machine()
    results = []
    for path in notebooks:
        print(f"bench: {path.name} ...", flush=True)
        r = run_notebook(path, args.timeout)
        print(f"bench: {path.name}: {r.wall_s:.1f} s wall, {r.cpu_s:.1f} s CPU, "
              f"{r.peak_mib:.0f} MiB peak{'  FAILED: ' + r.error if r.error else ''}", flush=True)
        results.append(r)

    store = args.out.with_suffix(".json")
    old = ([Result(**d) for d in json.loads(store.read_text())["results"]]
           if store.exists() else [])
    merged = merge(old, results, {p.name for p in args.notebooks.glob("*.ipynb")})
    store.write_text(json.dumps({"machine": machine, "results": [asdict(r) for r in merged]},
                                indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    table = render_table(merged, machine)
    args.out.write_text("# Notebook benchmark\n\nWritten by `make bench` "
                        "(benchmarks/run_notebooks.py).\n\n" + table, encoding="utf-8")
    print(f"bench: table written to {args.out}")
    if not args.no_readme:
        changed = update_readme(args.readme, table)
        print(f"bench: {args.readme} {'updated' if changed else 'already up to date'}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
