"""Wrappers that turn a network into the one contract ``denoiser(x, sigma) -> x0_hat``.

Every parametrisation is the same formula with different coefficients {cite}`karras2022`:

    D(x, σ) = c_skip(σ) · x + c_out(σ) · F(c_in(σ) · x, c_noise(σ))

| prediction | c_skip            | c_out                  | F learns (its target F*)               |
|------------|-------------------|------------------------|----------------------------------------|
| ``"x0"``   | 0                 | 1                      | x₀                                     |
| ``"eps"``  | 1                 | −σ                     | ε                 {cite}`ho2020`       |
| ``"v"``    | σ_d²/(σ²+σ_d²)    | −σσ_d/√(σ²+σ_d²)       | (σ_d ε − σ x₀/σ_d)/√(σ²+σ_d²)          |
| ``"edm"``  | σ_d²/(σ²+σ_d²)    | +σσ_d/√(σ²+σ_d²)       | −v                {cite}`karras2022`   |

with c_in = 1/√(σ² + σ_d²) and c_noise = ¼ log σ for all four. With σ_d = 1, ``"v"`` is the
v-prediction of {cite}`salimans2022`, v = α ε − σ_VP x₀ in the VP view (α = 1/√(1+σ²)); EDM's
preconditioning is the same target with the opposite sign and a data scale σ_d.

Since D − x₀ = c_out · (F − F*), the regression ‖F − F*‖² on any target is the x₀ regression
‖D − x₀‖² weighted by λ(σ) = 1/c_out(σ)²: the parametrisations differ only in weighting over σ.

Two names, two meanings: :data:`DenoiserFn` is the *type* of the contract (any callable
``D(x, sigma) -> x0_hat``: a mixture oracle, a lambda, a wrapped network), :class:`Denoiser` is the
``nn.Module`` wrapper that turns a network into one.

Speed: validation happens once, in the constructor. Called with a Python float σ (what the
samplers pass to wrappers that say ``accepts_float_sigma``), the four coefficients are Python
floats and a call costs the network plus two or three elementwise operations (a sampler asks for
:meth:`Denoiser.affine`, D as its parts, and folds them into its update); called with a
``(B,)`` tensor σ (training), the coefficients are tensors. Neither path re-validates σ.

Notation (code → symbol): ``x`` x_σ = x₀ + σε · ``sigma`` σ · ``sigma_data`` σ_d · ``F`` the
network output · ``x0_hat`` D(x, σ) · ``labels`` y (class, with a null class for guidance).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .lincomb import Affine
from .utils import append_dims, as_sigma

__all__ = ["PREDICTIONS", "DenoiserFn", "coefficients", "coefficients_at", "to_x0", "from_x0",
           "target", "Denoiser", "GuidedDenoiser"]

PREDICTIONS = ("x0", "eps", "v", "edm")

DenoiserFn = Callable[..., torch.Tensor]
"""The contract's type: ``D(x, sigma) -> x0_hat`` with σ a float or a ``(B,)`` tensor."""


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; choose one of {PREDICTIONS}")


def _check_sigma_data(sigma_data: float) -> float:
    try:
        value = float(sigma_data)  # a number, a numpy scalar or a one-element tensor
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(sigma_data, (bool, str)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"sigma_data must be a finite number > 0 (the data's standard deviation, "
                         f"e.g. 0.5 for data in [-1, 1]), got {sigma_data!r}")
    return value


def coefficients(prediction: str, sigma: torch.Tensor, sigma_data: float = 0.5
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in, c_noise) of a parametrisation, each with the shape of ``sigma``.

    D = c_skip x + c_out F(c_in x, c_noise); see the module table {cite}`karras2022`.
    """
    _check_prediction(prediction)
    _check_sigma_data(sigma_data)
    return _coefficients(prediction, sigma, sigma_data)


def _coefficients(prediction: str, sigma: torch.Tensor, sigma_data: float):
    """:func:`coefficients` without validation (the wrapper validated in its constructor)."""
    norm = (sigma**2 + sigma_data**2).sqrt()  # √(σ² + σ_d²)
    c_in = 1 / norm
    c_noise = sigma.clamp_min(1e-20).log() / 4
    if prediction == "x0":
        c_skip, c_out = torch.zeros_like(sigma), torch.ones_like(sigma)
    elif prediction == "eps":
        c_skip, c_out = torch.ones_like(sigma), -sigma
    else:
        c_skip = sigma_data**2 / norm**2
        c_out = sigma * sigma_data / norm * (-1 if prediction == "v" else 1)
    return c_skip, c_out, c_in, c_noise


def coefficients_at(prediction: str, sigma: float, sigma_data: float = 0.5
                    ) -> tuple[float, float, float, float]:
    """:func:`coefficients` for one Python float σ, as Python floats (no tensor operations).

    The same table {cite}`karras2022`; a sampler's step uses this, so preconditioning a whole
    batch costs nothing beyond the two multiplications that apply it.
    """
    norm = math.sqrt(sigma * sigma + sigma_data * sigma_data)
    c_noise = math.log(max(sigma, 1e-20)) / 4
    if prediction == "x0":
        return 0.0, 1.0, 1 / norm, c_noise
    if prediction == "eps":
        return 1.0, -sigma, 1 / norm, c_noise
    sign = -1.0 if prediction == "v" else 1.0
    return sigma_data**2 / norm**2, sign * sigma * sigma_data / norm, 1 / norm, c_noise


def to_x0(F: torch.Tensor, x: torch.Tensor, sigma: float | torch.Tensor, prediction: str,
          sigma_data: float = 0.5) -> torch.Tensor:
    """Turn a network prediction F into x̂₀ = c_skip x + c_out F."""
    c_skip, c_out, _, _ = coefficients(prediction, as_sigma(sigma, x), sigma_data)
    return append_dims(c_skip, x.ndim) * x + append_dims(c_out, x.ndim) * F


def from_x0(x0_hat: torch.Tensor, x: torch.Tensor, sigma: float | torch.Tensor, prediction: str,
            sigma_data: float = 0.5) -> torch.Tensor:
    """The inverse of :func:`to_x0`: the F that gives x̂₀, F = (x̂₀ − c_skip x) / c_out (σ > 0)."""
    c_skip, c_out, _, _ = coefficients(prediction, as_sigma(sigma, x), sigma_data)
    if torch.any(c_out == 0):
        raise ValueError(f"{prediction!r} cannot be recovered at sigma = 0; use sigma > 0")
    return (x0_hat - append_dims(c_skip, x.ndim) * x) / append_dims(c_out, x.ndim)


def target(x0: torch.Tensor, eps: torch.Tensor, sigma: float | torch.Tensor, prediction: str,
           sigma_data: float = 0.5) -> torch.Tensor:
    """The regression target F* of a parametrisation for x_σ = x₀ + σ ε (ε for "eps", x₀ for "x0")."""
    sigma = as_sigma(sigma, x0)
    return from_x0(x0, x0 + append_dims(sigma, x0.ndim) * eps, sigma, prediction, sigma_data)


class Denoiser(nn.Module):
    """Wrap a network ``net(x, c_noise, labels=None)`` into ``denoiser(x, sigma) -> x0_hat``.

    D(x, σ) = c_skip(σ) x + c_out(σ) F(c_in(σ) x, c_noise(σ)) for ``prediction`` in
    ("x0", "eps", "v", "edm") {cite}`karras2022`. ``sigma`` is a Python float (coefficients in
    Python, no tensor work) or a ``(B,)`` tensor; it is not re-validated on each call (samplers
    validate the ladder once, training draws σ > 0).
    """

    @property
    def accepts_float_sigma(self) -> bool:
        """Samplers may pass σ as a Python float (the fast path). A subclass that overrides
        ``forward`` gets (B,) tensors unless it sets ``accepts_float_sigma = True`` itself."""
        return type(self).forward is Denoiser.forward

    def __init__(self, net: nn.Module, prediction: str = "edm", sigma_data: float = 0.5) -> None:
        super().__init__()
        _check_prediction(prediction)
        if not callable(net):
            raise TypeError(f"net must be a network net(x, c_noise, labels=None), got "
                            f"{type(net).__name__}")
        self.net, self.prediction = net, prediction
        self.sigma_data = _check_sigma_data(sigma_data)
        self._levels: dict[tuple, tuple] = {}  # σ (and batch, dtype, device) → coefficients

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        if isinstance(sigma, (float, int)):
            return self._at_float(x, float(sigma), labels)
        if not isinstance(sigma, torch.Tensor):  # numpy scalars and arrays, lists
            sigma = as_sigma(sigma, x)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        elif sigma.shape != (x.shape[0],):
            raise ValueError(f"sigma must be a float or have shape (batch,) = ({x.shape[0]},), "
                             f"got {tuple(sigma.shape)}")
        sigma = sigma.to(device=x.device, dtype=x.dtype)  # (B,)
        c_skip, c_out, c_in, c_noise = _coefficients(self.prediction, sigma, self.sigma_data)
        F = self.net(append_dims(c_in, x.ndim) * x, c_noise, labels)  # (B, ...) like x
        return append_dims(c_skip, x.ndim) * x + append_dims(c_out, x.ndim) * F

    def _at_float(self, x: torch.Tensor, sigma: float, labels: torch.Tensor | None) -> torch.Tensor:
        """The fast path: one σ for the whole batch, coefficients as Python floats."""
        return self.affine(x, sigma, labels).value()

    def affine(self, x: torch.Tensor, sigma: float, labels: torch.Tensor | None = None) -> Affine:
        """D(x, σ) for one float σ, as its parts: :class:`~diffusion_lite.lincomb.Affine`
        (c_skip, x, c_out, F) with D = c_skip x + c_out F and F = F_θ(c_in x, c_noise).

        Samplers fold c_skip and c_out into their own update (:func:`~diffusion_lite.lincomb.mix`),
        which saves the elementwise operations of forming D; ``.value()`` gives D itself.
        """
        c_skip, c_out, c_in, c_noise = self.precondition(sigma, x)
        return Affine(c_skip, x, c_out, self.net(x * c_in, c_noise, labels))  # F: (B, ...) like x

    def precondition(self, sigma: float, x: torch.Tensor) -> tuple:
        """(c_skip, c_out, c_in, c_noise) at one float σ for a batch like ``x``: c_skip and c_out
        Python floats, c_in a 0-d tensor, c_noise a (B,) tensor on x's device; computed once per
        (σ, batch size, dtype, device) and kept (the network must not modify c_noise in place)."""
        key = (sigma, x.shape[0], x.dtype, x.device)
        pre = self._levels.get(key)
        return self._precondition(sigma, x, key) if pre is None else pre

    def _precondition(self, sigma: float, x: torch.Tensor, key: tuple) -> tuple:
        """(c_skip, c_out, c_in as a 0-d tensor, c_noise as a (B,) tensor) for one σ, computed once
        and kept (a multiplication by a 0-d tensor skips wrapping a Python number each call): a
        sampler asks for the same few levels again and again (the network must not modify
        c_noise in place)."""
        if not sigma >= 0 or math.isinf(sigma):  # checked once per σ, as a float
            raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
        c_skip, c_out, c_in, c_noise = coefficients_at(self.prediction, sigma, self.sigma_data)
        if len(self._levels) >= 4096:  # bounded: a long run of fresh σ's must not grow it forever
            self._levels.clear()
        c_noise = torch.full((x.shape[0],), c_noise, dtype=x.dtype, device=x.device)  # (B,)
        c_in = torch.tensor(c_in, dtype=x.dtype, device=x.device)  # 0-d: x * c_in wraps no scalar
        self._levels[key] = pre = (c_skip, c_out, c_in, c_noise)
        return pre


from .guidance import GuidedDenoiser  # noqa: E402  (lives with cfg_combine; re-exported here)
