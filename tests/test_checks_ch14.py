"""Chapter 14 checkers accept right answers (also other correct routes) and name wrong ones of the
right shape, scale and mean."""

import math

import pytest
import torch

from diffusion_lite.checks import ExerciseError, ch14


def _sym_sqrt(K, n, generator):  # K^{1/2} z: other draws, the same law, must pass
    evals, U = torch.linalg.eigh(K)
    z = torch.randn(n, K.shape[0], generator=generator, dtype=K.dtype)
    return z @ (U @ torch.diag(evals.clamp_min(0).sqrt()) @ U.T).T


def _gp_slip(kind):
    def wrong(K, n, generator):
        L = torch.linalg.cholesky(K)
        z = torch.randn(n, K.shape[0], generator=generator, dtype=K.dtype)
        return {"transpose": z @ L, "K": z @ K.T, "sqrt": z @ K.sqrt().T,
                "diag": z * K.diagonal().sqrt(), "white": z,
                "scaled": 1.3 * z @ L.T}[kind]
    return wrong


def test_gp_noise_accepts_cholesky_and_symmetric_root():
    ch14.check_gp_noise(ch14.gp_noise_reference)
    ch14.check_gp_noise(_sym_sqrt)


@pytest.mark.parametrize("kind, diagnosis", [
    ("transpose", "transposed factor"), ("K", "K²"), ("sqrt", "elementwise square root"),
    ("diag", "ignore the correlations"), ("white", "correlations"),
    ("scaled", "empirical covariance"),
])
def test_gp_noise_names_the_slip(kind, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch14.check_gp_noise(_gp_slip(kind))


def test_transposed_factor_has_the_right_shape_mean_and_scale():
    """The slip the checker must catch has the right shape, mean and total variance
    (tr LᵀL = tr LLᵀ = tr K)."""
    case = ch14._gp_cases()[0]
    good = ch14.gp_noise_reference(**case)
    bad = _gp_slip("transpose")(case["K"], case["n"], torch.Generator().manual_seed(0))
    assert good.shape == bad.shape and abs(float(bad.mean())) < 0.05
    assert abs(float(bad.var(0).sum() / case["K"].trace()) - 1) < 0.03
    assert float((bad.T @ bad / bad.shape[0] - case["K"]).abs().max()) > 0.3
    with pytest.raises(ExerciseError, match="transposed"):
        ch14.check_gp_noise(lambda K, n, generator: _gp_slip("transpose")(K, n, generator))


def test_gp_noise_stub_and_shape():
    def stub(K, n, generator):
        raise NotImplementedError
    with pytest.raises(ExerciseError, match="not written yet"):
        ch14.check_gp_noise(stub)
    with pytest.raises(ExerciseError, match="shape"):
        ch14.check_gp_noise(lambda K, n, generator: ch14.gp_noise_reference(K, n, generator).T)


def _cov_slip(kind):
    def wrong(samples, y, level=0.9):
        a = 1 - level
        q = lambda *p: torch.quantile(samples, torch.tensor(p, dtype=samples.dtype), dim=0)  # noqa
        if kind == "80":
            lo, hi = q(a, 1 - a)
        elif kind == "one_sided":
            return float((y <= q(1 - a / 2)[0]).double().mean())
        elif kind == "half":
            lo, hi = q(level / 2, 1 - level / 2)
        elif kind == "index":
            s = samples.sort(dim=0).values
            S = s.shape[0]
            lo, hi = s[int(a / 2 * S)], s[min(S - 1, int((1 - a / 2) * S))]
        elif kind == "gauss":
            z = math.sqrt(2) * torch.erfinv(torch.tensor(level, dtype=torch.float64)).item()
            lo, hi = samples.mean(0) - z * samples.std(0), samples.mean(0) + z * samples.std(0)
        elif kind == "nominal":
            return level
        return float(((y >= lo) & (y <= hi)).double().mean())
    return wrong


def test_coverage_accepts_the_reference_and_numpy():
    import numpy as np
    ch14.check_coverage(ch14.coverage_reference)

    def with_numpy(samples, y, level=0.9):
        s, t = samples.numpy(), y.numpy()
        lo, hi = np.quantile(s, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return float(np.mean((t >= lo) & (t <= hi)))
    ch14.check_coverage(with_numpy)


@pytest.mark.parametrize("kind, diagnosis", [
    ("80", "leaves α/2"), ("one_sided", "one side"), ("half", "level/2"),
    ("index", "int\\(q·S\\)"), ("gauss", "Gaussian interval"), ("nominal", "expected"),
])
def test_coverage_names_the_slip(kind, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch14.check_coverage(_cov_slip(kind))


def test_coverage_per_target_array_is_rejected():
    def per_target(samples, y, level=0.9):
        lo, hi = torch.quantile(samples, torch.tensor([0.05, 0.95], dtype=samples.dtype), dim=0)
        return ((y >= lo) & (y <= hi)).double()
    with pytest.raises(ExerciseError, match="one number"):
        ch14.check_coverage(per_target)
