"""Distribution metrics against trusted libraries (POT, prdc, torchmetrics) and direct references."""

import math

import numpy as np
import ot
import pytest
import torch
from prdc import compute_prdc
from torchmetrics.image.fid import FrechetInceptionDistance

from diffusion_lite import metrics, uncertainty
from single_thread import one_thread  # noqa: F401  (autouse fixture)


def _sets(n=120, m=100, d=3, shift=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = 1.3 * torch.randn(m, d, generator=g, dtype=torch.float64) + shift
    return x, y


# ----- MMD --------------------------------------------------------------------------------------

def _mmd2_loops(x, y, h):
    """The estimator written as the double sums of Gretton et al., with Python loops."""
    k = lambda a, b: float(np.exp(-np.sum((a - b) ** 2) / (2 * h * h)))  # noqa: E731
    x, y = x.numpy(), y.numpy()
    n, m = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return sxx + syy - 2 * sxy


def test_mmd2_matches_direct_double_sum():
    x, y = _sets(40, 30)
    h = metrics.median_bandwidth(x, y)
    pooled = torch.cat([x, y]).numpy()
    dists = np.sqrt(((pooled[:, None] - pooled[None]) ** 2).sum(-1))
    assert np.isclose(h, np.median(dists[~np.eye(len(pooled), dtype=bool)]))
    assert np.isclose(metrics.mmd2(x, y), _mmd2_loops(x, y, h), rtol=1e-10)
    assert np.isclose(metrics.mmd2(x, y, bandwidth=0.7), _mmd2_loops(x, y, 0.7), rtol=1e-10)


def test_mmd2_is_unbiased_under_the_null():
    g = torch.Generator().manual_seed(3)
    vals = [metrics.mmd2(torch.randn(20, 2, generator=g), torch.randn(20, 2, generator=g),
                         bandwidth=1.0) for _ in range(400)]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals))
    assert min(vals) < 0  # an unbiased estimator of 0 must go negative sometimes


# ----- sliced Wasserstein -------------------------------------------------------------------------

@pytest.mark.parametrize("n,m,p", [(100, 100, 2), (120, 70, 2), (50, 80, 1)])
def test_sliced_wasserstein_matches_pot(n, m, p):
    x, y = _sets(n, m, d=4)
    theta = metrics.random_projections(4, 64, generator=torch.Generator().manual_seed(1))
    ours = metrics.sliced_wasserstein(x, y, projections=theta, p=p)
    theirs = ot.sliced_wasserstein_distance(x.numpy(), y.numpy(), projections=theta.numpy(), p=p)
    assert np.isclose(ours, float(theirs), rtol=1e-9)


def test_random_projections_are_unit_and_seeded():
    a = metrics.random_projections(5, 10, generator=torch.Generator().manual_seed(0))
    b = metrics.random_projections(5, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert torch.allclose(a.norm(dim=0), torch.ones(10, dtype=torch.float64))


# ----- Fréchet distance -------------------------------------------------------------------------

class TinyFeatures(torch.nn.Module):
    """A small fixed feature network: conv, pool, linear; ``num_features`` lets torchmetrics run offline."""

    num_features = 6

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.lin = torch.nn.Linear(4 * 4 * 4, self.num_features)

    def forward(self, x):
        h = torch.nn.functional.avg_pool2d(torch.tanh(self.conv(x)), 2)  # (B, 4, 4, 4)
        return self.lin(h.flatten(1))  # (B, 6)


def test_frechet_distance_matches_torchmetrics():
    g = torch.Generator().manual_seed(5)
    net = TinyFeatures().double().eval()
    real = torch.rand(150, 1, 8, 8, generator=g, dtype=torch.float64)
    fake = torch.rand(130, 1, 8, 8, generator=g, dtype=torch.float64) ** 2
    fid = FrechetInceptionDistance(feature=net)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    ours = metrics.feature_frechet_distance(net, real, fake, batch_size=64)
    assert np.isclose(ours, float(fid.compute()), rtol=1e-6)


def test_frechet_distance_closed_form_for_gaussians():
    # FD between N(μ1, diag(a)) and N(μ2, diag(b)) is |μ1 − μ2|² + Σ (√a − √b)²; check on the fits.
    x, y = _sets(400, 300, d=3)
    mx, my = x.mean(0), y.mean(0)
    a, b = torch.cov(x.T).numpy(), torch.cov(y.T).numpy()
    import scipy.linalg
    ref = float((mx - my).pow(2).sum()) + float(np.trace(a + b - 2 * scipy.linalg.sqrtm(a @ b).real))
    assert np.isclose(metrics.frechet_distance(x, y), ref, rtol=1e-8)
    assert abs(metrics.frechet_distance(x, x)) < 1e-8


# ----- precision / recall ------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_match_prdc(k):
    x, y = _sets(200, 150, d=5, shift=0.8)
    pr = metrics.precision_recall(x, y, k=k)
    ref = compute_prdc(real_features=x.numpy(), fake_features=y.numpy(), nearest_k=k)
    assert pr.precision == pytest.approx(ref["precision"], abs=1e-12)
    assert pr.recall == pytest.approx(ref["recall"], abs=1e-12)


# ----- memorisation -------------------------------------------------------------------------------

def test_memorisation_ratio_copies_vs_fresh_samples():
    g = torch.Generator().manual_seed(2)
    train, held = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g)
    copies = train[:50] + 1e-4 * torch.randn(50, 2, generator=g)
    fresh = torch.randn(500, 2, generator=g)
    assert metrics.memorisation_ratios(copies, train, held).max() < 0.01
    assert 0.8 < metrics.memorisation_ratios(fresh, train, held).median() < 1.25


# ----- bootstrap and noise floors ------------------------------------------------------------------

def test_bootstrap_interval_covers_and_is_seeded():
    x, y = _sets(150, 150, d=2, shift=0.3)
    run = lambda s: metrics.bootstrap_ci(metrics.frechet_distance, x, y, n_boot=50,  # noqa: E731
                                         generator=torch.Generator().manual_seed(s))
    est = run(0)
    assert est.low < est.value < est.high
    assert est == run(0)
    assert "±" in str(est)
    assert np.isclose(est.high - est.value, 1.959964 * est.se, rtol=1e-5)


def test_bootstrap_standard_error_matches_independent_redraws():
    g = torch.Generator().manual_seed(6)
    draw = lambda: (torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 0.5)  # noqa: E731
    spread = np.std([metrics.frechet_distance(*draw()) for _ in range(60)], ddof=1)
    est = metrics.bootstrap_ci(metrics.frechet_distance, *draw(), n_boot=60, generator=g)
    assert 0.5 < est.se / spread < 2.0


def test_noise_floor_is_below_a_real_difference():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g)
    shifted = torch.randn(300, 2, generator=g) + 0.5
    floor = metrics.noise_floor(metrics.sliced_wasserstein, a, b, n_boot=30, generator=g)
    gap = metrics.bootstrap_ci(metrics.sliced_wasserstein, a, shifted, n_boot=30, generator=g)
    assert floor.high < gap.low


def test_binomial_ci_matches_scipy():
    from scipy.stats import binomtest

    for k, n in [(0, 10), (7, 10), (18, 20), (50, 100)]:
        lo, hi = metrics.binomial_ci(k, n, level=0.95)
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert np.allclose([lo, hi], [ref.low, ref.high], atol=1e-10)


# ----- errors -------------------------------------------------------------------------------------

def test_errors_name_the_fix():
    x, y = _sets(10, 10)
    with pytest.raises(ValueError, match="same space"):
        metrics.mmd2(x, y[:, :2])
    with pytest.raises(ValueError, match="k \\+ 1"):
        metrics.precision_recall(x, y[:3], k=3)
    with pytest.raises(ValueError, match="n_boot"):
        metrics.bootstrap_ci(metrics.mmd2, x, y, n_boot=5)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(x[:1], y)
    with pytest.raises(ValueError, match="NaN"):
        metrics.sliced_wasserstein(x * float("nan"), y)
    with pytest.raises(ValueError, match="projections"):
        metrics.sliced_wasserstein(x, y, projections=torch.randn(2, 5))
    with pytest.raises(ValueError, match="equally large"):
        metrics.memorisation_ratios(x, x, y[:5])
    with pytest.raises(ValueError, match="batch"):
        metrics.mmd2(torch.zeros(5), y)
    with pytest.raises(ValueError, match="positive int"):
        metrics.precision_recall(x, y, k=0)


def test_frechet_distance_with_the_digit_classifier_matches_torchmetrics():
    from diffusion_lite.classifier import ClassifierConfig, DigitClassifier

    torch.manual_seed(0)
    net = DigitClassifier(ClassifierConfig(channels=8, num_features=16)).eval()  # untrained is fine
    g = torch.Generator().manual_seed(7)
    real = torch.rand(120, 1, 8, 8, generator=g) * 2 - 1
    fake = (torch.rand(100, 1, 8, 8, generator=g) * 2 - 1).clamp(-0.5, 1)
    fid = FrechetInceptionDistance(feature=net)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    ours = metrics.feature_frechet_distance(net, real, fake)
    assert np.isclose(ours, float(fid.compute()), rtol=1e-4)


# ----- permutation test and the bootstrap's own error ------------------------------------------

def _mean_gap(x, y):
    return float(((x.mean(0) - y.mean(0)) ** 2).sum())


def test_permutation_test_exact_small_case_matches_scipy():
    from scipy.stats import permutation_test as scipy_permutation_test

    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 2, generator=g, dtype=torch.float64)
    b = torch.randn(6, 2, generator=g, dtype=torch.float64) + 0.7
    ours = uncertainty.permutation_test(_mean_gap, a, b, n_permutations=1000)
    ref = scipy_permutation_test((a.numpy(), b.numpy()),
                                 lambda x, y, axis: ((x.mean(axis) - y.mean(axis)) ** 2).sum(-1),
                                 permutation_type="independent", n_resamples=1000,
                                 alternative="greater", vectorized=True, axis=0)
    assert ours.exact and ours.n_permutations == 462  # C(11, 5) splits, all enumerated
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert ours.statistic == pytest.approx(float(ref.statistic))


def test_permutation_test_exact_by_hand():
    # a = {0, 1}, b = {2, 3}: T = |mean gap|² is largest (4) for the observed split and its mirror.
    a, b = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [3.0]])
    res = uncertainty.permutation_test(_mean_gap, a, b)
    assert res.exact and res.n_permutations == 6 and res.p_value == pytest.approx(2 / 6)


def test_permutation_test_monte_carlo_agrees_with_scipy_and_holds_its_size():
    from scipy.stats import permutation_test as scipy_permutation_test

    g = torch.Generator().manual_seed(1)
    a = torch.randn(40, 1, generator=g, dtype=torch.float64)
    b = torch.randn(50, 1, generator=g, dtype=torch.float64) + 0.4
    ours = uncertainty.permutation_test(_mean_gap, a, b, n_permutations=2000, generator=g)
    ref = scipy_permutation_test((a[:, 0].numpy(), b[:, 0].numpy()),
                                 lambda x, y, axis: (x.mean(axis) - y.mean(axis)) ** 2,
                                 permutation_type="independent", n_resamples=20000,
                                 alternative="greater", vectorized=True, random_state=3)
    assert not ours.exact
    # Monte-Carlo p-values: SD ≈ sqrt(p(1−p)/B) ≈ 0.005 here; allow 4 SD.
    assert abs(ours.p_value - ref.pvalue) < 4 * math.sqrt(ref.pvalue * (1 - ref.pvalue) / 2000) + 1e-3
    # Under H0 (one distribution) P(p ≤ 0.1) = 0.1 exactly with B = 49 (p = (1 + k)/50).
    small = sum(uncertainty.permutation_test(
        _mean_gap, torch.randn(8, 1, generator=g), torch.randn(9, 1, generator=g),
        n_permutations=49, generator=g).p_value <= 0.1 + 1e-12 for _ in range(150))
    assert 4 <= small <= 26  # Binomial(150, 0.1): mean 15, ±3 SD


def test_permutation_test_rejects_bad_input():
    with pytest.raises(ValueError, match="same space"):
        uncertainty.permutation_test(_mean_gap, torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="finite"):
        uncertainty.permutation_test(lambda x, y: float("nan"), torch.zeros(3, 1), torch.ones(3, 1))


def test_bootstrap_se_error_matches_simulation():
    # SD of a sample SD from B normal draws, relative to σ: ≈ 1/sqrt(2(B−1)).
    g = torch.Generator().manual_seed(2)
    sds = torch.randn(4000, 200, generator=g, dtype=torch.float64).std(dim=1)
    assert float(sds.std()) == pytest.approx(uncertainty.bootstrap_se_error(200), rel=0.06)
    assert uncertainty.bootstrap_se_error(200) == pytest.approx(0.0501, abs=1e-4)


def test_mean_interval_is_students_t():
    from scipy import stats

    v = [1.0, 2.0, 4.0, 3.5]
    est = uncertainty.mean_interval(v)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    assert (est.value, est.low, est.high) == pytest.approx((np.mean(v), lo, hi))
    with pytest.raises(ValueError, match="at least 2"):
        uncertainty.mean_interval([1.0])


def test_stratified_indices_match_the_counts():
    labels = torch.tensor([0, 1, 1, 2, 2, 2, 0, 1])
    idx = uncertainty.stratified_indices(labels, torch.tensor([2, 1, 3]),
                                         generator=torch.Generator().manual_seed(0))
    assert torch.bincount(labels[idx], minlength=3).tolist() == [2, 1, 3]
    assert len(set(idx.tolist())) == len(idx)
    with pytest.raises(ValueError, match="class 1 has 3 items"):
        uncertainty.stratified_indices(labels, torch.tensor([0, 4, 0]))


def test_median_interval_covers_the_median_at_its_level():
    # Coverage over many exponential samples (true median ln 2), against the nominal 95%.
    g = torch.Generator().manual_seed(4)
    hits = 0
    for _ in range(400):
        v = -torch.log(torch.rand(41, generator=g, dtype=torch.float64))
        est = uncertainty.median_interval(v.numpy())
        hits += est.low <= math.log(2) <= est.high
        assert est.low <= est.value <= est.high
    assert 0.93 <= hits / 400 <= 0.995
