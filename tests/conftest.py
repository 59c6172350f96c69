"""Shared test set-up: block the network in this process and in every child (notebook kernels)."""

import os
import pathlib
import sys

GUARD_DIR = pathlib.Path(__file__).parent / "_netguard"
REPO = pathlib.Path(__file__).resolve().parents[1]

# Children (nbval kernels, subprocesses) import the guard as sitecustomize via PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(GUARD_DIR)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)
# Keep matplotlib headless and quiet in kernels and tests.
os.environ.setdefault("MPLBACKEND", "Agg")
# Hugging Face libraries (diffusers in parity tests) must never try the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

# And this process imports it directly.
sys.path.insert(0, str(GUARD_DIR))
import sitecustomize as _netguard  # noqa: E402

if not hasattr(_netguard, "NetworkBlockedError"):  # another sitecustomize won the import
    import importlib.util

    _spec = importlib.util.spec_from_file_location("_netguard", GUARD_DIR / "sitecustomize.py")
    _netguard = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_netguard)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _unit_tests_may_train(monkeypatch):
    """`make test` warms the model cache, then sets DIFFUSION_LITE_NO_TRAIN so that a notebook that
    would train (a model missing from the warm-up) fails. Unit tests train tiny models in temporary
    caches on purpose: the switch is lifted for them (fixtures do not reach nbval's notebook items)."""
    monkeypatch.delenv("DIFFUSION_LITE_NO_TRAIN", raising=False)
