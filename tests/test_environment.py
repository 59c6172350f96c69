"""The pins live in pyproject.toml; environment.yml (conda/Binder) must repeat them exactly."""

import pathlib
import re

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_pins() -> dict[str, str]:
    text = (REPO / "pyproject.toml").read_text()
    block = text.split("[project]", 1)[1].split("[project.scripts]", 1)[0]
    pins = {}
    for spec in re.findall(r'^\s*"([^"]+)",?\s*$', block, flags=re.M):
        m = PIN.match(spec)
        assert m, f"pyproject.toml dependency {spec!r} is not pinned with =="
        pins[_norm(m[1])] = m[2]
    return pins


def environment_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for spec in pip_section:
        if spec.startswith(("-", "--")):
            continue
        m = PIN.match(spec)
        assert m, f"environment.yml pip entry {spec!r} is not pinned with =="
        pins[_norm(m[1])] = m[2]
    return pins


def test_pyproject_pins_everything_exactly():
    pins = pyproject_pins()
    assert pins["torch"] == "2.13.0", "torch must be pinned to exactly 2.13.0 (see TOOLING)"
    assert len(pins) >= 20


def test_environment_yml_matches_pyproject():
    py, env = pyproject_pins(), environment_pins()
    missing = sorted(set(py) - set(env))
    extra = sorted(set(env) - set(py))
    differ = sorted(f"{k}: pyproject {py[k]} vs environment.yml {env[k]}"
                    for k in set(py) & set(env) if py[k] != env[k])
    assert not (missing or extra or differ), (
        f"environment.yml disagrees with pyproject.toml; missing={missing} extra={extra} "
        f"differ={differ}. Edit pyproject.toml and copy the pins into environment.yml."
    )


def test_environment_yml_python_satisfies_requires_python():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    major, minor = (int(v) for v in py.split("=")[-1].split(".")[:2])
    assert (major, minor) >= (3, 10)


def test_installed_versions_are_the_pinned_ones():
    """The environment the tests run in is the one the pins describe."""
    from importlib.metadata import PackageNotFoundError, version

    wrong = []
    for name, pinned in pyproject_pins().items():
        try:
            got = version(name).split("+")[0]
        except PackageNotFoundError:
            wrong.append(f"{name} not installed")
            continue
        if got != pinned:
            wrong.append(f"{name}=={got} (pinned {pinned})")
    assert not wrong, "run `make test` to refresh .venv: " + ", ".join(wrong)
