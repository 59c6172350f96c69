"""Checkpoints survive a kill at any instant: a training process is killed (SIGKILL) at random
moments, resumed from whatever it left, and must end bitwise identical to an uninterrupted run.

Cheap by design: a tiny MLP, 12 steps, a checkpoint after every step (so many kills land inside a
write); the experiment runs in one fresh interpreter (``tests/fault_helper.py``) that forks the
killed runs, so no child re-imports torch and no pytest worker is forked.
"""

import json
import pathlib
import subprocess
import sys

import pytest

from diffusion_lite import checkpoints, training
from diffusion_lite.training import TrainConfig
from fault_helper import CFG, data, net
from single_thread import one_thread  # noqa: F401  (autouse fixture: tiny MLPs)

HELPER = pathlib.Path(__file__).with_name("fault_helper.py")


def test_kill_at_random_instants_then_resume_is_bitwise_exact(tmp_path):
    out = subprocess.run([sys.executable, str(HELPER), "kills", str(tmp_path), "20"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["differ"] == [], result["differ"][:10]
    assert result["landed"] >= 20, (f"only {result['landed']} of {result['kills']} kills in "
                                       f"{result['runs']} runs landed")


def test_a_kill_inside_the_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """The instant that matters most, made certain: the process dies after the new bytes are
    written but before the rename."""
    ck = tmp_path / "r"
    training.train(net(), data, TrainConfig(**{**CFG.to_dict(), "steps": 3}), checkpoint=ck)

    def die(*args):
        raise KeyboardInterrupt  # the rename never happens

    monkeypatch.setattr(checkpoints.os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        training.train(net(), data, TrainConfig(**{**CFG.to_dict(), "steps": 5}), checkpoint=ck,
                       resume=ck)
    monkeypatch.undo()
    assert checkpoints.read_json(ck)["step"] == 3
    assert training.load_checkpoint(ck, net()).step == 3
