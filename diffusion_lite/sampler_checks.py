"""What every sampler checks, once or cheaply: the ladder, each call's output, NaN at the end.

The samplers of :mod:`~diffusion_lite.samplers` validate ``x``, the σ ladder and the generator at
entry (:func:`check_ladder`, :func:`start`) and then run bare: :class:`Counted` calls the
denoiser (σ as a Python float for wrappers that set ``accepts_float_sigma``, else a ``(B,)``
tensor made once per σ; the package's own wrapper hands over D as its parts, :meth:`Counted.parts`),
compares each output's shape with a tuple comparison and counts evaluations. Nothing waits on the
device inside the loop: :meth:`Counted.finish` looks for NaN once, at the end, and :func:`traced`
replays a failed run with the same random state and a check after every evaluation, to say where
the NaN appeared.

Notation (code → symbol): ``x`` x_σ · ``sigmas`` σ_0 > … > σ_N = 0 · ``x0_hat`` D(x, σ) ·
``nfe`` the number of denoiser evaluations.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable

import torch

from torch.nn.modules import module as _module

from .denoisers import Denoiser, DenoiserFn
from .lincomb import Affine
from .utils import check_generator

__all__ = ["check_ladder", "Counted", "traced", "start"]


def check_ladder(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Validate ``x`` and the ladder; return ``sigmas`` on ``x``'s device and dtype.

    A ladder is a 1-D tensor σ_0 > σ_1 > ... > σ_N = 0 with N >= 1 (e.g. ``schedules.karras_sigmas``).
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
        raise TypeError("x must be a tensor of shape (batch, ...) with batch >= 1")
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be floating point, got {x.dtype}; use x.double() or x.float()")
    sigmas = torch.as_tensor(sigmas).to(device=x.device, dtype=x.dtype)
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D ladder with at least 2 entries (σ_max ... 0), got "
                         f"shape {tuple(sigmas.shape)}; build one with schedules.karras_sigmas(n, ...)")
    if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
        raise ValueError("sigmas must be finite and >= 0")
    if not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise ValueError("sigmas must be strictly decreasing (σ_max first); reverse or deduplicate "
                         "the ladder, e.g. sigmas.flip(0)")
    if float(sigmas[-1]) != 0.0:
        raise ValueError(f"sigmas must end in 0 (the clean sample), got {float(sigmas[-1]):.3g}; "
                         "append a zero: torch.cat([sigmas, sigmas.new_zeros(1)])")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN/inf; start from sigmas[0] * torch.randn(...)")
    return sigmas


_TRACING = contextvars.ContextVar("diffusion_lite_sampler_tracing", default=False)


class NotFinite(Exception):
    """Raised inside a sampler when its result is not finite; :func:`traced` then finds where."""


class Counted:
    """Calls the denoiser, checks the shape of every output and counts evaluations.

    Set up once per sampling run (the boundary); each call then costs one attribute test and one
    tuple comparison: no tensor work, no device synchronisation. ``trace=True`` (the replay after
    a non-finite result) also checks every input and output for NaN/inf, step by step.
    """

    def __init__(self, denoiser: DenoiserFn, x: torch.Tensor, trace: bool = False):
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got "
                            f"{type(denoiser).__name__}")
        self.denoiser, self.nfe, self.shape, self.trace = denoiser, 0, x.shape, trace
        self.float_sigma = bool(getattr(denoiser, "accepts_float_sigma", False))
        self.like = x.new_empty(())                 # device and dtype of the (B,) σ tensors
        self.levels: dict[float, torch.Tensor] = {}  # σ → (B,) tensor, made once per σ
        self.split = _splits(denoiser)                # D handed over as its parts (see parts)
        if self.split:
            self.net, self.pre = denoiser.net, {}     # σ → the wrapper's coefficients
        self.last_input = x                           # the last state the denoiser saw

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        self.last_input = x
        if self.float_sigma:
            x0_hat = self.denoiser(x, sigma)
        else:
            level = self.levels.get(sigma)
            if level is None:
                level = self.levels[sigma] = self.like.new_full((self.shape[0],), sigma)  # (B,)
            x0_hat = self.denoiser(x, level)
        self.nfe += 1
        if not isinstance(x0_hat, torch.Tensor) or x0_hat.shape != self.shape:
            got = tuple(x0_hat.shape) if isinstance(x0_hat, torch.Tensor) else type(x0_hat).__name__
            raise ValueError(f"denoiser(x, sigma) must return x0_hat with the shape of x "
                             f"{tuple(self.shape)}, got {got} at NFE {self.nfe} (σ = {sigma:.4g}); "
                             "wrap ε/v-prediction nets with diffusion_lite.denoisers first")
        if self.trace:
            self._check(x, x0_hat, sigma)
        return x0_hat

    def parts(self, x: torch.Tensor, sigma: float) -> Affine:
        """D(x, σ) as :class:`~diffusion_lite.lincomb.Affine` parts, for the sampler to fold into
        its update with :func:`~diffusion_lite.lincomb.mix`: (c_skip, x, c_out, F) from the
        package's :class:`~diffusion_lite.denoisers.Denoiser`, (0, x, 1, D) from any other."""
        if not self.split:
            return Affine(0.0, x, 1.0, self(x, sigma))
        pre = self.pre.get(sigma)  # this run's levels: batch, dtype and device are fixed
        if pre is None:
            pre = self.pre[sigma] = self.denoiser.precondition(sigma, x)
        c_skip, c_out, c_in, c_noise = pre
        F = self.net(x * c_in, c_noise, None)  # what Denoiser.affine computes, minus its lookups
        self.nfe += 1
        self.last_input = x
        if not isinstance(F, torch.Tensor) or F.shape != self.shape:
            got = tuple(F.shape) if isinstance(F, torch.Tensor) else type(F).__name__
            raise ValueError(f"the network inside the Denoiser must return F with the shape of x "
                             f"{tuple(self.shape)}, got {got} at NFE {self.nfe} (σ = {sigma:.4g})")
        d = Affine(c_skip, x, c_out, F)
        if self.trace:
            self._check(x, d.value(), sigma)
        return d

    def _check(self, x: torch.Tensor, x0_hat: torch.Tensor, sigma: float) -> None:
        where = f"at NFE {self.nfe} (σ = {sigma:.4g})"
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"the sampler's state became NaN/inf before NFE {self.nfe} (σ = "
                             f"{sigma:.4g}) although the denoiser's outputs were finite: the update "
                             "overflowed; sample in float64 or use more steps")
        if not bool(torch.isfinite(x0_hat).all()):
            raise ValueError(f"the denoiser returned NaN/inf {where}, from a finite input; check "
                             "that it is finite at that σ, sample in float64, or use more steps")

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` if it and the last state the denoiser saw are finite (the one
        synchronisation of a run); else raise NotFinite. (The last step to σ = 0 gives the state
        weight 0, so an overflowed state would not show in ``x`` alone.)"""
        if not bool(torch.isfinite(x).all() & torch.isfinite(self.last_input).all()):
            raise NotFinite
        return x


def _splits(denoiser) -> bool:
    """True for the package's wrapper, unmodified (its own ``forward``, no hooks): its
    :meth:`~diffusion_lite.denoisers.Denoiser.affine` is then exactly what a call would compute."""
    return (isinstance(denoiser, Denoiser) and type(denoiser).forward is Denoiser.forward
            and type(denoiser).affine is Denoiser.affine
            and not (denoiser._forward_hooks or denoiser._forward_pre_hooks
                     or _module._global_forward_hooks or _module._global_forward_pre_hooks))


def traced(sampler: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Run ``sampler`` bare; if its result is not finite, replay it step by step to say where.

    The replay restores the random state, so it retraces the same path (for a deterministic
    denoiser) with a check after every evaluation; only a failed run pays for it.
    """
    @functools.wraps(sampler)
    def run(denoiser, x, sigmas, *, generator=None, callback=None, **options):
        check_generator(generator)
        saved = _rng_state(x, generator)
        try:
            return sampler(denoiser, x, sigmas, generator=generator, callback=callback, **options)
        except NotFinite:
            _rng_restore(x, generator, saved)
            token = _TRACING.set(True)
            try:
                sampler(denoiser, x, sigmas, generator=generator, **options)
            except ValueError as err:
                raise ValueError(f"{sampler.__name__}: {err}") from None
            except NotFinite:
                raise ValueError(f"{sampler.__name__}: the last update overflowed although every "
                                 "denoiser output was finite; sample in float64 or use more "
                                 "steps") from None
            finally:
                _TRACING.reset(token)
            raise ValueError(f"{sampler.__name__} produced NaN/inf, but a replay did not (is the "
                             "denoiser random?); sample in float64 or use more steps") from None
    return run


def _rng_state(x: torch.Tensor, generator: torch.Generator | None):
    if generator is not None:
        return generator.get_state()
    if not isinstance(x, torch.Tensor):
        return None  # the sampler's own check of x reports this
    if x.device.type == "cuda":
        return torch.cuda.get_rng_state(x.device)
    return torch.get_rng_state()


def _rng_restore(x: torch.Tensor, generator: torch.Generator | None, state) -> None:
    if generator is not None:
        generator.set_state(state)
    elif x.device.type == "cuda":
        torch.cuda.set_rng_state(state, x.device)
    else:
        torch.set_rng_state(state)


def start(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor,
          generator: torch.Generator | None) -> tuple[torch.Tensor, Counted]:
    """Everything a sampler validates, once, before its loop: ladder, x, generator, denoiser."""
    check_generator(generator)
    return check_ladder(x, sigmas), Counted(denoiser, x, _TRACING.get())
