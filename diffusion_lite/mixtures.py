"""The exact oracle: Gaussian mixtures, their noised laws, scores and optimal denoisers.

For data x0 ~ sum_k w_k N(mu_k, diag(v_k)) the noisy x = scale * x0 + sigma * eps is again a
mixture, so its density, its score and the posterior mean E[x0 | x] are known in closed form.
Every later chapter measures learned models and samplers against this oracle. A mixture *is* a
denoiser under the course contract ``denoiser(x, sigma) -> x0_hat`` {cite}`efron2011`.

| code name | symbol | meaning |
|---|---|---|
| ``weights`` | w_k | mixture weights, shape (K,), summing to 1 |
| ``means`` | mu_k | component means, shape (K, d) |
| ``variances`` | v_k | per-coordinate component variances, shape (K, d) (isotropic: equal) |
| ``sigma`` | sigma | noise level: x_sigma = x0 + sigma * eps |
| ``noise_std`` | — | absolute std of the noise in ``noised`` (scale * x0 + noise_std * eps); sigma only when scale = 1 |
| ``x0_hat``, ``denoise`` | D(x, sigma) | E[x0 given x_sigma = x], the optimal (MMSE) denoiser |
| ``score`` | s(x, sigma) | grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2 |
| ``responsibilities`` | r_k(x, sigma) | P(component k given x_sigma = x) |

Inside, everything runs in float64 (float32 on Apple ``mps``, which lacks float64); results come
back in the input's dtype and device. Sums over components use log-sum-exp, so tiny sigma and
thousands of components are safe.
"""

from __future__ import annotations

import hashlib
import math

import torch

from .utils import append_dims, as_sigma, check_finite, check_generator, check_int

__all__ = ["GaussianMixture", "EmpiricalDenoiser", "ring", "grid", "mixture_1d", "lopsided"]

_CHUNK = 2**22  # max elements of a (rows, K, d) temporary; larger batches are split into chunks


def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _param(value, name: str) -> torch.Tensor:
    """A float64 CPU copy of a parameter (tensor, array or list), with finite values."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to(device="cpu", dtype=torch.float64)
    else:  # lists and arrays straight to float64 (a float32 detour would round 0.1)
        t = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN/inf values; pass finite numbers")
    return t


def _as_batch(x, dim: int, name: str = "x") -> torch.Tensor:
    """``x`` as a float tensor of shape (B, ...) whose trailing dims hold ``dim`` numbers."""
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if x.ndim < 2 or math.prod(x.shape[1:]) != dim:
        raise ValueError(f"{name} must have shape (batch, {dim}) (or (batch, ...) holding {dim} "
                         f"numbers per sample), got {tuple(x.shape)}; add a batch dim with x[None]")
    check_finite(x, name)
    return x


class GaussianMixture:
    """Mixture of K Gaussians in d dimensions with diagonal (or isotropic) covariances.

    p(x0) = sum_k w_k N(x0; mu_k, diag(v_k)). ``variances`` may be (K,) (isotropic) or (K, d)
    (diagonal). Parameters may be tensors, arrays or lists; they are kept in float64.
    """

    def __init__(self, weights, means, variances) -> None:
        w, mu, v = _param(weights, "weights"), _param(means, "means"), _param(variances, "variances")
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"weights must have shape (K,) with K >= 1, got {tuple(w.shape)}")
        if bool((w < 0).any()):
            raise ValueError("weights must be >= 0; mixture weights are probabilities")
        if abs(float(w.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got {float(w.sum()):.6g}; normalise with "
                             "weights / weights.sum()")
        K = w.numel()
        if mu.ndim != 2 or mu.shape[0] != K:
            raise ValueError(f"means must have shape (K, d) = ({K}, d) to match the {K} weights, "
                             f"got {tuple(mu.shape)}; for 1D data pass means[:, None] or use "
                             "mixture_1d")
        d = mu.shape[1]
        if v.shape == (K,):
            v = v[:, None].expand(K, d)
        if v.shape != (K, d):
            raise ValueError(f"variances must have shape ({K},) (isotropic) or ({K}, {d}) "
                             f"(diagonal), got {tuple(v.shape)}")
        if bool((v <= 0).any()):
            raise ValueError("variances must be > 0 (they are variances, not standard deviations "
                             "or log-variances); for point masses use EmpiricalDenoiser")
        self.weights, self.means, self.variances = w, mu, v.contiguous()
        self._cache: dict = {}

    # ---- the data distribution ---------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension d of a sample."""
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        """Number of components K."""
        return self.weights.numel()

    @property
    def mean(self) -> torch.Tensor:
        """E[x0] = sum_k w_k mu_k, shape (d,), float64."""
        return self.weights @ self.means

    @property
    def covariance(self) -> torch.Tensor:
        """Cov[x0] = sum_k w_k (diag(v_k) + mu_k mu_k^T) - E[x0] E[x0]^T, shape (d, d), float64."""
        second = torch.diag(self.weights @ self.variances)
        second = second + (self.weights[:, None] * self.means).T @ self.means
        return second - torch.outer(self.mean, self.mean)

    @property
    def total_variance(self) -> float:
        """E||x0 - E x0||^2 = trace Cov[x0]: the MSE of the best constant guess."""
        return float(torch.diagonal(self.covariance).sum())

    def __repr__(self) -> str:
        return f"GaussianMixture(n_components={self.n_components}, dim={self.dim})"

    def fingerprint(self) -> str:
        """SHA-256 of the weights, means and variances: names this law in a model cache key."""
        h = hashlib.sha256()
        for t in (self.weights, self.means, self.variances):
            h.update(t.to(torch.float64).contiguous().numpy().tobytes())
        return h.hexdigest()

    def noised(self, noise_std: float, scale: float = 1.0) -> GaussianMixture:
        """The law of scale * x0 + noise_std * eps: sum_k w_k N(scale mu_k, scale^2 v_k + noise_std^2).

        ``noise_std`` is the *absolute* standard deviation of the added noise. With ``scale = 1``
        it is the VE noise level sigma; with ``scale = sqrt(alpha_bar)`` and ``noise_std =
        sqrt(1 - alpha_bar)`` it gives the VP marginal {cite}`ho2020`, whose sigma is
        ``noise_std / scale`` (not ``noise_std``: hence the name). ``noised(...).score(x, 0)`` is
        the score of that law with respect to its own sample.
        """
        noise_std, scale = float(noise_std), float(scale)
        if not (math.isfinite(noise_std) and noise_std >= 0):
            raise ValueError(f"noise_std must be finite and >= 0, got {noise_std}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be finite and > 0, got {scale}")
        return GaussianMixture(self.weights, scale * self.means,
                               scale**2 * self.variances + noise_std**2)

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               return_labels: bool = False, dtype: torch.dtype | None = None,
               device: torch.device | str | None = None):
        """Draw n samples x0 ~ p (labels k ~ w, then x0 = mu_k + sqrt(v_k) * eps), shape (n, d).

        Drawn in float64 on the CPU (so a CPU ``generator`` works everywhere), then cast to
        ``dtype`` (default: torch's default dtype) on ``device``. With ``return_labels`` also
        returns the component index of every sample, shape (n,).
        """
        check_int(n, "n", minimum=0, what="the number of samples")
        check_generator(generator)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)  # (n, d)
        x0 = self.means[labels] + self.variances[labels].sqrt() * eps  # (n, d)
        x0 = x0.to(dtype=dtype or torch.get_default_dtype(), device=device)
        return (x0, labels.to(device)) if return_labels else x0

    # ---- closed forms at noise level sigma ----------------------------------------------------
    def _params(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        key = str(device)
        if key not in self._cache:
            dt = _work_dtype(device)
            self._cache[key] = tuple(p.to(device=device, dtype=dt)
                                     for p in (self.weights.log(), self.means, self.variances))
        return self._cache[key]

    def _evaluate(self, x, sigma) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (x, log w_k N(x; mu_k, v_k + sigma^2) (B, K), score (B, d), D (B, d)) in float64."""
        x = _as_batch(x, self.dim)
        log_w, mu, v = self._params(x.device)
        x64 = x.reshape(x.shape[0], -1).to(mu.dtype)  # (B, d)
        s2 = as_sigma(sigma, x64).pow(2)  # (B,)
        rows = max(1, _CHUNK // (self.n_components * self.dim))
        logits, scores, x0_hats = [], [], []
        for xc, sc in zip(x64.split(rows), s2.split(rows)):
            vt = v + sc[:, None, None]  # (b, K, d) variance of x given component k
            diff = xc[:, None, :] - mu  # (b, K, d)
            z = diff / vt  # (b, K, d)
            logit = log_w - 0.5 * (diff * z + torch.log(2 * math.pi * vt)).sum(-1)  # (b, K)
            r = torch.softmax(logit, dim=-1)[..., None]  # (b, K, 1)
            logits.append(logit)
            scores.append(-(r * z).sum(1))  # (b, d): sum_k r_k * (-(x - mu_k) / (v_k + s^2))
            x0_hats.append((r * (mu + v * z)).sum(1))  # (b, d): sum_k r_k E[x0 | x, k]
        return x, torch.cat(logits), torch.cat(scores), torch.cat(x0_hats)

    def log_prob(self, x, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """log p_sigma(x) = logsumexp_k [log w_k + log N(x; mu_k, diag(v_k + sigma^2))], shape (B,)."""
        x, logit, _, _ = self._evaluate(x, sigma)
        return torch.logsumexp(logit, dim=-1).to(x.dtype)

    def responsibilities(self, x, sigma: float | torch.Tensor) -> torch.Tensor:
        """r_k(x) = w_k N(x; mu_k, v_k + sigma^2) / p_sigma(x), shape (B, K), rows sum to 1."""
        x, logit, _, _ = self._evaluate(x, sigma)
        return torch.softmax(logit, dim=-1).to(x.dtype)

    def score(self, x, sigma: float | torch.Tensor) -> torch.Tensor:
        """s(x, sigma) = grad log p_sigma(x) = -sum_k r_k (x - mu_k) / (v_k + sigma^2), shape of x.

        Computed directly (not as (D - x) / sigma^2), so it is exact at sigma = 0 too
        {cite}`hyvarinen2005`.
        """
        x, _, s, _ = self._evaluate(x, sigma)
        return s.reshape(x.shape).to(x.dtype)

    def denoise(self, x, sigma: float | torch.Tensor) -> torch.Tensor:
        """D(x, sigma) = E[x0 | x_sigma = x] = sum_k r_k (mu_k + v_k (x - mu_k) / (v_k + sigma^2)).

        Tweedie's formula D = x + sigma^2 s(x, sigma) holds exactly {cite}`efron2011`. ``sigma``
        is a scalar or shape (B,); the result has the shape, dtype and device of ``x``.
        """
        x, _, _, x0_hat = self._evaluate(x, sigma)
        return x0_hat.reshape(x.shape).to(x.dtype)

    __call__ = denoise

    def bayes_error(self, sigma: float | torch.Tensor, *, n: int = 50_000,
                    generator: torch.Generator | None = None,
                    reduction: str = "mean") -> tuple[float, float]:
        """The irreducible denoising error E||D(x_sigma, sigma) - x0||^2, by Monte Carlo.

        Draws n pairs (x0, x_sigma = x0 + sigma eps) and scores the exact posterior mean.
        ``reduction="mean"`` averages over coordinates, i.e. ``F.mse_loss(D, x0)`` -- the floor of
        an x0-prediction training loss; ``"sum"`` gives the total squared error per sample
        (-> ``total_variance`` as sigma -> inf, -> 0 as sigma -> 0). ``sigma`` may be a scalar or
        shape (n,) (per-sample levels, e.g. drawn from a training distribution). Returns
        (mse, standard error of the mean) as floats.
        """
        if reduction not in ("mean", "sum"):
            raise ValueError(f"unknown reduction {reduction!r}; choose one of ('mean', 'sum')")
        x0 = self.sample(n, generator=generator, dtype=torch.float64)  # (n, d)
        sig = as_sigma(sigma, x0)  # (n,)
        x = x0 + append_dims(sig, 2) * torch.randn(x0.shape, generator=generator,
                                                   dtype=torch.float64)
        err = (self.denoise(x, sig) - x0).pow(2).sum(1)  # (n,)
        if reduction == "mean":
            err = err / self.dim
        return float(err.mean()), float(err.std() / math.sqrt(n))


class EmpiricalDenoiser:
    """The optimal denoiser for the empirical distribution of a finite training set.

    With data uniform on N points y_i, E[x0 | x_sigma = x] = sum_i softmax_i(-|x - y_i|^2 /
    (2 sigma^2)) y_i: a soft nearest-neighbour average that, as sigma -> 0, snaps to the nearest
    training point, so samplers driven by it can only reproduce the training set
    {cite}`kadkhodaie2024`. ``train_points`` has shape (N, ...); inputs x share its trailing shape.
    """

    def __init__(self, train_points) -> None:
        y = _param(train_points, "train_points")
        if y.ndim < 2 or y.shape[0] == 0:
            raise ValueError(f"train_points must have shape (N, ...) with N >= 1, got "
                             f"{tuple(y.shape)}; add a feature dim with points[:, None]")
        self.event_shape = tuple(y.shape[1:])
        self.train_points = y.reshape(y.shape[0], -1)  # (N, d)
        self._cache: dict = {}

    def __repr__(self) -> str:
        return f"EmpiricalDenoiser(n_points={self.train_points.shape[0]}, dim={self.dim})"

    @property
    def dim(self) -> int:
        """Numbers per sample d."""
        return self.train_points.shape[1]

    def _points(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._cache:
            self._cache[key] = self.train_points.to(device=device, dtype=_work_dtype(device))
        return self._cache[key]

    def _sq_dist(self, x) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _as_batch(x, self.dim)
        y = self._points(x.device)  # (N, d)
        x64 = x.reshape(x.shape[0], -1).to(y.dtype)  # (B, d)
        d2 = (x64.pow(2).sum(1, keepdim=True) - 2 * x64 @ y.T + y.pow(2).sum(1)).clamp_min(0)
        return x, x64, d2  # d2: (B, N)

    def denoise(self, x, sigma: float | torch.Tensor) -> torch.Tensor:
        """D(x, sigma) = sum_i softmax_i(-|x - y_i|^2 / (2 sigma^2)) y_i; at sigma = 0 the nearest y_i."""
        x, x64, d2 = self._sq_dist(x)
        s2 = as_sigma(sigma, x64).pow(2)[:, None]  # (B, 1)
        d2 = d2 - d2.min(dim=1, keepdim=True).values  # log-sum-exp shift: nearest point at 0
        w = torch.softmax(-d2 / (2 * s2.clamp_min(torch.finfo(d2.dtype).tiny)), dim=1)  # (B, N)
        nearest = torch.nn.functional.one_hot(d2.argmin(1), d2.shape[1]).to(w.dtype)
        w = torch.where(s2 > 0, w, nearest)  # sigma = 0: the limit sigma -> 0+
        return (w @ self._points(x.device)).reshape(x.shape).to(x.dtype)

    __call__ = denoise

    def score(self, x, sigma: float | torch.Tensor) -> torch.Tensor:
        """s(x, sigma) = (D(x, sigma) - x) / sigma^2 for sigma > 0 (Tweedie's formula)."""
        x = _as_batch(x, self.dim)
        s2 = append_dims(as_sigma(sigma, x), x.ndim).pow(2)
        if bool((s2 == 0).any()):
            raise ValueError("the empirical score is undefined at sigma = 0; use sigma > 0")
        return (self.denoise(x, sigma) - x) / s2

    def nearest(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Euclidean distance to, and index of, the nearest training point: shapes (B,), (B,)."""
        x, _, d2 = self._sq_dist(x)
        dist, idx = d2.min(dim=1)
        return dist.sqrt().to(x.dtype), idx


# ---- builders: toy data sets that are mixtures ------------------------------------------------
def ring(n_modes: int = 8, radius: float = 2.0, std: float = 0.15) -> GaussianMixture:
    """``n_modes`` equal Gaussians (std ``std``) evenly spaced on a circle of ``radius`` in 2D."""
    if n_modes < 1 or radius < 0 or std <= 0:
        raise ValueError("ring needs n_modes >= 1, radius >= 0 and std > 0")
    angle = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    means = radius * torch.stack([angle.cos(), angle.sin()], dim=1)  # (K, 2)
    return GaussianMixture(torch.full((n_modes,), 1.0 / n_modes, dtype=torch.float64), means,
                           torch.full((n_modes,), std**2, dtype=torch.float64))


def grid(n_side: int = 5, spacing: float = 1.0, std: float = 0.1) -> GaussianMixture:
    """``n_side`` x ``n_side`` equal Gaussians on a square grid centred at 0 (2D)."""
    if n_side < 1 or spacing <= 0 or std <= 0:
        raise ValueError("grid needs n_side >= 1, spacing > 0 and std > 0")
    c = spacing * (torch.arange(n_side, dtype=torch.float64) - (n_side - 1) / 2)
    means = torch.cartesian_prod(c, c)  # (n_side^2, 2)
    k = means.shape[0]
    return GaussianMixture(torch.full((k,), 1.0 / k, dtype=torch.float64), means,
                           torch.full((k,), std**2, dtype=torch.float64))


def mixture_1d(means=(-2.0, 1.5), stds=(0.5, 0.3), weights=(0.4, 0.6)) -> GaussianMixture:
    """A 1D mixture (d = 1): samples have shape (n, 1). Default: two unequal bumps.

    For the Ornstein-Uhlenbeck demo, x_t = e^{-t} x0 + sqrt(1 - e^{-2t}) eps has law
    ``m.noised(noise_std=math.sqrt(1 - math.exp(-2 * t)), scale=math.exp(-t))``, whose exact score
    is ``.score(x, 0.0)`` {cite}`anderson1982`.
    """
    m, s, w = _param(means, "means"), _param(stds, "stds"), _param(weights, "weights")
    if not (m.shape == s.shape == w.shape) or m.ndim != 1:
        raise ValueError(f"means, stds and weights must be 1D of equal length, got shapes "
                         f"{tuple(m.shape)}, {tuple(s.shape)}, {tuple(w.shape)}")
    if bool((s <= 0).any()):
        raise ValueError("stds must be > 0")
    return GaussianMixture(w, m[:, None], s**2)


def lopsided() -> GaussianMixture:
    """Three unequal 2D components with diagonal covariances (weights 0.6, 0.3, 0.1).

    Instructive for mode coverage: a sampler that drops the 10% mode, or guidance that sharpens
    the big one, shows up at once in the per-component counts (``sample(return_labels=True)``).
    """
    return GaussianMixture([0.6, 0.3, 0.1], [[-1.0, -0.5], [1.5, 0.5], [0.0, 2.0]],
                           [[0.25, 0.04], [0.04, 0.36], [0.02, 0.02]])
