"""The noise-aware classifier: shapes, normalised log-probabilities, config validation, training."""

import pytest
import torch

from diffusion_lite import pretrained
from diffusion_lite.nets.noisy_classifier import (NoisyClassifierConfig, NoisyDigitClassifier,
                                                  train_noisy_classifier)


def test_log_prob_is_normalised_and_accepts_per_sample_sigma():
    net = NoisyDigitClassifier(NoisyClassifierConfig(channels=4, emb_dim=4))
    x = torch.randn(5, 1, 8, 8)
    lp = net.log_prob(x, torch.linspace(0.01, 5.0, 5))
    assert lp.shape == (5, 10)
    assert torch.allclose(lp.exp().sum(1), torch.ones(5), atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        net.log_prob(x[:, 0], 1.0)


def test_config_validation_and_registration():
    with pytest.raises(ValueError, match="sigma_min"):
        NoisyClassifierConfig(sigma_min=2.0, sigma_max=1.0)
    with pytest.raises(ValueError, match="steps"):
        NoisyClassifierConfig(steps=0)
    assert "digits_noisy_classifier" in pretrained.REGISTRY


def test_training_learns_a_separable_toy_problem():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (256,), generator=g)
    x = torch.where(y[:, None, None, None] == 1, 1.0, -1.0) * torch.ones(256, 1, 8, 8)
    cfg = NoisyClassifierConfig(channels=4, emb_dim=4, num_classes=2, steps=60, batch_size=32,
                                sigma_max=0.5, shift=0)
    net = train_noisy_classifier(x, y, cfg)
    with torch.no_grad():
        acc = (net.log_prob(x, 0.3).argmax(1) == y).float().mean()
    assert acc > 0.95
