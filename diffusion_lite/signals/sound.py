"""Synthesised notes, a spectral pitch estimator and a spectral distance.

A note is a few harmonics of a fundamental f₀ under an attack–decay envelope,
x(t) = env(t) Σ_k a_k sin(2π k f₀ t + φ_k), with f₀ drawn from :data:`PITCHES` (A2, C♯3, E3, A3),
amplitudes a₁ = 1, a₂ ~ U(0.3, 0.7), a₃ ~ U(0.1, 0.3), random phases, a 10 ms linear attack and
an exponential decay with time constant τ ~ U(0.05, 0.15) s. At 2 kHz the third harmonic of A3
(660 Hz) stays below the Nyquist frequency (1 kHz).

Pitch: the harmonic-sum estimator picks the f₀ maximising Σ_{k=1..4} |X(k f₀)|/k (the 1/k
weights break the tie with the subharmonic f₀/2) over a fine grid of
a zero-padded, Hann-windowed spectrum {cite}`schroeder1968`; a pitch is *valid* when at least
``min_harmonicity`` of the signal's power lies within ±3% (at least ± the Hann window's main
lobe, 2 f_s/T) of its first four harmonics.
Spectral distance: the RMS difference, in dB, between the mean power spectra of two sets of clips.
Band level: the mean power of a set of clips above a fraction of the Nyquist frequency, in dB
relative to a reference power (e.g. the data's spectral peak) — where a distance comes from.

Notation (code → symbol): ``sample_rate`` f_s · ``f0`` f₀ · ``harmonicity`` the power share near
k f₀ · ``tau`` τ · ``spectral_distance`` RMS dB difference of mean spectra.
"""

from __future__ import annotations

import math

import torch

from ..utils import check_generator, check_int, check_positive

__all__ = ["PITCHES", "synth_notes", "estimate_pitch", "nearest_pitch", "mean_spectrum",
           "spectral_distance", "band_level_db", "spectrogram"]

PITCHES = (110.0, 138.59, 164.81, 220.0)  # A2, C♯3, E3, A3 in Hz (equal temperament)


def synth_notes(n: int, *, sample_rate: int = 2000, length: int = 256,
                pitches: tuple = PITCHES, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """n notes, shape (n, 1, length), and their fundamentals f₀ (n,), peak amplitude 0.8."""
    check_int(n, "n", minimum=1)
    check_int(length, "length", minimum=16)
    check_int(sample_rate, "sample_rate", minimum=1)
    check_generator(generator)
    if 3 * max(pitches) >= sample_rate / 2:
        raise ValueError(f"the third harmonic of {max(pitches)} Hz aliases at f_s = {sample_rate}; "
                         f"raise sample_rate above {6 * max(pitches):.0f} Hz")
    u = lambda *s: torch.rand(*s, generator=generator, dtype=torch.float64)  # noqa: E731
    t = torch.arange(length, dtype=torch.float64) / sample_rate  # (T,)
    f0 = torch.tensor(pitches, dtype=torch.float64)[
        torch.randint(len(pitches), (n,), generator=generator)]  # (n,)
    amps = torch.stack([torch.ones(n), 0.3 + 0.4 * u(n), 0.1 + 0.2 * u(n)], 1)  # (n, 3)
    phase = 2 * math.pi * u(n, 3)
    k = torch.arange(1, 4, dtype=torch.float64)
    waves = torch.sin(2 * math.pi * f0[:, None, None] * k[None, :, None] * t + phase[..., None])
    x = (amps[..., None] * waves).sum(1)  # (n, T)
    tau = 0.05 + 0.1 * u(n, 1)
    env = torch.clamp(t / 0.01, max=1.0) * torch.exp(-t / tau)  # (n, T)
    x = env * x
    x = 0.8 * x / x.abs().amax(1, keepdim=True)
    return x.to(torch.float32).unsqueeze(1), f0


def _power(x: torch.Tensor, pad: int) -> torch.Tensor:
    """|FFT|² of Hann-windowed clips (n, 1, T), (n, T) or one clip (T,), zero-padded pad times."""
    x = torch.as_tensor(x)
    x = (x[None] if x.ndim == 1 else x.reshape(x.shape[0], -1)).to(torch.float64)  # (n, T)
    w = torch.hann_window(x.shape[-1], periodic=False, dtype=torch.float64)
    return torch.fft.rfft(x * w, n=pad * x.shape[-1]).abs() ** 2  # (n, F)


def estimate_pitch(x: torch.Tensor, sample_rate: int, *, fmin: float = 60.0, fmax: float = 500.0,
                   harmonics: int = 4, min_harmonicity: float = 0.6, pad: int = 16
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(f₀ (n,), valid (n,) bool) for clips x (n, 1, T), (n, T) or (T,); see the module docstring."""
    check_positive(sample_rate, "sample_rate")
    if not 0 < fmin < fmax < sample_rate / 2:
        raise ValueError(f"need 0 < fmin < fmax < f_s/2 = {sample_rate / 2}, got {fmin}, {fmax}")
    power = _power(x, pad)  # (n, F)
    mag = power.sqrt()
    F = power.shape[-1]
    df = sample_rate / (2 * (F - 1))  # Hz per bin
    cand = torch.arange(math.ceil(fmin / df), math.floor(fmax / df) + 1)  # candidate bins (C,)
    k = torch.arange(1, harmonics + 1)
    idx = cand[:, None] * k[None, :]  # (C, K)
    inside = idx < F
    score = (mag[:, idx.clamp(max=F - 1)] * inside / k).sum(-1)  # (n, C), weights 1/k
    best = cand[score.argmax(-1)]  # (n,)
    # Parabolic interpolation of the fundamental's peak refines f₀ below one bin.
    b = best.clamp(1, F - 2)
    lm, c, rm = (mag.gather(1, (b + o)[:, None]).squeeze(1) for o in (-1, 0, 1))
    shift = 0.5 * (lm - rm) / (lm - 2 * c + rm).where((lm - 2 * c + rm) != 0, torch.tensor(-1.0,
                                                                                          dtype=c.dtype))
    f0 = (b + shift.clamp(-0.5, 0.5)) * df
    freqs = torch.arange(F, dtype=torch.float64) * df
    near = torch.zeros_like(power, dtype=torch.bool)
    lobe = sample_rate * pad / (F - 1)  # the Hann main lobe: ±2 bins of the clip, 2 f_s/T
    for kk in range(1, harmonics + 1):
        width = torch.clamp(0.03 * kk * f0[:, None], min=lobe)
        near |= (freqs[None, :] - kk * f0[:, None]).abs() <= width
    harmonicity = (power * near).sum(-1) / power.sum(-1).clamp_min(1e-300)
    return f0, harmonicity >= min_harmonicity


def nearest_pitch(f0: torch.Tensor, pitches: tuple = PITCHES, tolerance: float = 0.03
                  ) -> torch.Tensor:
    """Index of the nearest pitch for each f₀, or −1 when none is within ``tolerance`` (relative)."""
    p = torch.tensor(pitches, dtype=torch.float64)
    rel = (f0.to(torch.float64)[:, None] / p[None, :] - 1).abs()  # (n, P)
    best = rel.argmin(-1)
    return torch.where(rel.gather(1, best[:, None]).squeeze(1) <= tolerance, best, -1)


def mean_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Mean Hann-windowed power spectrum of clips (n, 1, T) → (T//2 + 1,)."""
    return _power(x, 1).mean(0)


def spectral_distance(a: torch.Tensor, b: torch.Tensor, *, floor_db: float = -80.0) -> float:
    """RMS over frequency of 10 log₁₀ P̄_a − 10 log₁₀ P̄_b (dB), each clipped at ``floor_db``
    below its peak so empty bands do not dominate."""
    out = []
    for x in (a, b):
        db = 10 * torch.log10(mean_spectrum(x).clamp_min(1e-300))
        out.append(db.clamp_min(db.max() + floor_db))
    return float(((out[0] - out[1]) ** 2).mean().sqrt())


def band_level_db(x: torch.Tensor, reference: float, *, above: float = 0.75) -> float:
    """Mean power of clips (n, 1, T) over the frequencies above ``above`` × Nyquist, in dB
    relative to ``reference`` (a power, e.g. ``mean_spectrum(data).max()``)."""
    if not 0 <= above < 1:
        raise ValueError(f"above must lie in [0, 1) (a fraction of the Nyquist frequency), got {above}")
    check_positive(reference, "reference")
    spectrum = mean_spectrum(x)
    return float(10 * torch.log10(spectrum[math.ceil(above * (len(spectrum) - 1)):].mean()
                                  / reference))


def spectrogram(x: torch.Tensor, *, window: int = 64, hop: int = 8) -> torch.Tensor:
    """|STFT|² in dB of one clip (T,) with a Hann window: (window//2 + 1, frames)."""
    x = x.reshape(-1).to(torch.float64)
    S = torch.stft(x, window, hop_length=hop, window=torch.hann_window(window, dtype=x.dtype),
                   return_complex=True, center=True)
    return 10 * torch.log10(S.abs() ** 2 + 1e-10)
