"""A noise-aware digit classifier p_σ(c | x_σ), the ingredient of classifier guidance.

Classifier guidance adds γ σ² ∇_x log p_σ(c | x) to the denoiser {cite}`dhariwal2021`, so the
classifier must be right about *noisy* images at every σ the sampler visits: a classifier trained on
clean digits has no idea what a σ = 2 image of a 3 looks like. This one is chapter 8's
``DigitClassifier`` layout with the noise level as a second input: the image enters scaled by
c_in = 1/√(σ² + σ_d²) (EDM's input scaling {cite}`karras2022`) and every conv layer is shifted per
channel by an embedding of c_noise = ¼ log σ. It trains on x₀ + σ ε with log σ uniform on
[log σ_min, log σ_max], with cross-entropy. Cached with ``pretrained("digits_noisy_classifier")``.

| code | symbol | meaning |
|---|---|---|
| ``x`` | x_σ | noisy digits, shape (B, 1, 8, 8), values around [−1, 1] plus noise |
| ``sigma`` | σ | noise level, scalar or (B,) |
| ``log_prob(x, sigma)`` | log p_σ(c \\| x) | log-probabilities over the 10 classes, (B, 10) |
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from diffusion_lite import data, pretrained
from diffusion_lite.classifier import _random_shift
from diffusion_lite.utils import as_sigma

__all__ = ["NoisyClassifierConfig", "NoisyDigitClassifier", "train_noisy_classifier"]


@dataclass(frozen=True)
class NoisyClassifierConfig:
    """Architecture and training of the noise-aware classifier (every field is in the cache key)."""

    channels: int = 32         # conv width at 8×8 (2× at 4×4)
    emb_dim: int = 32          # width of the noise-level embedding
    num_classes: int = 10
    sigma_min: float = 0.01    # training noise levels: log σ uniform on [log σ_min, log σ_max]
    sigma_max: float = 20.0
    sigma_data: float = 0.5    # σ_d in the input scaling c_in = 1/√(σ² + σ_d²)
    steps: int = 1500          # AdamW steps
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    shift: int = 1             # random translation by up to ±shift pixels (augmentation)
    seed: int = 0              # seeds initialisation, batches, shifts and noise

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, "
                             f"{self.sigma_max}")
        for name in ("channels", "emb_dim", "num_classes", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.sigma_data <= 0 or self.shift < 0:
            raise ValueError("lr and sigma_data must be > 0 and shift >= 0")


class NoisyDigitClassifier(nn.Module):
    """conv → conv → pool → conv → mean → fc → logits, each conv shifted by an embedding of σ."""

    def __init__(self, config: NoisyClassifierConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or NoisyClassifierConfig()
        c, e = cfg.channels, cfg.emb_dim
        self.emb = nn.Sequential(nn.Linear(1, e), nn.SiLU(), nn.Linear(e, e), nn.SiLU())
        self.conv1, self.conv2 = nn.Conv2d(1, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.conv3 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.shift1, self.shift2, self.shift3 = nn.Linear(e, c), nn.Linear(e, c), nn.Linear(e, 2 * c)
        self.fc, self.head = nn.Linear(2 * c, 64), nn.Linear(64, cfg.num_classes)

    def logits(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """Class scores of noisy digits: (B, 1, 8, 8), σ → (B, num_classes)."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (B, 1, H, W), got {tuple(x.shape)}")
        w = self.fc.weight
        sigma = as_sigma(sigma, x).to(w.dtype)  # (B,)
        x = x.to(w.dtype) / (sigma**2 + self.config.sigma_data**2).sqrt()[:, None, None, None]
        e = self.emb((sigma.clamp_min(1e-20).log() / 4)[:, None])  # (B, emb_dim)
        h = F.silu(self.conv1(x) + self.shift1(e)[..., None, None])  # (B, c, 8, 8)
        h = F.silu(self.conv2(h) + self.shift2(e)[..., None, None])
        h = F.max_pool2d(h, 2)  # (B, c, 4, 4)
        h = F.silu(self.conv3(h) + self.shift3(e)[..., None, None]).mean(dim=(2, 3))  # (B, 2c)
        return self.head(F.silu(self.fc(h)))

    def log_prob(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """log p_σ(c | x), shape (B, num_classes): what ``inverse.ClassifierGuidedDenoiser`` wants."""
        return F.log_softmax(self.logits(x, sigma), dim=1)

    forward = log_prob


def train_noisy_classifier(x: torch.Tensor, y: torch.Tensor,
                           config: NoisyClassifierConfig | None = None) -> NoisyDigitClassifier:
    """Minimise cross-entropy of p_σ(y | x₀ + σ ε) with log σ ~ U[log σ_min, log σ_max]."""
    cfg = config or NoisyClassifierConfig()
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(cfg.seed)
        model = NoisyDigitClassifier(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    lo, hi = math.log(cfg.sigma_min), math.log(cfg.sigma_max)
    model.train()
    for _ in tqdm(range(cfg.steps), disable=not sys.stdout.isatty(), desc="noisy classifier"):
        idx = torch.randint(0, len(x), (cfg.batch_size,), generator=gen)
        x0 = _random_shift(x[idx], cfg.shift, gen)  # (B, 1, 8, 8)
        sigma = (lo + (hi - lo) * torch.rand(cfg.batch_size, generator=gen)).exp()  # (B,)
        xs = x0 + sigma[:, None, None, None] * torch.randn(x0.shape, generator=gen)
        loss = F.cross_entropy(model.logits(xs, sigma), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def _train(cfg: NoisyClassifierConfig) -> tuple[nn.Module, dict]:
    x, y = data.load_digits(split="train")
    return train_noisy_classifier(x, y, cfg), {"config": asdict(cfg)}


pretrained.register("digits_noisy_classifier",
                    pretrained.Entry(NoisyClassifierConfig(), NoisyDigitClassifier, _train,
                                     pretrained.digits_fingerprint))

# What chapter 13 loads, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [("digits_noisy_classifier", NoisyClassifierConfig())]
