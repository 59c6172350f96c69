"""Checkers for chapter 15, "Text: discrete (masked) diffusion".

All three use the linear schedule α_t = 1 − t (a token is masked with probability t) and take the
uniform numbers ``u`` as an argument, so a right answer is reproducible and a wrong one can be
named: every checker compares with the reference and with the typical slips.

| exercise | learner writes | reference |
|---|---|---|
| ``check_forward_mask`` | ``forward_mask(x0, t, u, mask_id)`` | z_l = [M] where u_l < t (rate 1 − α_t = t), else x_l |
| ``check_unmask_step`` | ``unmask_step(z, x_pred, t, s, u, mask_id)`` | a masked z_l becomes x̂_l where u_l < (t − s)/t; visible tokens never change |
| ``check_masked_ce`` | ``masked_ce(logits, x0, masked, t)`` | (1/t) Σ_{l masked} −log softmax(logits_l)[x_l], per sequence |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .core import ExerciseError, check_function, check_value, to_numpy

__all__ = ["check_forward_mask", "check_unmask_step", "check_masked_ce", "forward_mask_reference",
           "unmask_step_reference", "masked_ce_reference"]

MASK = 9  # the mask id in the checkers' cases: a vocabulary of 9 real tokens 0 … 8


def _cases(seed: int, n: int = 3) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for _ in range(n):
        B, L = 6, 10
        t = torch.rand(B, generator=g, dtype=torch.float64) * 0.8 + 0.15  # (B,) in (0.15, 0.95)
        cases.append(dict(x0=torch.randint(9, (B, L), generator=g), t=t,
                          u=torch.rand(B, L, generator=g, dtype=torch.float64)))
    return cases


def _compare_with_slips(slips: Mapping[str, tuple[Callable[[dict], object], str]], name: str,
                        hints: Mapping[str, str]):
    """A ``compare`` for check_function that names a known slip before the generic diagnosis."""
    def compare(got, want, *, context, case):
        g = to_numpy(got, name)
        w = to_numpy(want, "the reference")
        if g.shape == w.shape and np.allclose(g, w, rtol=1e-6, atol=1e-9):
            return
        for slip_value, message in slips.values():
            s = to_numpy(slip_value(case), "slip")
            if g.shape == s.shape and np.allclose(g, s, rtol=1e-6, atol=1e-9):
                raise ExerciseError(f"{name} is not right {context}: {message}")
        check_value(got, want, name=name, atol=1e-9, rtol=1e-6, hints=hints, context=context)
    return compare


def _run(candidate: Callable, reference: Callable, cases: list[dict], name: str,
         slips: Mapping[str, tuple[Callable[[dict], object], str]], hints: Mapping[str, str]) -> None:
    compare, pending = _compare_with_slips(slips, name, hints), iter(cases)
    # check_function calls ``compare`` once per case, in order: pair each call with its inputs.
    check_function(candidate, reference, cases, name=name, hints=hints,
                   compare=lambda got, want, context: compare(got, want, context=context,
                                                              case=next(pending)))


# --- exercise 1: the forward process ----------------------------------------------------------
def forward_mask_reference(x0: torch.Tensor, t: torch.Tensor, u: torch.Tensor,
                           mask_id: int) -> torch.Tensor:
    """z_t: token l is replaced by [M] where u_l < 1 − α_t = t (one t per sequence)."""
    return torch.where(u < t[:, None], torch.full_like(x0, mask_id), x0)


def check_forward_mask(forward_mask: Callable) -> None:
    """Check ``forward_mask(x0, t, u, mask_id)`` on batches with one t per sequence."""
    cases = [dict(c, mask_id=MASK) for c in _cases(15)]
    slips = {
        "keep rate": (lambda c: torch.where(c["u"] < 1 - c["t"][:, None], MASK, c["x0"]),
                      "you mask with probability α_t = 1 − t, the probability of *keeping* a "
                      "token. At t = 1 everything must be masked, at t = 0 nothing."),
        "one u per row": (lambda c: torch.where(c["u"][:, :1] < c["t"][:, None], MASK, c["x0"]),
                          "tokens are masked independently: compare each position's own u_l "
                          "with t, not one number per sequence."),
        "mask id 0": (lambda c: torch.where(c["u"] < c["t"][:, None], 0, c["x0"]),
                      "a masked position holds the mask id `mask_id`, not 0."),
    }
    hints = {"exception": "t has shape (B,) and u (B, L): use t[:, None] to broadcast.",
             "value": "z = where(u < t, mask_id, x0), with t[:, None] for broadcasting."}
    _run(forward_mask, forward_mask_reference, cases, "forward_mask", slips, hints)


# --- exercise 2: one reverse (unmasking) step --------------------------------------------------
def unmask_step_reference(z: torch.Tensor, x_pred: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                          u: torch.Tensor, mask_id: int) -> torch.Tensor:
    """From t to s < t: a masked token is revealed as x̂ w.p. (α_s − α_t)/(1 − α_t) = (t − s)/t."""
    reveal = (z == mask_id) & (u < ((t - s) / t)[:, None])
    return torch.where(reveal, x_pred, z)


def _step_cases(seed: int) -> list[dict]:
    out = []
    for c in _cases(seed):
        g = torch.Generator().manual_seed(seed + int(c["u"][0, 0] * 1000))
        z, _ = forward_mask_reference(c["x0"], c["t"], c["u"], MASK), None
        x_pred = (c["x0"] + torch.randint(1, 9, c["x0"].shape, generator=g)) % 9  # ≠ x0 everywhere
        s = c["t"] * torch.rand(len(c["t"]), generator=g, dtype=torch.float64) * 0.8  # s < t
        out.append(dict(z=z, x_pred=x_pred, t=c["t"], s=s,
                        u=torch.rand(c["u"].shape, generator=g, dtype=torch.float64), mask_id=MASK))
    return out


def check_unmask_step(unmask_step: Callable) -> None:
    """Check ``unmask_step(z, x_pred, t, s, u, mask_id)`` (one ancestral step, linear schedule)."""
    def where_rate(c, rate, only_masked=True, fill=None):
        reveal = u_lt = c["u"] < rate[:, None]
        if only_masked:
            reveal = (c["z"] == MASK) & u_lt
            return torch.where(reveal, c["x_pred"], c["z"])
        return torch.where(reveal, c["x_pred"], c["z"] if fill is None else torch.full_like(c["z"], fill))

    slips = {
        "stay rate": (lambda c: where_rate(c, c["s"] / c["t"]),
                      "(the reveal probability) you used s/t, the probability that a masked token "
                      "*stays* masked from t to s. Reveal with (α_s − α_t)/(1 − α_t) = (t − s)/t."),
        "unnormalised": (lambda c: where_rate(c, c["t"] - c["s"]),
                         "(the reveal probability) t − s is α_s − α_t; divide by 1 − α_t = t, the "
                         "probability of being masked at t, to condition on being masked now."),
        "re-mask": (lambda c: where_rate(c, (c["t"] - c["s"]) / c["t"], only_masked=False,
                                         fill=MASK),
                    "you re-mask tokens that are already visible. In absorbing-state diffusion a "
                    "revealed token is final: only positions holding mask_id may change."),
        "overwrite": (lambda c: where_rate(c, (c["t"] - c["s"]) / c["t"], only_masked=False),
                      "you overwrite visible tokens with the prediction. A visible token is "
                      "already the clean token (carry-over): only positions holding mask_id may change."),
    }
    hints = {"value": "reveal = (z == mask_id) & (u < (t - s) / t); z_s = where(reveal, x_pred, z).",
             "exception": "t and s have shape (B,): use [:, None] to broadcast against (B, L)."}
    _run(unmask_step, unmask_step_reference, _step_cases(16), "unmask_step", slips, hints)


# --- exercise 3: the weighted masked cross-entropy ---------------------------------------------
def masked_ce_reference(logits: torch.Tensor, x0: torch.Tensor, masked: torch.Tensor,
                        t: torch.Tensor) -> torch.Tensor:
    """(1/t) Σ_{l masked} −log p_θ(x_l | z_t) per sequence (B,): the bound's integrand, w(t) = 1/t."""
    ce = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")  # (B, L)
    return (ce * masked).sum(1) / t


def check_masked_ce(masked_ce: Callable) -> None:
    """Check ``masked_ce(logits, x0, masked, t)`` on batches with one t per sequence."""
    g = torch.Generator().manual_seed(17)
    cases = []
    for c in _cases(17):
        B, L = c["x0"].shape
        cases.append(dict(logits=torch.randn(B, L, 9, generator=g, dtype=torch.float64) * 2,
                          x0=c["x0"], masked=c["u"] < c["t"][:, None], t=c["t"]))

    def ce(c):
        return F.cross_entropy(c["logits"].transpose(1, 2), c["x0"], reduction="none")

    slips = {
        "all tokens": (lambda c: ce(c).sum(1) / c["t"],
                       "you sum the cross-entropy over all positions. Visible tokens are copied, "
                       "not predicted: only masked positions carry loss."),
        "mean all": (lambda c: ce(c).mean(1) / c["t"],
                     "you average over all positions; the bound *sums* over the masked ones only."),
        "mean masked": (lambda c: (ce(c) * c["masked"]).sum(1) / c["masked"].sum(1).clamp_min(1) / c["t"],
                        "you average over the masked positions. The bound sums them: with w(t) = 1/t "
                        "each sequence's sum is already normalised in expectation (about t·L masked)."),
        "weight t": (lambda c: (ce(c) * c["masked"]).sum(1) * c["t"],
                     "the weight is w(t) = −α'_t/(1 − α_t) = 1/t for α_t = 1 − t, not t."),
        "weight 1/(1-t)": (lambda c: (ce(c) * c["masked"]).sum(1) / (1 - c["t"]),
                           "the weight is w(t) = −α'_t/(1 − α_t) = 1/t: 1 − α_t = t is the masking "
                           "rate, not 1 − t."),
        "no weight": (lambda c: (ce(c) * c["masked"]).sum(1),
                      "you forgot the weight w(t) = 1/t: without it the loss is not the ELBO."),
        "probabilities": (lambda c: ((1 - c["logits"].softmax(-1).gather(-1, c["x0"][..., None])[..., 0])
                                     * c["masked"]).sum(1) / c["t"],
                          "the loss is the cross-entropy −log p_θ(x_l | z), not 1 − p."),
    }
    hints = {"shape": "return one number per sequence, shape (B,): sum over positions, keep the batch.",
             "value": "ce = F.cross_entropy(logits.transpose(1, 2), x0, reduction='none') is (B, L); "
                      "keep masked positions, sum over L, divide by t.",
             "sign": "cross-entropy is −log p: positive."}
    _run(masked_ce, masked_ce_reference, cases, "masked_ce", slips, hints)
