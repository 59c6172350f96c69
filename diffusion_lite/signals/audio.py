"""Audio in and out: 16-bit PCM WAV files and players embedded in the page (no network).

``write_wav``/``read_wav`` use the standard library's :mod:`wave` and numpy only: samples in
[−1, 1] are stored as round(32767 x) in 16-bit PCM, so a signal already on that grid comes back
bit for bit. ``audio_player`` returns an ``IPython.display.Audio`` holding the WAV bytes, which
Jupyter and the built book show as ``<audio controls>`` with a ``data:audio/wav;base64,…`` source:
it plays in Lab and on the site with the network off. Low sample rates are upsampled (band-limited,
by zero-padding the spectrum) to ``playback_rate`` first, since browsers do not play every rate.

Notation (code → symbol): ``sample_rate`` f_s · ``x`` samples in [−1, 1] · ``FULL_SCALE`` 32767.
"""

from __future__ import annotations

import io
import pathlib
import wave

import numpy as np
import torch

__all__ = ["FULL_SCALE", "to_pcm16", "write_wav", "read_wav", "wav_bytes", "resample_fft",
           "audio_player"]

FULL_SCALE = 32767


def _as_mono(x) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("audio must be a non-empty, finite signal")
    return a


def to_pcm16(x) -> np.ndarray:
    """round(32767 x) as int16; values outside [−1, 1] are an error (normalise first)."""
    a = _as_mono(x)
    if np.abs(a).max() > 1:
        raise ValueError(f"samples must lie in [-1, 1] (peak {np.abs(a).max():.3g}); divide by "
                         "the peak first")
    return np.round(a * FULL_SCALE).astype("<i2")


def wav_bytes(x, sample_rate: int) -> bytes:
    """The bytes of a mono 16-bit PCM WAV file holding x."""
    if not (isinstance(sample_rate, int) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(to_pcm16(x).tobytes())
    return buf.getvalue()


def write_wav(path: str | pathlib.Path, x, sample_rate: int) -> pathlib.Path:
    """Write x (samples in [−1, 1]) as a mono 16-bit WAV file; returns the path."""
    path = pathlib.Path(path)
    path.write_bytes(wav_bytes(x, sample_rate))
    return path


def read_wav(path: str | pathlib.Path) -> tuple[np.ndarray, int]:
    """(samples in [−1, 1] as float64, sample rate) of a mono 16-bit PCM WAV file."""
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM, got {w.getnchannels()} channels "
                             f"of {8 * w.getsampwidth()} bits")
        frames = w.readframes(w.getnframes())
        rate = w.getframerate()
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / FULL_SCALE, rate


def resample_fft(x, factor: int) -> np.ndarray:
    """Band-limited upsampling by an integer factor (zero-padding the spectrum)."""
    if not (isinstance(factor, int) and factor >= 1):
        raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
    a = _as_mono(x)
    if factor == 1:
        return a
    return np.fft.irfft(np.fft.rfft(a), n=factor * a.size) * factor


def audio_player(x, sample_rate: int, *, playback_rate: int = 8000, gap: float = 0.0):
    """An embedded player for x (one clip (T,), or clips (n, 1, T) / (n, T) played in turn with
    ``gap`` seconds of silence between them), peak-normalised to 0.9."""
    from IPython.display import Audio

    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
    clips = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a[None]
    silence = np.zeros(int(round(gap * sample_rate)))
    joined = np.concatenate([np.concatenate([c, silence]) for c in clips])
    factor = max(1, playback_rate // sample_rate)
    up = resample_fft(joined, factor)
    up = 0.9 * up / max(np.abs(up).max(), 1e-12)
    return Audio(data=wav_bytes(up, sample_rate * factor), embed=True)
