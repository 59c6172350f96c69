"""Training: determinism, bitwise-exact resume, NaN stop, and safe, explicit checkpoint loading."""

import json

import pytest
import torch

from diffusion_lite import models, training
from diffusion_lite.training import TrainConfig
from single_thread import one_thread  # noqa: F401  (autouse fixture: tiny MLPs)

CFG = dict(steps=24, batch_size=32, lr=3e-3, lr_warmup=5, progress=False, sigma_data=0.5)


def net(hidden=16, seed=0):
    return models.MLP(hidden=hidden, depth=1, emb_dim=8, generator=torch.Generator().manual_seed(seed))


def data(n, generator=None):
    return 0.5 * torch.randn(n, 2, generator=generator)


def assert_same_state(a, b):
    for (ka, va), (kb, vb) in zip(a.denoiser.state_dict().items(), b.denoiser.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    for va, vb in zip(a.ema.state_dict().values(), b.ema.state_dict().values()):
        assert torch.equal(va, vb)
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])
    assert a.history == b.history and a.step == b.step
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


def test_same_seed_same_run_other_seed_other_run():
    a = training.train(net(), data, TrainConfig(**CFG))
    b = training.train(net(), data, TrainConfig(**CFG))
    assert_same_state(a, b)
    c = training.train(net(), data, TrainConfig(**CFG | {"seed": 1}))
    assert c.history["loss"] != a.history["loss"]
    assert len(a.history["loss"]) == 24 and a.step == 24


def test_resume_is_bitwise_exact(tmp_path):
    full = training.train(net(), data, TrainConfig(**CFG))
    ck = tmp_path / "run"
    part = training.train(net(), data, TrainConfig(**CFG), checkpoint=ck, until=9)
    assert part.step == 9 and json.loads((tmp_path / "run.json").read_text())["step"] == 9
    resumed = training.train(net(seed=7), data, TrainConfig(**CFG), resume=ck)  # init overwritten
    assert_same_state(full, resumed)


def test_resume_with_a_tensor_dataset_and_labels(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(100, 2, generator=g), torch.randint(3, (100,), generator=g)
    cfg = TrainConfig(**CFG | {"label_dropout": 0.2, "null_label": 3})
    mk = lambda: models.MLP(hidden=16, depth=1, n_classes=3, generator=torch.Generator().manual_seed(0))  # noqa: E731
    full = training.train(mk(), x, cfg, labels=y)
    training.train(mk(), x, cfg, labels=y, checkpoint=tmp_path / "r", until=10)
    assert_same_state(full, training.train(mk(), x, cfg, labels=y, resume=tmp_path / "r"))


def test_resume_refuses_a_different_config(tmp_path):
    training.train(net(), data, TrainConfig(**CFG), checkpoint=tmp_path / "r", until=3)
    with pytest.raises(ValueError, match=r"config differs in \['lr'\]"):
        training.train(net(), data, TrainConfig(**CFG | {"lr": 1e-3}), resume=tmp_path / "r")


def test_training_learns_the_gaussian_optimum():
    """x0 ~ N(0, I): the optimal denoiser is x/(1 + σ²); the EMA net gets within 0.05 of it.

    (With σ_d = 0.5 the untrained EDM denoiser c_skip·x = x/(1 + 4σ²) is far from it.)"""
    cfg = TrainConfig(**CFG | {"steps": 300, "batch_size": 256})
    state = training.train(net(32), lambda n, generator: 2 * data(n, generator), cfg)
    x = torch.linspace(-1, 1, 21)[:, None].expand(21, 2)
    with torch.no_grad():
        got = state.ema(x, 0.5)
    assert not torch.allclose(x / (1 + 4 * 0.25), x / 1.25, atol=0.05)
    assert torch.allclose(got, x / 1.25, atol=0.05)
    assert sum(state.history["loss"][-30:]) < sum(state.history["loss"][:30])


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def poisoned(n, generator=None):
        calls["n"] += 1
        x = data(n, generator)
        return x * float("nan") if calls["n"] == 13 else x

    cfg = TrainConfig(**CFG | {"checkpoint_every": 5})
    with pytest.raises(training.TrainingDivergedError, match=r"step 13.*step 10\).*lower lr"):
        training.train(net(), poisoned, cfg, checkpoint=tmp_path / "r")
    kept = training.load_checkpoint(tmp_path / "r", net())
    assert kept.step == 10
    assert all(torch.isfinite(p).all() for p in kept.denoiser.parameters())


def test_loading_refuses_pickle_files(tmp_path):
    torch.save(net().state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="safetensors"):
        training.load_checkpoint(tmp_path / "w.pt", net())
    # A pickle renamed to .safetensors is caught by its first bytes, not its name.
    training.train(net(), data, TrainConfig(**CFG | {"steps": 2}), checkpoint=tmp_path / "r")
    torch.save(net().state_dict(), tmp_path / "r.safetensors")
    with pytest.raises(ValueError, match="pickle.*safetensors"):
        training.load_checkpoint(tmp_path / "r", net())


def test_shape_mismatch_is_reported_by_parameter_name(tmp_path):
    training.train(net(16), data, TrainConfig(**CFG | {"steps": 2}), checkpoint=tmp_path / "r")
    with pytest.raises(ValueError, match=r"model\.net\.inp\.weight: checkpoint \(16, 2\) vs model \(8, 2\)"):
        training.load_checkpoint(tmp_path / "r", net(8))


def test_corrupted_checkpoints_give_clear_errors(tmp_path):
    training.train(net(), data, TrainConfig(**CFG | {"steps": 2}), checkpoint=tmp_path / "r")
    st = tmp_path / "r.safetensors"
    st.write_bytes(st.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match="corrupted"):
        training.load_checkpoint(tmp_path / "r", net())
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupted"):
        training.load_checkpoint(tmp_path / "r", net())
    with pytest.raises(ValueError, match="no checkpoint"):
        training.load_checkpoint(tmp_path / "missing", net())


def test_config_errors_name_the_fix(capsys):
    with pytest.raises(ValueError, match="null_label"):
        TrainConfig(label_dropout=0.1)
    with pytest.raises(ValueError, match="choose 'lognormal' or 'loguniform'"):
        TrainConfig(sigma_dist="uniform")
    with pytest.raises(ValueError, match="choose one of"):
        training.train(net(), data, TrainConfig(**CFG | {"prediction": "score"}))
    with pytest.raises(TypeError, match="sampler"):
        training.train(net(), [1, 2], TrainConfig(**CFG))
    training.train(net(), data, TrainConfig(**CFG | {"steps": 3}))
    assert capsys.readouterr().err == ""  # progress=False: quiet


def test_default_2d_scales_the_config_to_the_data_and_takes_overrides():
    mlp, cfg = training.default_2d(1.5, prediction="eps", steps=7)
    assert isinstance(mlp, models.MLP) and mlp.dim == 2
    assert cfg.sigma_data == 1.5 and cfg.prediction == "eps" and cfg.steps == 7
    with pytest.raises(TypeError):
        training.default_2d(1.0, not_a_field=1)


def test_a_safetensors_header_starting_with_byte_0x80_is_not_taken_for_a_pickle(tmp_path):
    """The first 8 bytes are the header length: its low byte may be 0x80, like a pickle's."""
    from safetensors.torch import save_file

    from diffusion_lite import checkpoints

    for pad in range(300):
        save_file({"w": torch.ones(2)}, str(tmp_path / "r.safetensors"), metadata={"p": "x" * pad})
        if (tmp_path / "r.safetensors").read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length with low byte 0x80")
    assert torch.equal(checkpoints.read_tensors(tmp_path / "r")["w"], torch.ones(2))


def test_train_works_inside_no_grad():
    """A learner who calls train() inside a torch.no_grad() block (a sampling cell) gets the same
    run as outside it (before the fix, backward() failed there)."""
    data = torch.randn(512, 2, generator=torch.Generator().manual_seed(0)) * 0.3 + 1.0
    config = TrainConfig(steps=60, batch_size=64, lr=3e-3, progress=False)

    def _net():
        return models.MLP(dim=2, hidden=16, depth=1, generator=torch.Generator().manual_seed(1))

    with torch.no_grad():
        net = _net()
        inside = training.train(net, data, config).history["loss"]
    outside = training.train(_net(), data, config).history["loss"]
    assert torch.is_grad_enabled()
    assert inside == outside and len(inside) == 60
    assert any(not torch.equal(a, b) for a, b in zip(net.parameters(), _net().parameters()))
