"""Checkers for chapter 13, "Steering generation".

| exercise | learner writes | reference |
|---|---|---|
| ``check_gaussian_posterior`` | ``gaussian_posterior(mu, Sigma, A, y, noise_std)`` | (m, C): C = (Σ⁻¹ + AᵀA/s²)⁻¹, m = C (Σ⁻¹μ + Aᵀy/s²) |
| ``check_dps_denoise`` | ``dps_denoise(denoiser, x, sigma, A, y, noise_std)`` | D + σ² J_Dᵀ Aᵀ (y − A D)/s² |

Both checkers recompute the usual slips on the same inputs (Aᵀ and A swapped, a precision where a
covariance belongs, a lost Jacobian, a flipped sign) and name the one the answer matches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..mixtures import lopsided
from .core import ExerciseError, check_function, to_numpy

__all__ = ["check_gaussian_posterior", "check_dps_denoise", "gaussian_posterior_reference",
           "dps_denoise_reference"]

F64 = torch.float64


class _Recorder:
    """Wraps a reference so the comparison knows which inputs produced ``want``."""

    def __init__(self, reference: Callable) -> None:
        self.reference, self.case = reference, None

    def __call__(self, **case):
        self.case = case
        return self.reference(**case)


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-6) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, atol=tol, rtol=tol))


# ---------------------------------------------------------------------------------------------
def gaussian_posterior_reference(mu, Sigma, A, y, noise_std):
    """Posterior of x ~ N(μ, Σ) given y = A x + s n: C = (Σ⁻¹ + AᵀA/s²)⁻¹, m = C (Σ⁻¹μ + Aᵀy/s²)."""
    mu, Sigma, A, y = (torch.as_tensor(t, dtype=F64) for t in (mu, Sigma, A, y))
    precision = torch.linalg.inv(Sigma) + A.T @ A / noise_std**2
    C = torch.linalg.inv(precision)
    return C @ (torch.linalg.solve(Sigma, mu) + A.T @ y / noise_std**2), C


def _posterior_slips(mu, Sigma, A, y, noise_std) -> dict[str, tuple]:
    """The usual wrong answers, computed on the same inputs: name -> (mean, cov)."""
    mu, Sigma, A, y = (torch.as_tensor(t, dtype=F64) for t in (mu, Sigma, A, y))
    s2, inv = noise_std**2, torch.linalg.inv
    m, C = gaussian_posterior_reference(mu, Sigma, A, y, noise_std)
    slips = {"precision": (m, inv(C))}
    if A.shape[0] == A.shape[1]:
        Ct = inv(inv(Sigma) + A @ A.T / s2)
        slips["transpose"] = (Ct @ (inv(Sigma) @ mu + A @ y / s2), Ct)
    Cs = inv(Sigma + A.T @ A / s2)  # added a covariance to a precision
    slips["add_covariance"] = (Cs @ (Sigma @ mu + A.T @ y / s2), Cs)
    slips["mean_sigma"] = (C @ (Sigma @ mu + A.T @ y / s2), C)  # Σμ where Σ⁻¹μ belongs
    Cn = inv(inv(Sigma) + A.T @ A / noise_std)
    slips["std_not_var"] = (Cn @ (inv(Sigma) @ mu + A.T @ y / noise_std), Cn)
    return {k: (v[0].numpy(), v[1].numpy()) for k, v in slips.items()}


_POSTERIOR_HINTS = {
    "precision": "your covariance is the posterior *precision* P = Σ⁻¹ + AᵀA/s²; the covariance "
                 "is its inverse, C = P⁻¹.",
    "transpose": "you used A Aᵀ (or A y) where Aᵀ A (and Aᵀ y) belong: the likelihood "
                 "exp(−|y − Ax|²/2s²) has Hessian AᵀA/s² in x (shape d × d).",
    "add_covariance": "precisions add, covariances do not: the posterior precision is Σ⁻¹ + "
                      "AᵀA/s², with the prior's *inverse* covariance.",
    "mean_sigma": "the prior contributes Σ⁻¹μ (precision times mean) to the information vector, "
                  "not Σμ.",
    "std_not_var": "noise_std is s, a standard deviation: the likelihood precision is AᵀA/s², "
                   "divided by s squared.",
}


def check_gaussian_posterior(gaussian_posterior: Callable) -> None:
    """Check ``gaussian_posterior(mu, Sigma, A, y, noise_std) -> (mean, cov)`` on random problems."""
    g = torch.Generator().manual_seed(13)
    cases = []
    for d, m, s in ((3, 3, 0.5), (2, 2, 1.3), (3, 2, 0.7)):
        L = torch.randn(d, d, generator=g, dtype=F64)
        cases.append(dict(mu=torch.randn(d, generator=g, dtype=F64),
                          Sigma=L @ L.T + 0.3 * torch.eye(d, dtype=F64),
                          A=torch.randn(m, d, generator=g, dtype=F64),
                          y=torch.randn(m, generator=g, dtype=F64), noise_std=s))
    ref = _Recorder(gaussian_posterior_reference)

    def compare(got, want, context):
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise ExerciseError(f"gaussian_posterior must return a pair (mean, cov) {context}.")
        gm, gc = to_numpy(got[0], "mean"), to_numpy(got[1], "cov")
        wm, wc = (w.numpy() for w in want)
        if gm.shape != wm.shape or gc.shape != wc.shape:
            raise ExerciseError(f"mean has shape {gm.shape} and cov {gc.shape} {context}; expected "
                                f"{wm.shape} and {wc.shape} (d = the dimension of x, not of y).")
        if _close(gm, wm) and _close(gc, wc):
            return
        for slip, (sm, sc) in _posterior_slips(**ref.case).items():
            cov_match = _close(gc, sc)
            if cov_match and (_close(gm, sm) or _close(gm, wm) or slip == "precision"):
                raise ExerciseError(f"gaussian_posterior is wrong {context}.\nHint: "
                                    + _POSTERIOR_HINTS[slip])
        part = "cov" if not _close(gc, wc) else "mean"
        raise ExerciseError(f"gaussian_posterior: the {part} differs from the reference {context}."
                            "\nHint: complete the square in x: precision P = Σ⁻¹ + AᵀA/s², "
                            "cov = P⁻¹, mean = P⁻¹ (Σ⁻¹μ + Aᵀy/s²).")

    check_function(gaussian_posterior, ref, cases, name="gaussian_posterior", compare=compare)


# ---------------------------------------------------------------------------------------------
def dps_denoise_reference(denoiser, x, sigma, A, y, noise_std):
    """One DPS-guided denoiser call: D + σ² ∇_x log N(y; A D(x, σ), s² I) {cite}`chung2023dps`."""
    with torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        x0_hat = denoiser(xg, sigma)
        log_lik = -0.5 * ((y - x0_hat @ A.T) ** 2).sum() / noise_std**2
        (grad,) = torch.autograd.grad(log_lik, xg)
    return (x0_hat + sigma**2 * grad).detach()


def check_dps_denoise(dps_denoise: Callable) -> None:
    """Check ``dps_denoise(denoiser, x, sigma, A, y, noise_std)`` with a mixture's exact denoiser."""
    prior, g = lopsided(), torch.Generator().manual_seed(31)
    A = torch.tensor([[1.0, 0.6], [-0.3, 0.8]], dtype=F64)  # not symmetric: A and Aᵀ differ
    cases = [dict(denoiser=prior.denoise, x=torch.randn(6, 2, generator=g, dtype=F64) * 1.5,
                  sigma=s, A=A, y=torch.tensor([0.5, -0.4], dtype=F64), noise_std=ns)
             for s, ns in ((0.7, 0.5), (0.3, 0.8), (1.5, 0.4))]
    ref = _Recorder(dps_denoise_reference)

    def compare(got, want, context):
        gd, wd = to_numpy(got, "dps_denoise"), to_numpy(want, "the reference")
        if gd.shape != wd.shape:
            raise ExerciseError(f"dps_denoise has shape {gd.shape} {context}, expected {wd.shape} "
                                "(one guided x0_hat per sample).")
        if _close(gd, wd, 1e-6):
            return
        c = ref.case
        D = c["denoiser"](c["x"], c["sigma"])
        s2, n2 = c["sigma"] ** 2, c["noise_std"] ** 2
        g_want = (want - D) / s2
        resid = c["y"] - D @ c["A"].T  # (B, m)
        slips = {
            "sign": D - s2 * g_want,
            "jacobian": D + s2 * resid @ c["A"] / n2,
            "sigma2": D + g_want,
            "unguided": D,
            "transpose": dps_denoise_reference(c["denoiser"], c["x"], c["sigma"], c["A"].T,
                                               c["y"], c["noise_std"]),
        }
        hints = {
            "sign": "the guidance must *increase* log p(y | x): add σ² ∇ log N(y; A D, s²I) "
                    "= σ² J_Dᵀ Aᵀ (y − A D)/s²; you subtracted it.",
            "jacobian": "you used Aᵀ(y − A D)/s², the gradient with respect to x0_hat; DPS needs it "
                        "with respect to x, through the denoiser: J_D(x)ᵀ Aᵀ (y − A D)/s² "
                        "(autograd on x, not on x0_hat).",
            "sigma2": "a score g enters the denoiser as D + σ² g (Tweedie: D = x + σ² s).",
            "unguided": "you returned the unguided D(x, σ): add σ² times the likelihood gradient.",
            "transpose": "A acts on each row of x0_hat as A @ x0, which for a batch (B, d) is "
                         "x0_hat @ A.T; you applied Aᵀ instead.",
        }
        for slip, cand in slips.items():
            if _close(gd, cand.numpy(), 1e-6):
                raise ExerciseError(f"dps_denoise is wrong {context}.\nHint: " + hints[slip])
        raise ExerciseError(f"dps_denoise differs from the reference {context}.\nHint: D' = D + "
                            "σ² ∇_x log N(y; A D(x, σ), s² I); take the gradient with autograd "
                            "through the denoiser, dividing the squared residual by 2 s².")

    check_function(dps_denoise, ref, cases, name="dps_denoise", compare=compare)
