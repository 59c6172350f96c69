r"""The autoregressive baseline: p_θ(x) = Π_l p_θ(x_l | x_<l), exact likelihood, left-to-right sampling.

The same :class:`~diffusion_lite.nets.token_transformer.TokenTransformer` as the masked model,
built with ``causal=True``. Its input is the sequence shifted right by one, with the extra id
``bos_id`` = V in front, so the logits at position l see x_<l only {cite}`vaswani2017`. The
log-likelihood is exact (a sum of L cross-entropies), where the masked model only has a bound.

Notation (code → symbol):

| code | symbol / meaning |
|---|---|
| ``x`` | x (B, L) token ids |
| ``bos_id`` | the begin-of-sentence id (= V, the extra input id) |
| ``shift_right(x)`` | (BOS, x_1, …, x_{L−1}): the inputs whose outputs predict x_1 … x_L |
| ``log_prob(net, x)`` | log p_θ(x) = Σ_l log p_θ(x_l \| x_<l), nats per sequence |
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .masked import categorical

__all__ = ["shift_right", "token_log_probs", "log_prob", "loss", "sample"]


def shift_right(x: torch.Tensor, bos_id: int) -> torch.Tensor:
    """(B, L) → (B, L): BOS, then x without its last token (teacher forcing)."""
    return torch.cat([torch.full_like(x[:, :1], bos_id), x[:, :-1]], dim=1)


def token_log_probs(net: Callable[..., torch.Tensor], x: torch.Tensor, bos_id: int) -> torch.Tensor:
    """log p_θ(x_l | x_<l) for every position: shape (B, L), nats."""
    logp = net(shift_right(x, bos_id)).log_softmax(-1)  # (B, L, V)
    return logp.gather(-1, x[..., None])[..., 0]


def log_prob(net: Callable[..., torch.Tensor], x: torch.Tensor, bos_id: int) -> torch.Tensor:
    """log p_θ(x) = Σ_l log p_θ(x_l | x_<l): shape (B,), nats — exact, no bound."""
    return token_log_probs(net, x, bos_id).sum(dim=1)


def loss(net: Callable[..., torch.Tensor], x: torch.Tensor, bos_id: int) -> torch.Tensor:
    """−log p_θ(x) per sequence (B,), nats: the cross-entropy of next-token prediction."""
    logits = net(shift_right(x, bos_id))  # (B, L, V)
    return F.cross_entropy(logits.transpose(1, 2), x, reduction="none").sum(dim=1)


@torch.no_grad()
def sample(net: Callable[..., torch.Tensor], n: int, length: int, bos_id: int, *,
           prefix: torch.Tensor | None = None, generator: torch.Generator | None = None,
           device: torch.device | str | None = None) -> torch.Tensor:
    """Draw ``n`` sequences of ``length`` tokens left to right (L − len(prefix) network calls).

    ``prefix`` (n, P) fixes the first P tokens: the only conditioning a left-to-right model
    offers without extra machinery (it cannot look at a suffix). Tokens are drawn in float64.
    """
    if prefix is None:
        prefix = torch.zeros(n, 0, dtype=torch.long, device=device)
    if prefix.ndim != 2 or prefix.shape[0] != n or prefix.shape[1] > length:
        raise ValueError(f"prefix must be (n, P) with n={n} and P <= length={length}, "
                         f"got {tuple(prefix.shape)}")
    x = torch.zeros(n, length, dtype=torch.long, device=prefix.device)
    x[:, : prefix.shape[1]] = prefix
    for l in range(prefix.shape[1], length):
        logits = net(shift_right(x, bos_id))[:, l]  # (n, V): causal, so x_≥l is never seen
        x[:, l] = categorical(logits, generator)
    return x
