"""Runs the fault experiments in a fresh interpreter, for tests/test_faults.py and
tests/test_cache_sharing.py.

The experiments fork processes and kill them. Forking a pytest-xdist worker would copy its
connection to the test controller into every child, so the tests start this script instead and
read the one JSON line it prints.

    python tests/fault_helper.py kills FOLDER N   # killed-and-resumed runs until N kills land
    python tests/fault_helper.py cache FOLDER OUT SLEEP   # pretrained() on the tiny cached model
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import sys
import time

import torch
from torch import nn

from diffusion_lite import checkpoints, models, pretrained, training
from diffusion_lite.training import TrainConfig

CFG = TrainConfig(steps=12, batch_size=16, lr=3e-3, lr_warmup=3, checkpoint_every=1,
                  progress=False, sigma_data=0.5)


def net():
    return models.MLP(hidden=8, depth=1, emb_dim=4, generator=torch.Generator().manual_seed(0))


def data(n, generator=None):
    return 0.5 * torch.randn(n, 2, generator=generator)


def run(ck, resume: bool):
    return training.train(net(), data, CFG, checkpoint=ck,
                          resume=ck if resume and checkpoints.paths(ck)[0].exists() else None)


def state_bytes(state) -> dict:
    """Everything a run is: weights, EMA, Adam moments, generator, history, step."""
    out = {f"m.{k}": v for k, v in state.denoiser.state_dict().items()}
    out |= {f"e.{k}": v for k, v in state.ema.state_dict().items()}
    for i, s in state.optimizer.state_dict()["state"].items():
        out |= {f"o.{i}.{k}": torch.as_tensor(v) for k, v in s.items()}
    out["rng"] = state.generator.get_state()
    out["loss"] = torch.tensor(state.history["loss"], dtype=torch.float64)
    out["step"] = torch.tensor(state.step)
    return out


def killed_run(ck, delay: float) -> bool:
    """Fork a child that trains (resuming what is there); SIGKILL it after ``delay`` seconds.
    True if the kill landed before the child finished."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run(ck, resume=True)
        except BaseException:  # noqa: BLE001  (reported through the exit code)
            code = 1
        os._exit(code)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1:
        raise RuntimeError("a training child crashed")
    return os.WIFSIGNALED(status)


def kills(folder: str, want: int) -> dict:
    """Runs killed twice each at random instants (the second time while it resumes), then resumed
    to the end and compared bitwise with an uninterrupted run; repeated until ``want`` kills have
    landed before their child finished (at most 4 * want runs).

    The instants are drawn relative to a running estimate of one run's length, started from a
    timed run and corrected after every kill (shorter when a child finished before its kill,
    slightly longer when the kill landed), so a machine whose load changes (other test workers)
    still sees kills spread over whole runs rather than all arriving after the end."""
    reference = state_bytes(run(os.path.join(folder, "reference"), resume=False))
    t0 = time.perf_counter()
    run(os.path.join(folder, "timing"), resume=False)
    span = time.perf_counter() - t0  # one whole run, checkpoint writes included
    rng, landed, kills_made, differ, k = random.Random(0), 0, 0, [], 0
    while landed < want and k < 4 * want:
        ck = os.path.join(folder, f"run{k}")
        for _ in range(2):
            hit = killed_run(ck, rng.uniform(0.05, 1.0) * span * 1.2)
            landed, kills_made = landed + hit, kills_made + 1
            span *= 1.05 if hit else 0.8  # settles where about 4 kills in 5 land
        final = state_bytes(run(ck, resume=True))
        differ += [f"run {k}: {name}" for name, want_ in reference.items()
                   if name not in final or not torch.equal(final[name], want_)]
        k += 1
    return {"landed": landed, "kills": kills_made, "runs": k, "differ": differ}


# ----------------------------------------------------------------------------- the tiny cached model
@dataclasses.dataclass(frozen=True)
class TinyConfig:
    width: int = 3      # output features of the one linear layer
    seed: int = 0       # initial weights
    sleep: float = 0.0  # seconds "training" takes (long enough for a second process to arrive)


ARCH = {"extra": 0}  # lets a test change the built architecture without changing the cache key


def build(cfg: TinyConfig) -> nn.Module:
    return nn.Linear(2, cfg.width + ARCH["extra"])


def train(cfg: TinyConfig):
    time.sleep(cfg.sleep)
    torch.manual_seed(cfg.seed)
    return build(cfg), {"trained_by": os.getpid()}


pretrained.register("tiny_cache_test", pretrained.Entry(TinyConfig(), build, train,
                                                        lambda: "tiny data v1"))


def cache(folder: str, out: str, sleep: float) -> None:
    os.environ["DIFFUSION_LITE_CACHE"] = folder
    with open(out, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        m = pretrained.pretrained("tiny_cache_test", TinyConfig(sleep=sleep))
        print("weight", m.weight.flatten().tolist(), m.pretrained_info["trained_by"])


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "kills":
        print(json.dumps(kills(sys.argv[2], int(sys.argv[3]))))
    elif sys.argv[1] == "cache":
        cache(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(f"unknown experiment {sys.argv[1]!r}; choose 'kills' or 'cache'")
