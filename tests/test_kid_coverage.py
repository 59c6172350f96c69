"""KID against torchmetrics, and mode coverage on hand-built sample sets."""

import pytest
import torch
from torch import nn

from diffusion_lite import mixtures
from diffusion_lite.kid import feature_kid, kid, polynomial_mmd2
from diffusion_lite.mode_coverage import mode_counts, mode_coverage


class _Flat(nn.Module):
    num_features = 16

    def forward(self, x):
        return x.reshape(len(x), -1).to(torch.float64)


def test_polynomial_mmd2_matches_torchmetrics_kid():
    from torchmetrics.image.kid import KernelInceptionDistance

    g = torch.Generator().manual_seed(0)
    real = torch.randn(60, 16, generator=g, dtype=torch.float64)
    fake = torch.randn(60, 16, generator=g, dtype=torch.float64) * 1.3 + 0.2
    tm = KernelInceptionDistance(feature=_Flat(), subsets=1, subset_size=60, normalize=False)
    tm.update(real, real=True)
    tm.update(fake, real=False)
    want = float(tm.compute()[0])
    assert polynomial_mmd2(real, fake) == pytest.approx(want, rel=1e-6, abs=1e-9)
    est = feature_kid(_Flat(), real, fake, subset_size=60, n_subsets=3)
    assert est.value == pytest.approx(want, rel=1e-6)  # every subset is the whole set


def test_kid_is_unbiased_near_zero_and_detects_a_shift():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same = kid(a, b, subset_size=200, n_subsets=20, generator=g)
    shifted = kid(a, b + 0.5, subset_size=200, n_subsets=20, generator=g)
    assert same.low < 0 < same.high
    assert shifted.low > same.high


def test_kid_rejects_nonsense():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="subset_size"):
        kid(x, x, subset_size=1)
    with pytest.raises(ValueError, match="n_subsets"):
        kid(x, x, n_subsets=0)


def test_mode_coverage_counts_hand_built_sets():
    mix = mixtures.ring(n_modes=4, radius=2.0, std=0.1)
    means = mix.means.to(torch.float32)
    # 30 at mode 0, 10 at mode 1, none at 2 and 3, and 5 halfway between modes 0 and 1.
    x = torch.cat([means[0].repeat(30, 1), means[1].repeat(10, 1),
                   ((means[0] + means[1]) / 2).repeat(5, 1)])
    counts, off = mode_counts(mix, x)
    assert counts.tolist() == [30, 10, 0, 0] and off == 5
    cov = mode_coverage(mix, x)
    assert cov.covered == 2 and cov.off_mode_rate == pytest.approx(5 / 45)
    # TV: ½(|30/45 − ¼| + |10/45 − ¼| + ¼ + ¼) + ½·5/45
    want = 0.5 * (abs(30 / 45 - 0.25) + abs(10 / 45 - 0.25) + 0.5) + 0.5 * 5 / 45
    assert cov.weight_error == pytest.approx(want)


def test_exact_samples_cover_every_mode_with_small_weight_error():
    mix = mixtures.GaussianMixture([0.5, 0.3, 0.15, 0.05], [[0, 0], [3, 0], [0, 3], [3, 3]], [0.04] * 4)
    g = torch.Generator().manual_seed(2)
    cov = mode_coverage(mix, mix.sample(4000, generator=g))
    assert cov.covered == 4 and cov.weight_error < 0.03 and cov.off_mode_rate < 0.02
    with pytest.raises(ValueError, match="dimensions"):
        mode_coverage(mix, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="min_fraction"):
        mode_coverage(mix, torch.zeros(5, 2), min_fraction=0)


def test_standardiser_uses_the_reference_statistics():
    from diffusion_lite.kid import standardiser

    g = torch.Generator().manual_seed(0)
    ref = 5.0 + 3.0 * torch.randn(500, 4, generator=g, dtype=torch.float64)
    z = standardiser(ref)
    out = z(ref)
    assert torch.allclose(out.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(out.std(0), torch.ones(4, dtype=torch.float64), atol=1e-6)
    other = torch.ones(3, 4, dtype=torch.float64)
    assert torch.allclose(z(other), (other - ref.mean(0)) / (ref.std(0) + 1e-6))
