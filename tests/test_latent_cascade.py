"""Latent diffusion and the cascade as compositions: data samplers, conditions, the cache round trip
(σ_d of the latent survives it), samplers run end to end on tiny models."""

import pytest
import torch

from diffusion_lite import pretrained, schedules
from diffusion_lite.cascade import (Cascade, CascadeConfig, SuperResolutionNet, downsample,
                                    make_condition, sample_cascade, upsample)
from diffusion_lite.latent import LatentDiffusionConfig, latent_sampler, sample_latent
from diffusion_lite.nets.autoencoder import AutoencoderConfig
from diffusion_lite.nets.transformer import TransformerConfig
from diffusion_lite.training import TrainConfig

TINY = dict(width=16, depth=1, heads=2, mlp_ratio=1)


def _train(**kw):
    return TrainConfig(**{"steps": 4, "batch_size": 16, "lr_warmup": 1, "progress": False} | kw)


def test_latent_sampler_draws_from_q_with_matching_labels():
    mean = torch.arange(4.0)[:, None, None, None].expand(4, 2, 1, 1) * 10  # row r has μ = 10 r
    logvar = torch.full_like(mean, 2 * torch.log(torch.tensor(0.5)))  # σ = 0.5
    z, y = latent_sampler(mean, logvar, torch.arange(4))(20000, torch.Generator().manual_seed(0))
    assert z.shape == (20000, 2, 1, 1)
    rows = (z[:, 0, 0, 0] / 10).round().long()
    assert torch.equal(rows, y)  # each z comes with its own image's label
    resid = z - 10 * y[:, None, None, None].float()
    assert abs(float(resid.std()) - 0.5) < 0.01 and abs(float(resid.mean())) < 0.01


def test_condition_and_resampling():
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    low = downsample(x)
    assert torch.allclose(low[:, :, 1, 2], x[:, :, 2:4, 4:6].mean((-1, -2)))
    assert torch.equal(downsample(upsample(low)), low)
    cond = make_condition(low, 0.0, torch.tensor([4, 0, 9]))
    assert cond.shape == (3, 3, 8, 8) and torch.equal(cond[:, :1], upsample(low))
    assert torch.equal(cond[:, 2, 5, 1], torch.tensor([4.0, 0.0, 9.0]))
    assert torch.equal(make_condition(low, 0.0)[:, 2], torch.full((3, 8, 8), 10.0))  # null class
    noisy = make_condition(low, torch.tensor([0.0, 0.5, 1.0]), generator=torch.Generator())
    assert torch.equal(noisy[:, 1, 0, 0], torch.tensor([0.0, 0.5, 1.0]))
    assert torch.equal(noisy[0, :1], upsample(low)[0]) and not torch.equal(noisy[2, :1],
                                                                           upsample(low)[2])
    net = SuperResolutionNet(TransformerConfig(in_channels=3, out_channels=1, **TINY))
    _ = net(x, torch.zeros(3), cond)  # the class plane becomes the transformer's label
    assert net(x, torch.zeros(3), cond).shape == x.shape
    with pytest.raises(ValueError, match="needs its condition"):
        net(x, torch.zeros(3))


def test_latent_diffusion_trains_caches_and_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_LITE_CACHE", str(tmp_path))
    cfg = LatentDiffusionConfig(
        autoencoder=AutoencoderConfig(channels=4, steps=3, batch_size=16, progress=False),
        net=TransformerConfig(in_channels=4, image_size=2, patch_size=1, **TINY),
        train=_train(label_dropout=0.1, null_label=10))
    model = pretrained.pretrained("ch12_latent", cfg, verbose=False)
    again = pretrained.pretrained("ch12_latent", cfg, verbose=False)  # loaded from the cache
    assert float(model.latent_std) == float(again.latent_std) != 1.0
    assert again.denoiser().sigma_data == pytest.approx(float(model.latent_std))
    sigmas = schedules.karras_sigmas(3, 0.01, 10.0)
    labels = torch.tensor([1, 7])
    a = sample_latent(model, labels, sigmas, generator=torch.Generator().manual_seed(0))
    b = sample_latent(again, labels, sigmas, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 1, 8, 8) and torch.allclose(a, b, atol=1e-5)  # same weights (memory
    # layouts differ after training, so matrix products may round differently)
    assert sample_latent(model, None, sigmas, n=3, sampler="euler").shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="pass labels"):
        sample_latent(model, None, sigmas)


def test_latent_config_must_match_the_autoencoder():
    with pytest.raises(ValueError, match="in_channels=4"):
        from diffusion_lite.latent import LatentDiffusion
        LatentDiffusion(LatentDiffusionConfig(net=TransformerConfig(in_channels=2, image_size=2,
                                                                    patch_size=1, **TINY)))


def test_cascade_trains_and_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_LITE_CACHE", str(tmp_path))
    cfg = CascadeConfig(base=TransformerConfig(image_size=4, patch_size=1, **TINY),
                        sr=TransformerConfig(in_channels=3, out_channels=1, **TINY),
                        train_base=_train(label_dropout=0.1, null_label=10), train_sr=_train())
    model = pretrained.pretrained("ch12_cascade", cfg, verbose=False)
    assert isinstance(model, Cascade)
    sigmas = schedules.karras_sigmas(3, 0.01, 10.0)
    x, low = sample_cascade(model, torch.tensor([0, 3, 9]), sigmas, sigmas, aug_sigma=0.2,
                            generator=torch.Generator().manual_seed(0), return_low=True)
    assert x.shape == (3, 1, 8, 8) and low.shape == (3, 1, 4, 4) and torch.isfinite(x).all()
    with pytest.raises(ValueError, match="outside the trained range"):
        sample_cascade(model, torch.tensor([0]), sigmas, sigmas, aug_sigma=0.9)
    with pytest.raises(ValueError, match="twice"):
        CascadeConfig(base=TransformerConfig(image_size=8))


class _StubClassifier(torch.nn.Module):
    """Features = the flattened image; class = argmax of a fixed linear map."""

    def __init__(self):
        super().__init__()
        self.w = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        return x.flatten(1)

    def logits(self, x):
        return x.flatten(1) @ self.w


def test_score_samples_on_real_images():
    from diffusion_lite.latent import score_samples

    clf = _StubClassifier()
    ref = torch.randn(80, 1, 8, 8, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
    labels = clf.logits(ref).argmax(1)
    images, sc = score_samples(lambda y, g: ref.clone(), labels, ref, clf)
    assert torch.equal(images, ref) and sc.accuracy == 1.0 and abs(sc.fd) < 1e-6
    shifted = score_samples(lambda y, g: (ref + 0.5).clamp(-1, 1), labels, ref, clf)[1]
    assert shifted.fd > 1 and shifted.kid > 0 and shifted.ms_per_sample >= 0
