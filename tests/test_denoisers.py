"""Wrappers: EDM formulas, conversions invert each other, the same prediction gives the same x̂₀."""

import pytest
import torch

from diffusion_lite import denoisers, models
from diffusion_lite.denoisers import PREDICTIONS

SIG = torch.tensor([0.01, 0.2, 1.0, 5.0, 80.0], dtype=torch.float64)


def test_edm_preconditioning_formulas():
    sd = 0.5
    c_skip, c_out, c_in, c_noise = denoisers.coefficients("edm", SIG, sd)
    # Karras et al. 2022, Table 1.
    torch.testing.assert_close(c_skip, sd**2 / (SIG**2 + sd**2))
    torch.testing.assert_close(c_out, SIG * sd / (SIG**2 + sd**2).sqrt())
    torch.testing.assert_close(c_in, 1 / (SIG**2 + sd**2).sqrt())
    torch.testing.assert_close(c_noise, SIG.log() / 4)


def test_edm_target_has_unit_variance_for_unit_variance_data():
    """EDM chose c_skip, c_out so the target F* has variance 1 when Var x0 = σ_d²."""
    g = torch.Generator().manual_seed(0)
    sd = 0.5
    x0 = sd * torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    eps = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    for s in (0.05, 0.5, 5.0):
        F = denoisers.target(x0, eps, s, "edm", sd)
        assert abs(F.var().item() - 1) < 0.02


def test_v_is_salimans_ho_in_the_vp_view():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(6, 2, generator=g, dtype=torch.float64)
    s = 0.7
    alpha, sigma_vp = (1 + s**2) ** -0.5, s * (1 + s**2) ** -0.5
    torch.testing.assert_close(denoisers.target(x0, eps, s, "v", 1.0), alpha * eps - sigma_vp * x0)
    torch.testing.assert_close(denoisers.target(x0, eps, s, "eps"), eps)
    torch.testing.assert_close(denoisers.target(x0, eps, s, "x0"), x0)
    torch.testing.assert_close(denoisers.target(x0, eps, s, "edm", 1.0), -(alpha * eps - sigma_vp * x0))


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_to_and_from_x0_invert_each_other(prediction):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    F = torch.randn(5, 3, generator=g, dtype=torch.float64)
    x0_hat = denoisers.to_x0(F, x, SIG, prediction)
    torch.testing.assert_close(denoisers.from_x0(x0_hat, x, SIG, prediction), F)
    torch.testing.assert_close(denoisers.to_x0(denoisers.from_x0(F, x, SIG, prediction), x, SIG, prediction), F)


def test_every_prediction_gives_the_same_x0_for_the_same_underlying_estimate():
    """Convert one x̂₀ into each parametrisation's F and back through each wrapper."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 2, generator=g, dtype=torch.float64)
    x0_hat = torch.randn(5, 2, generator=g, dtype=torch.float64)
    for prediction in PREDICTIONS:
        F = denoisers.from_x0(x0_hat, x, SIG, prediction)

        class Fixed(torch.nn.Module):  # a "network" returning this F whatever its scaled input
            def forward(self, xin, c_noise, labels=None):
                return F

        torch.testing.assert_close(denoisers.Denoiser(Fixed(), prediction)(x, SIG), x0_hat)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_regression_on_F_is_x0_regression_weighted_by_one_over_c_out_squared(prediction):
    g = torch.Generator().manual_seed(3)
    x0, eps, F = (torch.randn(5, 2, generator=g, dtype=torch.float64) for _ in range(3))
    x = x0 + SIG[:, None] * eps
    lhs = ((F - denoisers.target(x0, eps, SIG, prediction)) ** 2).sum(1)
    _, c_out, _, _ = denoisers.coefficients(prediction, SIG)
    rhs = ((denoisers.to_x0(F, x, SIG, prediction) - x0) ** 2).sum(1) / c_out**2
    torch.testing.assert_close(lhs, rhs)


def test_denoiser_wraps_a_network_and_accepts_scalar_or_batch_sigma():
    net = models.MLP(hidden=16, generator=torch.Generator().manual_seed(0))
    D = denoisers.Denoiser(net, "edm")
    x = torch.randn(4, 2)
    torch.testing.assert_close(D(x, 0.5), D(x, torch.full((4,), 0.5)))
    # EDM at tiny σ: c_skip → 1 and c_out → 0, so D(x, σ) → x.
    torch.testing.assert_close(D(x, 1e-6), x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="choose one of"):
        denoisers.Denoiser(net, "score")
    with pytest.raises(ValueError, match="shape"):
        D(x, torch.ones(3))


def test_guided_denoiser_interpolates_and_extrapolates():
    class Toy(torch.nn.Module):  # D(x, σ, y) = x + y, so the guidance formula is visible
        def forward(self, x, sigma, labels):
            return x + labels[:, None].to(x.dtype)

    x, y = torch.zeros(3, 2), torch.tensor([1, 2, 3])
    for w in (0.0, 1.0, 3.0):
        out = denoisers.GuidedDenoiser(Toy(), y, w, null_label=0)(x, 0.5)
        torch.testing.assert_close(out, w * y[:, None].float().expand(3, 2))
    with pytest.raises(ValueError, match="labels"):
        denoisers.GuidedDenoiser(Toy(), y[:2], 1.0, 0)(x, 0.5)
