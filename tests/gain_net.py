"""A network whose every denoiser is linear in x: F(x, c_noise) = g(c_noise) · x (Gaussian tests)."""

import torch
from torch import nn


class GainNet(nn.Module):
    """F(x, c_noise) = g(c_noise) · x with g a tiny MLP: it can express any σ-dependent gain."""

    def __init__(self):
        super().__init__()
        self.g = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))

    def forward(self, x, c_noise, labels=None):
        return self.g(c_noise.reshape(-1, 1).to(x.dtype)) * x
