"""Classifier-free guidance: w = 1 is conditional, w = 0 unconditional, the formula in between."""

import pytest
import torch

from diffusion_lite.guidance import GuidedDenoiser, cfg_combine, drop_labels
from diffusion_lite.unet import UNet, UNetConfig

K = 10


class LabelDenoiser(torch.nn.Module):
    """A label-aware stand-in with the contract D(x, σ, labels): a random tiny U-Net + EDM mixing."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = UNet(UNetConfig(base_channels=8, channel_mults=(1, 2), emb_dim=16, num_groups=4))
        for p in self.net.parameters():
            torch.nn.init.normal_(p, std=0.2)
        self.calls = []

    def forward(self, x, sigma, labels=None):
        self.calls.append(x.shape[0])
        s = sigma.reshape(-1, 1, 1, 1)
        return x / (1 + s**2) + self.net(x, sigma.log(), labels)


@pytest.fixture()
def setup():
    torch.manual_seed(1)
    return LabelDenoiser().eval(), torch.randn(4, 1, 8, 8), torch.tensor([0.3, 1.0, 2.0, 5.0]), \
        torch.tensor([0, 3, 7, 9])


@torch.no_grad()
def test_scale_one_is_conditional_and_zero_unconditional(setup):
    D, x, sigma, y = setup
    cond, uncond = D(x, sigma, y), D(x, sigma, torch.full_like(y, K))
    assert not torch.allclose(cond, uncond)
    # the wrapper batches both branches (2B), so agreement is to float32 round-off
    torch.testing.assert_close(GuidedDenoiser(D, y, 1.0, K)(x, sigma), cond, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(GuidedDenoiser(D, y, 0.0, K)(x, sigma), uncond, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_general_scale_matches_formula_in_one_batched_call(setup):
    D, x, sigma, y = setup
    cond, uncond = D(x, sigma, y), D(x, sigma, torch.full_like(y, K))
    D.calls.clear()
    got = GuidedDenoiser(D, y, 3.0, K)(x, sigma)
    assert D.calls == [8]  # both branches in one network call of batch 2B
    torch.testing.assert_close(got, uncond + 3.0 * (cond - uncond), atol=1e-5, rtol=1e-5)
    # the two-point limits of the same formula, run through the batched path


def test_scalar_sigma_and_batch_mismatch(setup):
    D, x, _, y = setup
    with torch.no_grad():
        out = GuidedDenoiser(D, y, 2.0, K)(x, 0.5)
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="labels must have shape"):
        GuidedDenoiser(D, y[:2], 2.0, K)(x, 0.5)


def test_cfg_combine_is_linear_extrapolation():
    u, c = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 0.0])
    torch.testing.assert_close(cfg_combine(u, c, 2.0), torch.tensor([5.0, -2.0]))
    with pytest.raises(ValueError, match="same shape"):
        cfg_combine(u, c[:1], 2.0)


def test_drop_labels_rate_and_values():
    y = torch.arange(10).repeat(2000)  # (20000,)
    out = drop_labels(y, 0.1, K, generator=torch.Generator().manual_seed(0))
    dropped = out == K
    # Binomial(20000, 0.1): standard deviation 0.0021, so ±0.01 is almost 5 standard deviations.
    assert abs(dropped.float().mean().item() - 0.1) < 0.01
    assert torch.equal(out[~dropped], y[~dropped])
    assert torch.equal(y, torch.arange(10).repeat(2000))  # input untouched
    assert torch.equal(drop_labels(y, 0.0, K), y)
    assert bool((drop_labels(y, 1.0, K) == K).all())


def test_drop_labels_deterministic_and_validated():
    y = torch.arange(10)
    a = drop_labels(y, 0.5, K, generator=torch.Generator().manual_seed(3))
    b = drop_labels(y, 0.5, K, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="p_uncond"):
        drop_labels(y, 1.5, K)
    with pytest.raises(ValueError, match="null_label"):
        drop_labels(y, 0.1, 0)
    with pytest.raises(TypeError, match="integer"):
        drop_labels(y.float(), 0.1, K)


def test_sample_guided_matches_the_sampler_on_the_guided_denoiser():
    from diffusion_lite import samplers, schedules
    from diffusion_lite.guidance import GuidedDenoiser, sample_guided

    # A label-dependent linear denoiser: D(x, σ | y) = x/(1 + σ²) + y/(10 (1 + σ²)).
    def den(x, sigma, labels):
        s2 = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, *[1] * (x.ndim - 1)) ** 2
        return (x + labels.to(x.dtype).reshape(-1, *[1] * (x.ndim - 1)) / 10) / (1 + s2)

    sig = schedules.karras_sigmas(6, sigma_min=0.01, sigma_max=10.0)
    labels = torch.tensor([0, 3, 7, 10])
    for w, churn in ((0.0, {}), (1.0, {}), (2.5, {"s_churn": 5.0, "s_tmin": 0.05, "s_tmax": 5.0})):
        got = sample_guided(den, labels, w, null_label=10, sigmas=sig, shape=(2,),
                            generator=torch.Generator().manual_seed(1), **churn)
        g = torch.Generator().manual_seed(1)
        x = float(sig[0]) * torch.randn(4, 2, generator=g)
        ref = samplers.sample("heun", GuidedDenoiser(den, labels, w, null_label=10), x, sig,
                              generator=g, **churn)
        assert torch.allclose(got, ref, atol=1e-6), w
    with pytest.raises(TypeError, match="1-D integer"):
        sample_guided(den, torch.zeros(2, 2, dtype=torch.long), 1.0, null_label=10, sigmas=sig,
                      shape=(2,))
