"""Nonsense is rejected where it enters, with an error that names the fix; the fast paths agree
with the plain ones."""

import json
import math

import pytest
import torch

from diffusion_lite import checkpoints, data, denoisers, metrics, mixtures, models, samplers, training
from diffusion_lite.training import TrainConfig
from single_thread import one_thread  # noqa: F401  (autouse fixture: tiny MLPs)

CFG = dict(steps=6, batch_size=16, lr=3e-3, lr_warmup=2, progress=False, sigma_data=0.5)


def net(seed=0):
    return models.MLP(hidden=8, depth=1, emb_dim=4, generator=torch.Generator().manual_seed(seed))


def blobs(n, generator=None):
    return 0.5 * torch.randn(n, 2, generator=generator)


# ----------------------------------------------------------------------------- TrainConfig
@pytest.mark.parametrize("field,value,match", [
    ("grad_clip", -1.0, "grad_clip must be a finite number > 0"),
    ("grad_clip", 0.0, "None for no clipping"),
    ("steps", 2.5, r"steps must be an int.*use steps=2|steps must be an int"),
    ("steps", True, "steps must be an int"),
    ("lr", float("nan"), "lr must be a finite number > 0"),
    ("lr", float("inf"), "lr must be a finite number > 0"),
    ("prediction", "score", "choose one of"),
    ("weighting", "snr", "unknown weighting"),
    ("label_dropout", 1.5, r"label_dropout must lie in \[0, 1\]"),
    ("lr_decay", "linear", "choose 'cosine' or 'constant'"),
    ("ema_decay", 1.0, r"ema_decay must be in \[0, 1\)"),
    ("sigma_data", 0.0, "sigma_data must be a finite number > 0"),
    ("batch_size", 0, "batch_size must be an int >= 1"),
    ("progress", "yes", "progress must be True, False or None"),
    ("p_std", -1.0, "p_std > 0"),
])
def test_every_config_field_is_validated(field, value, match):
    with pytest.raises((TypeError, ValueError), match=match):
        TrainConfig(**{field: value})


def test_bad_inputs_to_train_name_the_fix(tmp_path):
    x = torch.randn(20, 2)
    with pytest.raises(ValueError, match=r"labels must be a tensor of shape \(N,\) = \(20,\)"):
        training.train(net(), x, TrainConfig(**CFG), labels=torch.zeros(19, dtype=torch.long))
    with pytest.raises(TypeError, match=r"data is torch.float64.*data.to\(torch.float32\)"):
        training.train(net(), x.double(), TrainConfig(**CFG))
    with pytest.raises(TypeError, match="data is torch.float64"):
        training.train(net(), lambda n, generator=None: torch.randn(n, 2, dtype=torch.float64),
                       TrainConfig(**CFG))
    with pytest.raises(TypeError, match="integer class indices"):  # dropped labels are classes
        training.train(net(), x, TrainConfig(**CFG | {"label_dropout": 0.1, "null_label": 3}),
                       labels=torch.zeros(20))
    with pytest.raises(ValueError, match="one label .or condition. per sample"):
        training.train(net(), lambda n, generator=None: (torch.randn(n, 2), torch.zeros(n + 1)),
                       TrainConfig(**CFG))
    with pytest.raises(ValueError, match="no labels were given"):
        training.train(net(), x, TrainConfig(**CFG | {"label_dropout": 0.1, "null_label": 3}))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot write checkpoints"):
        training.train(net(), x, TrainConfig(**CFG), checkpoint=blocker / "run")  # before step 1


def test_a_finite_loss_that_explodes_stops_training():
    calls = {"n": 0}

    def exploding(n, generator=None):
        calls["n"] += 1
        scale = 1.0 if calls["n"] < 15 else 1e4  # the data blows up after 14 steps
        return scale * torch.randn(n, 2, generator=generator)

    cfg = TrainConfig(**CFG | {"steps": 30, "prediction": "x0"})
    with pytest.raises(training.TrainingDivergedError, match=r"exploded.*step 15.*lower lr"):
        training.train(net(), exploding, cfg)


def test_malformed_and_corrupted_checkpoints_give_clear_errors(tmp_path):
    ck = tmp_path / "r"
    training.train(net(), blobs, TrainConfig(**CFG), checkpoint=ck)
    js = tmp_path / "r.json"
    meta = json.loads(js.read_text())
    js.write_text(json.dumps({k: v for k, v in meta.items() if k != "step"}))
    with pytest.raises(ValueError, match="'step' must be an integer"):
        training.load_checkpoint(ck, net())
    js.unlink()  # only a readable copy: the header holds the metadata
    assert training.load_checkpoint(ck, net()).step == 6
    st = tmp_path / "r.safetensors"
    raw = bytearray(st.read_bytes())
    raw[-5] ^= 0x01  # one bit of one tensor, header intact
    st.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum"):
        training.load_checkpoint(ck, net())
    with pytest.raises(ValueError, match="'step' must be an integer"):
        checkpoints.write(tmp_path / "w", {"a": torch.ones(1)}, {"step": "3"})


# ----------------------------------------------------------------------------- generators, metrics
def test_generator_0_is_rejected_with_the_fix():
    match = r"torch.Generator\(\).manual_seed\(0\)"
    with pytest.raises(TypeError, match=match):
        data.moons(10, generator=0)
    with pytest.raises(TypeError, match=match):
        mixtures.ring(4).sample(10, generator=0)
    with pytest.raises(TypeError, match=match):
        samplers.sample_ddpm(lambda x, s: x, torch.randn(3, 2), torch.tensor([1.0, 0.0]), generator=0)


def test_metrics_reject_nonsense_parameters():
    x, y = torch.randn(20, 2), torch.randn(20, 2)
    with pytest.raises(ValueError, match="bandwidth must be a finite number > 0"):
        metrics.mmd2(x, y, bandwidth=float("nan"))
    for p in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="p must be a finite number > 0"):
            metrics.sliced_wasserstein(x, y, p=p)


def test_nfe_of_rejects_unknown_options():
    assert samplers.nfe_of("pc", 10, n_corrector=2) == 28
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['n_correctors'\]"):
        samplers.nfe_of("pc", 10, n_correctors=2)
    with pytest.raises(TypeError, match="unknown option"):
        samplers.steps_for_nfe("heun", 10, n_corrector=2)


# ----------------------------------------------------------------------------- hot path
@pytest.mark.parametrize("prediction", denoisers.PREDICTIONS)
def test_float_sigma_fast_path_equals_the_tensor_path(prediction):
    D = denoisers.Denoiser(net(), prediction, sigma_data=0.7)
    x = torch.randn(5, 2, dtype=torch.float32)
    for sigma in (0.0, 0.03, 1.0, 40.0):
        torch.testing.assert_close(D(x, sigma), D(x, torch.full((5,), sigma)), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(D(x, sigma), D(x, sigma))  # the kept coefficients change nothing
    with pytest.raises(ValueError, match="finite and >= 0"):
        D(x, -1.0)


@pytest.mark.parametrize("prediction", denoisers.PREDICTIONS)
@pytest.mark.parametrize("name", sorted(samplers.SAMPLERS))
def test_samplers_give_the_same_result_through_the_fast_path(name, prediction):
    """The wrapper hands D over as its parts (c_skip, x, c_out, F), folded into each update;
    a plain callable gets D itself. Same numbers, for every parametrisation."""
    D = denoisers.Denoiser(net(), prediction, sigma_data=1.0).double()
    plain = lambda x, s: D(x, s)  # noqa: E731  (no accepts_float_sigma: gets (B,) tensors)
    sigmas = torch.tensor([20.0, 5.0, 1.0, 0.3, 0.0], dtype=torch.float64)
    x = 20 * torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = samplers.sample(name, D, x, sigmas, generator=torch.Generator().manual_seed(1))
    b = samplers.sample(name, plain, x, sigmas, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_hooks_on_the_wrapper_still_fire_and_a_bad_network_shape_is_named():
    D = denoisers.Denoiser(net(), "edm")
    calls = []
    D.register_forward_hook(lambda module, args, out: calls.append(out.shape))
    samplers.sample_heun(D, torch.randn(3, 2), torch.tensor([2.0, 1.0, 0.5, 0.0]))
    assert len(calls) == samplers.nfe_of("heun", 3)  # hooked: called, not split into parts

    class Narrow(torch.nn.Module):
        def forward(self, x, c_noise, labels=None):
            return x[:, :1]

    with pytest.raises(ValueError, match=r"network inside the Denoiser must return F .*\(4, 1\)"):
        samplers.sample_euler(denoisers.Denoiser(Narrow()), torch.randn(4, 2),
                              torch.tensor([2.0, 1.0, 0.0]))


def test_the_output_shape_is_checked_on_every_call():
    calls = {"n": 0}

    def flaky(x, sigma):
        calls["n"] += 1
        return x if calls["n"] < 3 else x[:, :1]  # wrong from the third call on

    with pytest.raises(ValueError, match=r"got \(4, 1\) at NFE 3"):
        samplers.sample_euler(flaky, torch.randn(4, 2), torch.tensor([3.0, 2.0, 1.0, 0.5, 0.0]))


@pytest.mark.parametrize("name", sorted(samplers.SAMPLERS))
def test_a_nan_is_reported_at_the_step_where_it_appears(name):
    bad_sigma = 2.0

    def poisoned(x, sigma):
        s = float(sigma[0])
        out = x / (1 + s**2)
        return out * math.nan if s == bad_sigma else out

    sigmas = torch.tensor([8.0, 4.0, bad_sigma, 1.0, 0.5, 0.0], dtype=torch.float64)
    x = 8 * torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=rf"{name}: the denoiser returned NaN/inf at NFE \d+ "
                                         rf"\(σ = 2\), from a finite input"):
        samplers.sample(name, poisoned, x, sigmas, generator=torch.Generator().manual_seed(0))


def test_an_overflowing_update_is_told_apart_from_a_nan_denoiser():
    def huge(x, sigma):  # finite outputs of opposite signs: their difference overflows float32
        return torch.full_like(x, 3e38 if float(sigma[0]) == 2.0 else -3e38)

    with pytest.raises(ValueError, match="NFE 3.*denoiser's outputs were finite.*overflowed"):
        samplers.sample_euler(huge, torch.ones(2, 2), torch.tensor([2.0, 1.0, 0.5, 0.0]))


def test_a_subclass_that_overrides_forward_gets_tensor_sigmas():
    seen = []

    class Logged(denoisers.Denoiser):
        def forward(self, x, sigma, labels=None):
            seen.append(type(sigma))
            return super().forward(x, sigma.view(-1), labels)  # written for (B,) tensors

    assert denoisers.Denoiser(net()).accepts_float_sigma
    samplers.sample_euler(Logged(net()), torch.randn(3, 2), torch.tensor([2.0, 1.0, 0.0]))
    assert seen == [torch.Tensor, torch.Tensor]
