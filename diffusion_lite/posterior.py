"""The exact posterior of a Gaussian-mixture prior under a linear-Gaussian observation.

Observe y = A x₀ + s·n with n ~ N(0, I_m). With a mixture prior p(x₀) = Σ_k w_k N(μ_k, Σ_k), Bayes'
rule is closed form, component by component (the Kalman update {cite}`bishop2006`):

    S_k = A Σ_k Aᵀ + s² I              (covariance of y given component k)
    K_k = Σ_k Aᵀ S_k⁻¹                  (gain)
    m_k = μ_k + K_k (y − A μ_k),        C_k = Σ_k − K_k A Σ_k
    w'_k ∝ w_k N(y; A μ_k, S_k)

so p(x₀ | y) = Σ_k w'_k N(m_k, C_k) is a mixture again, now with *full* covariances. Noising it,
x_σ = x₀ + σε given y, gives Σ_k w'_k N(m_k, C_k + σ² I): the noised posterior, whose score and
optimal denoiser E[x₀ | x_σ, y] are closed forms at every σ. A sampler driven by that denoiser
samples p(x₀ | y) exactly (up to discretisation): the reference every conditioning method of
chapter 13 is measured against. The gain form also holds for a noise-free observation (s = 0), as
long as A Σ_k Aᵀ is invertible.

| code name | symbol | meaning |
|---|---|---|
| ``A`` | A | observation operator, shape (m, d) |
| ``y`` | y | one observation, shape (m,) |
| ``noise_std`` | s | observation noise standard deviation |
| ``weights``, ``means``, ``covariances`` | w'_k, m_k, C_k | the posterior mixture, (K,), (K, d), (K, d, d) |
| ``sigma`` | σ | diffusion noise level, x_σ = x₀ + σ ε |
| ``denoise`` | D(x, σ \\| y) | E[x₀ given x_σ = x and y] |
| ``score`` | ∇ log p_σ(x \\| y) | score of the noised posterior |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .mixtures import GaussianMixture
from .utils import as_sigma, check_finite

__all__ = ["FullGaussianMixture", "linear_gaussian_posterior", "class_posterior",
           "class_log_prob", "likelihood_score", "distance_to_posterior", "ratio_to_floor"]


def _f64(value, name: str) -> torch.Tensor:
    t = torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value,
                        dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN/inf values; pass finite numbers")
    return t


class FullGaussianMixture:
    """Σ_k w_k N(μ_k, C_k) with full (possibly singular) covariances, in any dimension d.

    The same interface as ``mixtures.GaussianMixture`` (``sample``, ``log_prob``, ``score``,
    ``denoise`` = ``__call__``, ``responsibilities``, ``noised``), so it *is* a denoiser for every
    sampler. Each C_k is diagonalised once, C_k = U_k diag(λ_k) U_kᵀ; then C_k + σ² I = U_k
    diag(λ_k + σ²) U_kᵀ at every σ for the price of one rotation. Float64 inside.
    """

    def __init__(self, weights, means, covariances) -> None:
        w, mu, C = _f64(weights, "weights"), _f64(means, "means"), _f64(covariances, "covariances")
        if w.ndim != 1 or mu.ndim != 2 or mu.shape[0] != w.numel():
            raise ValueError(f"weights must be (K,) and means (K, d); got {tuple(w.shape)} and "
                             f"{tuple(mu.shape)}")
        K, d = mu.shape
        if C.shape != (K, d, d):
            raise ValueError(f"covariances must have shape (K, d, d) = ({K}, {d}, {d}), got "
                             f"{tuple(C.shape)}")
        if bool((w < 0).any()) or abs(float(w.sum()) - 1) > 1e-6:
            raise ValueError("weights must be >= 0 and sum to 1; normalise with w / w.sum()")
        if not torch.allclose(C, C.transpose(1, 2), atol=1e-9):
            raise ValueError("covariances must be symmetric; symmetrise with (C + C.mT) / 2")
        lam, U = torch.linalg.eigh((C + C.transpose(1, 2)) / 2)  # (K, d), (K, d, d)
        if bool((lam < -1e-9 * lam.abs().max().clamp_min(1)).any()):
            raise ValueError("covariances must be positive semi-definite")
        self.weights, self.means, self.covariances = w, mu, C
        self.n_components, self.dim = K, d  # K components in d dimensions
        self._lam, self._U = lam.clamp_min(0), U

    @classmethod
    def from_mixture(cls, mixture: GaussianMixture) -> FullGaussianMixture:
        """The same law as a diagonal ``GaussianMixture``, with explicit covariance matrices."""
        return cls(mixture.weights, mixture.means, torch.diag_embed(mixture.variances))

    @property
    def mean(self) -> torch.Tensor:
        """E[x] = Σ_k w_k μ_k, shape (d,)."""
        return self.weights @ self.means

    def __repr__(self) -> str:
        return f"FullGaussianMixture(n_components={self.n_components}, dim={self.dim})"

    def noised(self, sigma: float) -> FullGaussianMixture:
        """The law of x + σ ε: Σ_k w_k N(μ_k, C_k + σ² I)."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        return FullGaussianMixture(self.weights, self.means, self.covariances + float(sigma) ** 2 * eye)

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               return_labels: bool = False, dtype: torch.dtype | None = None,
               device: torch.device | str | None = None):
        """n draws: k ~ w, then μ_k + U_k diag(√λ_k) ε, shape (n, d) (drawn in float64 on the CPU)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)  # (n, d)
        x = self.means[k] + torch.einsum("nij,nj->ni", self._U[k], self._lam[k].sqrt() * eps)
        x = x.to(dtype=dtype or torch.get_default_dtype(), device=device)
        return (x, k.to(device)) if return_labels else x

    def _evaluate(self, x, sigma):
        """(x, logits (B, K), score (B, d), x0_hat (B, d)) at noise level σ, in float64."""
        x = torch.as_tensor(x)
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        check_finite(x, "x")
        dev = x.device
        xd = x.reshape(x.shape[0], -1).to(device=dev, dtype=torch.float64)  # (B, d)
        s2 = as_sigma(sigma, xd).pow(2)[:, None, None]  # (B, 1, 1)
        lam, U = self._lam.to(dev), self._U.to(dev)  # (K, d), (K, d, d)
        mu, logw = self.means.to(dev), self.weights.to(dev).log()
        lt = lam + s2  # (B, K, d) eigenvalues of C_k + σ² I
        if bool((lt <= 0).any()):
            raise ValueError("the covariance of a component is singular at sigma = 0 (a noise-free "
                             "observation pins some coordinates); evaluate at sigma > 0")
        z = torch.einsum("kji,bkj->bki", U, xd[:, None, :] - mu)  # (B, K, d) rotated residual
        logit = logw - 0.5 * (z.pow(2) / lt + torch.log(2 * math.pi * lt)).sum(-1)  # (B, K)
        r = torch.softmax(logit, dim=-1)[..., None]  # (B, K, 1)
        score_k = -torch.einsum("kij,bkj->bki", U, z / lt)  # (B, K, d) per-component score
        x0_k = mu + torch.einsum("kij,bkj->bki", U, lam * z / lt)  # (B, K, d) E[x0 | x, k]
        return x, logit, (r * score_k).sum(1), (r * x0_k).sum(1)

    def log_prob(self, x, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """log p_σ(x) = logsumexp_k [log w_k + log N(x; μ_k, C_k + σ² I)], shape (B,)."""
        x, logit, _, _ = self._evaluate(x, sigma)
        return torch.logsumexp(logit, -1).to(x.dtype if x.is_floating_point() else torch.float64)

    def responsibilities(self, x, sigma: float | torch.Tensor) -> torch.Tensor:
        """P(component k | x_σ = x), shape (B, K)."""
        x, logit, _, _ = self._evaluate(x, sigma)
        return torch.softmax(logit, -1)

    def score(self, x, sigma: float | torch.Tensor) -> torch.Tensor:
        """∇ log p_σ(x) = −Σ_k r_k (C_k + σ² I)⁻¹ (x − μ_k), shape of x."""
        x, _, s, _ = self._evaluate(x, sigma)
        return s.reshape(x.shape).to(x.dtype)

    def denoise(self, x, sigma: float | torch.Tensor) -> torch.Tensor:
        """D(x, σ) = Σ_k r_k (μ_k + C_k (C_k + σ² I)⁻¹ (x − μ_k)) = x + σ² ∇ log p_σ(x) (Tweedie)."""
        x, _, _, x0_hat = self._evaluate(x, sigma)
        return x0_hat.reshape(x.shape).to(x.dtype)

    __call__ = denoise


def _operator(A, y, noise_std: float, d: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    A, y = _f64(A, "A"), _f64(y, "y")
    if A.ndim != 2 or A.shape[1] != d:
        raise ValueError(f"A must have shape (m, {d}) to act on {d}-dimensional x, got "
                         f"{tuple(A.shape)}; for one observed coordinate use A = [[1., 0.]]")
    if y.shape != (A.shape[0],):
        raise ValueError(f"y must have shape ({A.shape[0]},) (one observation, m = rows of A), got "
                         f"{tuple(y.shape)}; condition on one observation at a time")
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be finite and >= 0, got {noise_std}")
    return A, y, float(noise_std)


def linear_gaussian_posterior(prior: GaussianMixture | FullGaussianMixture, A, y,
                              noise_std: float) -> FullGaussianMixture:
    """p(x₀ | y) for y = A x₀ + s n, n ~ N(0, I): the mixture Σ_k w'_k N(m_k, C_k) (module docstring).

    m_k = μ_k + K_k (y − A μ_k), C_k = Σ_k − K_k A Σ_k with K_k = Σ_k Aᵀ (A Σ_k Aᵀ + s² I)⁻¹, and
    w'_k ∝ w_k N(y; A μ_k, A Σ_k Aᵀ + s² I) {cite}`bishop2006`. ``noise_std = 0`` is allowed
    when every A Σ_k Aᵀ is invertible (e.g. A selects coordinates).
    """
    if isinstance(prior, GaussianMixture):
        prior = FullGaussianMixture.from_mixture(prior)
    A, y, s = _operator(A, y, noise_std, prior.dim)
    Sig, mu = prior.covariances, prior.means  # (K, d, d), (K, d)
    S = A @ Sig @ A.T + s**2 * torch.eye(A.shape[0], dtype=torch.float64)  # (K, m, m)
    L, info = torch.linalg.cholesky_ex(S)
    if bool((info > 0).any()):
        raise ValueError("A Σ_k Aᵀ + s² I is singular: with noise_std = 0 the rows of A must be "
                         "independent directions the prior varies in; use noise_std > 0")
    resid = y - mu @ A.T  # (K, m) innovation y − A μ_k
    gain = torch.cholesky_solve(A @ Sig, L).transpose(1, 2)  # (K, d, m): Σ_k Aᵀ S_k⁻¹
    means = mu + torch.einsum("kdm,km->kd", gain, resid)
    cov = Sig - gain @ A @ Sig
    cov = (cov + cov.transpose(1, 2)) / 2
    half = torch.linalg.solve_triangular(L, resid[..., None], upper=False)[..., 0]  # (K, m)
    log_lik = (-0.5 * half.pow(2).sum(-1) - torch.diagonal(L, dim1=1, dim2=2).log().sum(-1)
               - 0.5 * A.shape[0] * math.log(2 * math.pi))  # log N(y; A μ_k, S_k)
    weights = torch.softmax(prior.weights.log() + log_lik, 0)
    return FullGaussianMixture(weights, means, cov)


def class_posterior(prior: GaussianMixture, component_classes, label: int) -> GaussianMixture:
    """p(x₀ | c) for a prior whose components carry class labels: the renormalised sub-mixture.

    Component k belongs to class ``component_classes[k]``; p(c | x_σ) is then the sum of the
    oracle's responsibilities of class-c components, a noise-aware classifier in closed form.
    """
    cls = torch.as_tensor(component_classes)
    if cls.shape != (prior.n_components,):
        raise ValueError(f"component_classes must have shape ({prior.n_components},), got "
                         f"{tuple(cls.shape)}")
    keep = cls == int(label)
    if not bool(keep.any()):
        raise ValueError(f"no component has class {label}; classes present: "
                         f"{sorted(set(cls.tolist()))}")
    w = prior.weights[keep]
    return GaussianMixture(w / w.sum(), prior.means[keep], prior.variances[keep])


def class_log_prob(prior: GaussianMixture, component_classes
                   ) -> Callable[[torch.Tensor, float | torch.Tensor], torch.Tensor]:
    """The exact noise-aware classifier (x, σ) -> log p_σ(c | x), shape (B, C), differentiable in x.

    log p_σ(c | x) = log Σ_{k in c} r_k(x, σ), from the oracle's responsibilities; C = the number
    of classes present. The classifier a perfect classifier-guidance method would use.
    """
    cls = torch.as_tensor(component_classes, dtype=torch.long)
    if cls.shape != (prior.n_components,) or int(cls.min()) < 0:
        raise ValueError(f"component_classes must be (K,) = ({prior.n_components},) class indices "
                         f">= 0, got shape {tuple(cls.shape)}")
    # log of 0 where component k is not in class c, so a log-sum-exp sums within each class.
    member = torch.nn.functional.one_hot(cls).to(torch.float64).log()  # (K, C)

    def log_prob(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        _, logit, _, _ = prior._evaluate(x, sigma)  # (B, K) log w_k N(x; mu_k, v_k + sigma^2)
        log_r = torch.log_softmax(logit, dim=-1)  # log responsibilities, stable far from data
        return torch.logsumexp(log_r[:, :, None] + member.to(log_r.device), dim=1).to(x.dtype)

    return log_prob


def likelihood_score(prior: GaussianMixture | FullGaussianMixture, A, y, noise_std: float,
                     x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """The exact ∇_x log p(y | x_σ = x) = ∇ log p_σ(x | y) − ∇ log p_σ(x) (Bayes' rule for scores).

    This is the term DPS and ΠGDM approximate; here it is exact, at every σ.
    """
    post = linear_gaussian_posterior(prior, A, y, noise_std)
    return post.score(x, sigma) - prior.score(x, sigma)


def distance_to_posterior(exact, methods: dict[str, Callable[..., torch.Tensor]], *, n: int = 2000,
                          seeds: tuple[int, ...] = (0, 1, 2), n_projections: int = 64,
                          n_floor: int = 8) -> dict[str, torch.Tensor]:
    """Sliced Wasserstein distance of each method's samples to exact samples, per seed.

    ``exact`` samples the target (``.sample(n, generator=...)``); ``methods[name](n, generator)``
    returns n samples (n, d). For every seed: two independent exact sets a, b; the floor is
    SW(a, b) (what a perfect sampler scores at this n) and each method scores SW(method, a), on
    the same projections {cite}`bonneel2015`. Returns name -> (S,) tensor, plus ``"floor"``.
    """
    from .metrics import random_projections, sliced_wasserstein

    out: dict[str, list[float]] = {"floor": [], **{k: [] for k in methods}}
    for seed in seeds:
        g = torch.Generator().manual_seed(int(seed))
        P = random_projections(exact.dim, n_projections, generator=g)
        a = exact.sample(n, generator=g, dtype=torch.float64)
        out["floor"].append(sum(sliced_wasserstein(a, exact.sample(n, generator=g,
                                                                   dtype=torch.float64),
                                                   projections=P) for _ in range(n_floor)) / n_floor)
        for name, method in methods.items():
            x = method(n, torch.Generator().manual_seed(10_000 + int(seed)))
            out[name].append(sliced_wasserstein(a, x, projections=P))
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}


def ratio_to_floor(values: torch.Tensor, floor: torch.Tensor, *, n_boot: int = 2000,
                   level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """mean(values) / mean(floor) over seeds, with a paired bootstrap interval over seeds."""
    values, floor = torch.as_tensor(values, dtype=torch.float64), torch.as_tensor(floor, dtype=torch.float64)
    if values.shape != floor.shape or values.ndim != 1 or values.numel() < 2:
        raise ValueError("values and floor must be (S,) tensors over the same S >= 2 seeds")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, values.numel(), (n_boot, values.numel()), generator=g)
    boot = values[idx].mean(1) / floor[idx].mean(1)  # (n_boot,)
    lo, hi = torch.quantile(boot, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(values.mean() / floor.mean()), float(lo), float(hi)
