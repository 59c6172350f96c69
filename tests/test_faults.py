"""Checkpoints survive a kill at any instant: a training process is killed (SIGKILL) at random
moments, resumed from whatever it left, and must end bitwise identical to an uninterrupted run.

Cheap by design: a tiny MLP, 12 steps, a checkpoint after every step (so many kills land inside a
write), and the killed runs are forked from this process, so no child re-imports torch.
"""

import os
import random
import signal
import time

import pytest
import torch

from diffusion_lite import checkpoints, models, training
from diffusion_lite.training import TrainConfig
from single_thread import one_thread  # noqa: F401  (autouse fixture: tiny MLPs)

KILLS = 24
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
    if pid == 0:  # the child: train, then leave without running pytest's clean-up
        code = 0
        try:
            torch.set_num_threads(1)
            run(ck, resume=True)
        except BaseException:  # noqa: BLE001  (any failure is reported by the exit code)
            code = 1
        os._exit(code)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1), "the child crashed"
    return os.WIFSIGNALED(status)


def test_kill_at_random_instants_then_resume_is_bitwise_exact(tmp_path):
    reference = state_bytes(run(tmp_path / "reference", resume=False))
    t0 = time.perf_counter()
    run(tmp_path / "timing", resume=False)
    span = time.perf_counter() - t0  # one whole run, checkpoint writes included
    rng = random.Random(0)
    landed = 0
    for k in range(KILLS):
        ck = tmp_path / f"run{k}"
        # Kill once, and again while it resumes: the second kill hits a resumed run.
        for _ in range(2):
            landed += killed_run(ck, rng.uniform(0.05, 1.0) * span * 1.2)
        final = state_bytes(run(ck, resume=True))
        assert final.keys() == reference.keys()
        for name, want in reference.items():
            assert torch.equal(final[name], want), f"kill {k}: {name} differs after resume"
    assert landed >= 20, f"only {landed} kills landed before the run finished"


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
