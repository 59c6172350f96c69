"""The digit classifier: shapes, deterministic training, and its use as a Fréchet-distance feature net."""

import pytest
import torch

from diffusion_lite import data
from diffusion_lite.classifier import ClassifierConfig, DigitClassifier, accuracy, train_classifier
from diffusion_lite.metrics import feature_frechet_distance


def test_shapes_and_feature_attribute():
    clf = DigitClassifier(ClassifierConfig(num_features=16))
    x = torch.randn(5, 1, 8, 8)
    assert clf.num_features == 16
    assert clf(x).shape == (5, 16) and clf.logits(x).shape == (5, 10)
    with pytest.raises(ValueError, match="shape"):
        clf(torch.randn(5, 8, 8))


def test_frechet_distance_matches_torchmetrics_with_the_classifier_as_feature():
    torchmetrics_image = pytest.importorskip("torchmetrics.image.fid")
    torch.manual_seed(0)
    clf = DigitClassifier(ClassifierConfig(num_features=8)).eval()
    x_train, _ = data.load_digits(split="train")
    x_test, _ = data.load_digits(split="test")
    fid = torchmetrics_image.FrechetInceptionDistance(feature=clf, normalize=False)
    fid.update(x_train[:400], real=True)
    fid.update(x_test[:300], real=False)
    ours = feature_frechet_distance(clf, x_train[:400], x_test[:300])
    assert ours == pytest.approx(float(fid.compute()), rel=1e-3, abs=1e-6)


def test_short_training_learns_and_is_deterministic():
    """150 steps of a narrow net already separate most digits (the full run is cached, not tested here)."""
    x, y = data.load_digits(split="train")
    xt, yt = data.load_digits(split="test")
    cfg = ClassifierConfig(channels=16, num_features=16, steps=150, batch_size=64, lr=1e-2)
    a, b = train_classifier(x, y, cfg), train_classifier(x, y, cfg)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert accuracy(a, xt, yt) > 0.8
