"""Chapter 14's signal package against closed forms: GP noise, the exact GP denoiser, CRPS,
coverage, the pitch estimator on pure tones, lossless WAV round trips, and the 1D network's
resolution independence."""

import math

import numpy as np
import pytest
import torch

from diffusion_lite import samplers
from diffusion_lite.nets.signal_net import SignalNet, SignalNetConfig, quadrature_weights
from diffusion_lite.schedules import karras_sigmas
from diffusion_lite.signals import audio, functions, gp, series, sound

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kernel", ["rbf", "matern12", "matern32", "matern52"])
def test_kernels_match_their_closed_forms(kernel):
    s = torch.tensor([0.0, 0.1, 0.35], dtype=F64)
    r = (s[:, None] - s[None, :]).abs() / 0.2
    want = {"rbf": torch.exp(-r**2 / 2), "matern12": torch.exp(-r),
            "matern32": (1 + 3**0.5 * r) * torch.exp(-3**0.5 * r),
            "matern52": (1 + 5**0.5 * r + 5 * r**2 / 3) * torch.exp(-5**0.5 * r)}[kernel]
    torch.testing.assert_close(gp.kernel_matrix(kernel, s, length=0.2, variance=2.0), 2 * want)


def test_gp_noise_has_the_requested_covariance():
    grid = gp.irregular_grid(12, generator=_gen(1))
    noise = gp.GPNoise(grid, "matern32", 0.3)
    K = gp.kernel_matrix("matern32", grid, length=0.3)
    torch.testing.assert_close(noise.cov, K, atol=1e-5, rtol=0)
    e = noise.sample(40000, generator=_gen(2), dtype=F64).squeeze(1)  # (n, T)
    C = e.T @ e / e.shape[0]
    # the standard error of a covariance entry is about sqrt(2/n) ≈ 0.007; allow 5 of them
    assert (C - K).abs().max() < 0.035
    x = torch.randn(3, 1, 12, dtype=F64, generator=_gen(3))
    torch.testing.assert_close(noise.color(noise.whiten(x)), x)


def test_white_noise_model_is_the_identity():
    noise = gp.GPNoise(gp.uniform_grid(8), "white")
    x = torch.randn(2, 1, 8, generator=_gen())
    torch.testing.assert_close(noise.whiten(x), x)


def test_exact_gp_denoiser_is_the_posterior_mean():
    grid = gp.uniform_grid(10)
    K = gp.kernel_matrix("matern52", grid, length=0.3)
    C = gp.kernel_matrix("matern12", grid, length=0.2)
    x = torch.randn(4, 1, 10, dtype=F64, generator=_gen())
    sigma = torch.tensor([0.1, 0.5, 1.0, 3.0], dtype=F64)
    got = gp.gp_denoiser(K, C)(x, sigma)
    for i in range(4):  # K (K + σ²C)⁻¹ x, by a direct solve
        want = K @ torch.linalg.solve(K + sigma[i] ** 2 * C, x[i, 0])
        torch.testing.assert_close(got[i, 0], want, atol=1e-8, rtol=1e-6)
    white = gp.gp_denoiser(K)(x, 0.7)
    torch.testing.assert_close(white[0, 0], K @ torch.linalg.solve(K + 0.49 * torch.eye(10,
                                                                   dtype=F64), x[0, 0]))


def test_whitened_sampling_with_the_exact_denoiser_draws_the_gp():
    cfg = functions.FunctionModelConfig(noise="gp", n_points=16)
    grid = gp.uniform_grid(16)
    K = cfg.data_cov(grid)
    den = gp.gp_denoiser(K, cfg.noise_model(grid).cov)
    x = functions.sample_functions(den, cfg, grid, 3000, generator=_gen(4))
    err, floor = functions.cov_ratio(x, K, generator=_gen(5))
    assert err < 2 * floor
    # negative control: white-noise sampling with the GP-noise denoiser is visibly wrong
    bad = samplers.sample("dpmpp_2m", den, 20 * torch.randn(3000, 1, 16, generator=_gen(6)),
                          karras_sigmas(16, 0.002, 20.0).float())
    assert functions.cov_ratio(bad, K, generator=_gen(7))[0] > 3 * floor


def test_signal_net_integral_mixer_is_resolution_agnostic():
    """On a fine grid the kernel integral converges: outputs at 257 and 513 points agree where the
    grids coincide, while the conv mixer's index-space kernel does not."""
    torch.manual_seed(0)
    net = SignalNet(SignalNetConfig(channels=8, blocks=2, mixer="integral",
                                    widths=(0.05, 0.1))).double()
    with torch.no_grad():
        net.head[-1].weight.normal_()
    f = lambda t: torch.sin(2 * math.pi * t)[None, None]  # noqa: E731
    outs = []
    for n in (257, 513):
        t = torch.linspace(0, 1, n, dtype=F64)
        outs.append(net(f(t), torch.zeros(1, dtype=F64), t[None, None])[0, 0])
    gap = (outs[0][64:192] - outs[1][128:384:2]).abs().max()
    assert gap < 0.02 * outs[0].abs().max()
    w = quadrature_weights(torch.tensor([[0.0, 0.25, 1.0]]))
    torch.testing.assert_close(w, torch.tensor([[0.125, 0.5, 0.375]]))


def test_signal_net_names_missing_labels():
    with pytest.raises(ValueError, match="labels of shape"):
        SignalNet(SignalNetConfig(mixer="integral"))(torch.zeros(1, 1, 8), torch.zeros(1))
    with pytest.raises(ValueError, match="unknown mixer"):
        SignalNetConfig(mixer="fft")


def test_crps_empirical_matches_the_gaussian_closed_form():
    y = torch.tensor([-1.0, 0.0, 0.3, 2.5], dtype=F64)
    samples = 0.5 + 1.5 * torch.randn(200000, 4, dtype=F64, generator=_gen())
    got = series.crps_empirical(samples, y)
    want = series.crps_gaussian(0.5, 1.5, y)
    torch.testing.assert_close(got, want, atol=0.01, rtol=0)
    # CRPS of a point mass is the absolute error
    torch.testing.assert_close(series.crps_empirical(torch.full((5, 4), 0.2, dtype=F64), y),
                               (y - 0.2).abs())
    # with 8 samples per forecast the fair score is unbiased, the plain one is too high
    few = 0.5 + 1.5 * torch.randn(8, 20000, dtype=F64, generator=_gen(1))
    y0 = torch.zeros(20000, dtype=F64)
    fair = series.crps_empirical(few, y0).mean()
    plain = series.crps_empirical(few, y0, fair=False).mean()
    exact = series.crps_gaussian(0.5, 1.5, torch.tensor(0.0))
    assert abs(fair - exact) < 0.01 and plain - exact > 0.08


def test_coverage_of_a_calibrated_and_an_overconfident_forecast():
    gen = _gen(1)
    y = torch.randn(4000, generator=gen)
    calibrated = torch.randn(500, 4000, generator=gen)
    assert abs(series.coverage(calibrated, y, 0.9) - 0.9) < 0.02
    # N(0, 0.5²) predictions: the 90% interval covers P(|Z| < 1.645·0.5) = 0.587
    assert abs(series.coverage(0.5 * calibrated, y, 0.9) - 0.5878) < 0.03


def test_seasonal_naive_repeats_the_last_season_and_widens():
    t = torch.arange(36.0)
    ctx = torch.sin(2 * math.pi * t / 12)[None] + 0.1 * torch.randn(1, 36, generator=_gen())
    mean, std = series.seasonal_naive(ctx, 24, 12)
    torch.testing.assert_close(mean[0, :12], ctx[0, 24:36])
    torch.testing.assert_close(mean[0, 12:], ctx[0, 24:36])
    torch.testing.assert_close(std[0, 12] / std[0, 0], torch.tensor(2**0.5))


def test_series_and_masks_validate():
    x = series.seasonal_series(3, 24, generator=_gen())
    assert x.shape == (3, 1, 24)
    m = series.forecast_mask(3, 24, 6)
    c = series.condition(x, m)
    assert bool((c[:, 0, 18:] == 0).all()) and bool((c[:, 0, :18] == x[:, 0, :18]).all())
    with pytest.raises(ValueError, match="stationary"):
        series.seasonal_series(2, 10, rho=1.0)


@pytest.mark.parametrize("f0", [97.0, 110.0, 164.81, 233.3, 330.0])
def test_pitch_of_pure_and_harmonic_tones(f0):
    t = torch.arange(256, dtype=F64) / 2000
    pure = torch.sin(2 * math.pi * f0 * t)[None]
    rich = pure + 0.6 * torch.sin(2 * math.pi * 2 * f0 * t + 1)[None]
    for x in (pure, rich, rich[0]):  # (1, T) and one clip (T,)
        est, valid = sound.estimate_pitch(x, 2000)
        assert abs(float(est[0]) / f0 - 1) < 0.01 and bool(valid[0])


def test_noise_has_no_valid_pitch_and_notes_do():
    est, valid = sound.estimate_pitch(torch.randn(200, 1, 256, generator=_gen()), 2000)
    assert float(valid.float().mean()) < 0.05
    x, f0 = sound.synth_notes(200, generator=_gen(1))
    est, valid = sound.estimate_pitch(x, 2000)
    assert bool(valid.all())
    idx = sound.nearest_pitch(est)
    torch.testing.assert_close(torch.tensor(sound.PITCHES, dtype=F64)[idx], f0)


def test_spectral_distance_floor_and_negative_control():
    a, _ = sound.synth_notes(300, generator=_gen(1))
    b, _ = sound.synth_notes(300, generator=_gen(2))
    floor = sound.spectral_distance(a, b)
    assert floor < 2.0
    assert sound.spectral_distance(0.3 * torch.randn(300, 1, 256, generator=_gen(3)), a) > 5 * floor


def test_wav_round_trip_is_lossless(tmp_path):
    ints = torch.randint(-32767, 32768, (1000,), generator=_gen())
    x = ints.double() / audio.FULL_SCALE
    path = audio.write_wav(tmp_path / "x.wav", x, 2000)
    y, rate = audio.read_wav(path)
    assert rate == 2000
    np.testing.assert_array_equal(np.round(y * audio.FULL_SCALE), ints.numpy())
    np.testing.assert_array_equal(y, x.numpy())
    with pytest.raises(ValueError, match="divide by the peak"):
        audio.wav_bytes(np.array([0.5, 1.5]), 8000)


def test_audio_player_embeds_a_data_uri():
    x, _ = sound.synth_notes(2, generator=_gen())
    html = audio.audio_player(x, 2000, gap=0.05)._repr_html_()
    assert "data:audio/wav;base64," in html and "http" not in html.split("base64,")[0]
    up = audio.resample_fft(np.sin(2 * np.pi * 5 * np.arange(64) / 64), 4)
    np.testing.assert_allclose(up, np.sin(2 * np.pi * 5 * np.arange(256) / 256), atol=1e-9)


def test_colored_network_is_the_whitened_denoiser():
    """D_y(y) built on Colored(inner) equals L⁻¹ D_x(L y) with D_x the inner net's denoiser."""
    from diffusion_lite.denoisers import Denoiser

    cfg = functions.FunctionModelConfig(noise="gp", n_points=16)
    den = functions.build(cfg)
    with torch.no_grad():
        den.net.head[-1].weight.normal_()
    grid = gp.uniform_grid(16)
    noise = cfg.noise_model(grid)
    d_y = Denoiser(functions.Colored(den.net, noise), "edm", den.sigma_data)
    labels = grid.float()[None, None].expand(4, 1, 16)
    y = torch.randn(4, 1, 16, generator=_gen())
    with torch.no_grad():
        got = d_y(y, 0.7, labels=labels)
        want = noise.whiten(den(noise.color(y), 0.7, labels=labels))
    torch.testing.assert_close(got, want, atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("noise", ["white", "gp"])
def test_function_models_train_and_sample_on_other_grids(noise):
    import dataclasses

    cfg = functions.FunctionModelConfig(noise=noise, n_points=16)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=3, batch_size=8))
    den, info = functions.train_function_model(cfg)
    assert math.isfinite(info["final_loss"])
    for grid in (gp.uniform_grid(12), gp.irregular_grid(20, generator=_gen())):
        x = functions.sample_functions(functions.function_denoiser(den, grid), cfg, grid, 5,
                                       steps=4, generator=_gen(1))
        assert x.shape == (5, 1, grid.numel()) and bool(torch.isfinite(x).all())


def test_imputer_keeps_observed_values_and_waveform_trains():
    import dataclasses

    from diffusion_lite.signals import imputation, waveform

    cfg = imputation.ImputerConfig()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=2, batch_size=4))
    den, _ = imputation.train_imputer(cfg)
    x = series.seasonal_series(3, 48, generator=_gen())
    m = series.imputation_mask(3, 48, 0.5, generator=_gen(1))
    draws = imputation.impute(den, x, m, 2, steps=3, generator=_gen(2))  # (S, B, T)
    assert draws.shape == (2, 3, 48)
    obs = m[:, 0] == 1
    assert bool((draws[:, obs] == x[:, 0][obs]).all())
    wcfg = waveform.WaveformConfig(n_train=8)
    wcfg = dataclasses.replace(wcfg, train=dataclasses.replace(wcfg.train, steps=2, batch_size=4))
    wden, _ = waveform.train_waveform(wcfg)
    assert waveform.sample_waveforms(wden, wcfg, 2, steps=3, generator=_gen()).shape == (2, 1, 256)


def test_band_level_sees_a_hiss_above_the_harmonics():
    notes = sound.synth_notes(200, generator=_gen(5))[0]
    peak = float(sound.mean_spectrum(notes).max())
    quiet = sound.band_level_db(notes, peak)  # A3's third harmonic is 660 Hz, below 750 Hz
    hissy = sound.band_level_db(notes + 1e-3 * torch.randn(notes.shape, generator=_gen(6)), peak)
    assert quiet < -60 and hissy > quiet + 20
    white = 0.3 * torch.randn(200, 1, 256, generator=_gen(7))
    flat = float(sound.mean_spectrum(white).mean())
    assert abs(sound.band_level_db(white, flat)) < 1  # white noise: every band at the mean
    with pytest.raises(ValueError, match="above must lie"):
        sound.band_level_db(notes, peak, above=1.0)
