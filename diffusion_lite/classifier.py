"""A small digit classifier for evaluation: label accuracy of samples, and features for a Fréchet distance.

Trained once on the training split (``pretrained("digits_classifier")``), it answers two questions
about generated digits: is a sample asked to be a "3" recognised as a 3 (guidance accuracy), and
how far is the cloud of samples from the cloud of real digits in the classifier's feature space
(the Fréchet distance of {cite}`heusel2017`, with this small network in place of
Inception; the distance itself is ``metrics.frechet_distance``). ``DigitClassifier`` has a ``num_features`` attribute and maps images to features when
called, so torchmetrics' ``FrechetInceptionDistance(feature=module)`` accepts it.

Notation (code → notebook):

| code | symbol | meaning |
|---|---|---|
| ``x`` | x₀ | digit images in [−1, 1], shape (B, 1, 8, 8) |
| ``features(x)`` | φ(x) | penultimate activations, shape (B, num_features) |
| ``logits(x)`` | | class scores, shape (B, 10) |
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ClassifierConfig", "DigitClassifier", "train_classifier", "accuracy"]


@dataclass(frozen=True)
class ClassifierConfig:
    """Classifier architecture and training (every field is part of the cache key)."""

    channels: int = 32       # conv width at 8×8 (2× at 4×4)
    num_features: int = 64   # width of the feature layer φ used by the Fréchet distance
    num_classes: int = 10
    steps: int = 1500        # Adam steps
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    shift: int = 1           # random translation by up to ±shift pixels (augmentation)
    seed: int = 0


class DigitClassifier(nn.Module):
    """conv(8×8) → conv → pool(4×4) → conv → global average → φ (num_features) → logits.

    Calling the module returns the features φ(x) (what torchmetrics' FID expects from a feature
    extractor); ``logits(x)`` gives the class scores.
    """

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__()
        cfg = config or ClassifierConfig()
        self.config = cfg
        c = cfg.channels
        self.num_features = cfg.num_features
        self.conv1 = nn.Conv2d(1, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.conv3 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.fc = nn.Linear(2 * c, cfg.num_features)
        self.head = nn.Linear(cfg.num_features, cfg.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): (B, 1, 8, 8) → (B, num_features)."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (B, 1, H, W), got {tuple(x.shape)}")
        h = F.silu(self.conv1(x))  # (B, c, 8, 8)
        h = F.max_pool2d(F.silu(self.conv2(h)), 2)  # (B, c, 4, 4)
        h = F.silu(self.conv3(h)).mean(dim=(2, 3))  # (B, 2c)
        return F.silu(self.fc(h))  # (B, num_features)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores: (B, 1, 8, 8) → (B, num_classes)."""
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.to(self.fc.weight.dtype))


def _random_shift(x: torch.Tensor, shift: int, generator: torch.Generator | None) -> torch.Tensor:
    """Translate each image by up to ±shift pixels, padding with the background value −1."""
    if shift == 0:
        return x
    B, _, H, W = x.shape
    padded = F.pad(x, (shift,) * 4, value=-1.0)  # (B, 1, H+2s, W+2s)
    dx, dy = torch.randint(0, 2 * shift + 1, (2, B), generator=generator).tolist()
    return torch.stack([padded[b, :, dy[b]:dy[b] + H, dx[b]:dx[b] + W] for b in range(B)])


def train_classifier(x: torch.Tensor, y: torch.Tensor, config: ClassifierConfig | None = None,
                     *, generator: torch.Generator | None = None) -> DigitClassifier:
    """Train the classifier with cross-entropy and Adam; deterministic given ``config.seed``."""
    cfg = config or ClassifierConfig()
    gen = generator or torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG left untouched
        torch.manual_seed(cfg.seed)
        model = DigitClassifier(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    model.train()
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(x), (cfg.batch_size,), generator=gen)
        xb = _random_shift(x[idx], cfg.shift, gen)  # (B, 1, 8, 8)
        loss = F.cross_entropy(model.logits(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: DigitClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of images whose arg-max class equals ``y``."""
    return float((model.logits(x).argmax(dim=1) == y.to(x.device)).float().mean())

