"""mode_coverage.mixture_fit: accepts true samples, rejects the negative controls a count misses."""

import pytest
import torch

from diffusion_lite import mixtures
from diffusion_lite.mode_coverage import mixture_fit, mode_coverage

N = 4000


def _draw(mix, seed):
    gen = torch.Generator().manual_seed(seed)
    x, labels = mix.sample(N, generator=gen, dtype=torch.float64, return_labels=True)
    return x, labels, mix.means[labels], gen


@pytest.mark.parametrize("mix", [mixtures.ring(), mixtures.lopsided(), mixtures.grid(3)],
                         ids=["ring", "lopsided", "grid"])
def test_true_samples_pass_and_recover_weights_and_spreads(mix):
    for seed in range(3):
        x, _, _, gen = _draw(mix, seed)
        fit = mixture_fit(mix, x, generator=gen)
        assert fit.passed, fit
        torch.testing.assert_close(torch.tensor(fit.weights, dtype=torch.float64), mix.weights,
                                   atol=0.03, rtol=0)
        assert all(abs(s - 1) < 0.25 for s in fit.spread), fit.spread
        assert abs(fit.log_lik_gap) < 0.1


def test_false_rejection_rate_is_about_alpha():
    ring = mixtures.ring()
    rejected = sum(not mixture_fit(ring, _draw(ring, 100 + s)[0], alpha=0.2,
                                   n_reference=20_000, generator=torch.Generator().manual_seed(s)
                                   ).passed for s in range(20))
    assert rejected <= 9  # Bonferroni is conservative: expect at most 4 of 20 at alpha = 0.2


@pytest.mark.parametrize("control, worst", [
    (lambda x, mu: mu + 0.1 * (x - mu), "spread"),  # modes collapsed (std / 10)
    (lambda x, mu: mu.clone(), "spread"),  # modes collapsed to points
    (lambda x, mu: mu + 2 * (x - mu), "spread"),  # modes twice too wide
    (lambda x, mu: x + torch.tensor([0.1, 0.0], dtype=x.dtype), "mean"),  # shifted
])
def test_negative_controls_are_rejected_though_every_mode_is_covered(control, worst):
    ring = mixtures.ring()
    x, _, mu, gen = _draw(ring, 7)
    bad = control(x, mu)
    assert mode_coverage(ring, bad, max_mahalanobis=30).covered == 8  # a count sees nothing wrong
    fit = mixture_fit(ring, bad, generator=gen)
    assert not fit.passed and (worst in fit.worst or "covariance" in fit.worst
                               or "likelihood" in fit.worst), fit


def test_dropped_and_reweighted_modes_are_rejected():
    lop = mixtures.lopsided()
    x, labels, _, gen = _draw(lop, 3)
    dropped = mixture_fit(lop, x[labels != 2], generator=gen)
    assert not dropped.passed and dropped.weights[2] < 0.01
    flat = torch.cat([x[labels == k][:300] for k in range(3)])  # equal weights, true shapes
    fit = mixture_fit(lop, flat, generator=gen)
    assert not fit.passed and "weight" in fit.worst


def test_collapsed_modes_raise_the_likelihood_two_sided():
    ring = mixtures.ring()
    x, _, mu, gen = _draw(ring, 1)
    assert mixture_fit(ring, mu + 0.5 * (x - mu), generator=gen).log_lik_gap > 0.3
    wide = mixture_fit(ring, mu + 1.5 * (x - mu), generator=gen)
    assert wide.log_lik_gap < -0.3
    assert abs(wide.pooled_spread - 2.25) < 4 * 2.25 * wide.pooled_spread_se


def test_bad_input_is_refused_with_the_fix():
    ring = mixtures.ring()
    with pytest.raises(ValueError, match="mixture has 2"):
        mixture_fit(ring, torch.zeros(100, 3))
    with pytest.raises(ValueError, match="at least 20"):
        mixture_fit(ring, torch.zeros(5, 2))
    with pytest.raises(ValueError, match="alpha"):
        mixture_fit(ring, torch.zeros(100, 2), alpha=1.5)


def test_high_dimensional_mixture_uses_variances_only_and_keeps_its_power():
    gen = torch.Generator().manual_seed(4)
    means = 2 * torch.randn(5, 16, generator=gen, dtype=torch.float64)
    mix = mixtures.GaussianMixture(torch.full((5,), 0.2, dtype=torch.float64), means,
                                   0.1 + torch.rand(5, 16, generator=gen, dtype=torch.float64))
    x, labels = mix.sample(3000, generator=gen, dtype=torch.float64, return_labels=True)
    assert mixture_fit(mix, x, generator=gen).passed
    mu = mix.means[labels]
    assert not mixture_fit(mix, mu + 1.2 * (x - mu), generator=gen).passed
