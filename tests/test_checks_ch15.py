"""Chapter 15 checkers accept the reference and name the typical slips (right shape and scale)."""

import pytest
import torch
import torch.nn.functional as F

from diffusion_lite.checks import ExerciseError, ch15


def test_forward_mask():
    ch15.check_forward_mask(ch15.forward_mask_reference)
    ch15.check_forward_mask(lambda x0, t, u, mask_id: x0.masked_fill(u < t.unsqueeze(1), mask_id))
    with pytest.raises(ExerciseError, match="probability α_t"):  # masks at the keep rate
        ch15.check_forward_mask(lambda x0, t, u, mask_id: torch.where(u < 1 - t[:, None], mask_id, x0))
    with pytest.raises(ExerciseError, match="independently"):
        ch15.check_forward_mask(lambda x0, t, u, mask_id: torch.where(u[:, :1] < t[:, None], mask_id, x0))
    with pytest.raises(ExerciseError, match="differs"):  # an unnamed slip: u <= t**2
        ch15.check_forward_mask(lambda x0, t, u, mask_id: torch.where(u < t[:, None] ** 2, mask_id, x0))
    with pytest.raises(ExerciseError, match="(?s)raised.*t\\[:, None\\]"):
        ch15.check_forward_mask(lambda x0, t, u, mask_id: torch.where(u < t, mask_id, x0))

    def stub(x0, t, u, mask_id):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch15.check_forward_mask(stub)


def _step(rate, only_masked=True, fill=None):
    def f(z, x_pred, t, s, u, mask_id):
        hit = u < rate(t, s)[:, None]
        if only_masked:
            return torch.where((z == mask_id) & hit, x_pred, z)
        return torch.where(hit, x_pred, z if fill is None else torch.full_like(z, mask_id))
    return f


def test_unmask_step():
    ch15.check_unmask_step(ch15.unmask_step_reference)
    ch15.check_unmask_step(_step(lambda t, s: 1 - s / t))  # the same rate written differently
    with pytest.raises(ExerciseError, match="stays"):
        ch15.check_unmask_step(_step(lambda t, s: s / t))
    with pytest.raises(ExerciseError, match="divide by"):
        ch15.check_unmask_step(_step(lambda t, s: t - s))
    with pytest.raises(ExerciseError, match="re-mask"):
        ch15.check_unmask_step(_step(lambda t, s: (t - s) / t, only_masked=False, fill=True))
    with pytest.raises(ExerciseError, match="overwrite"):
        ch15.check_unmask_step(_step(lambda t, s: (t - s) / t, only_masked=False))
    with pytest.raises(ExerciseError, match="differs"):  # reveals everything at once
        ch15.check_unmask_step(lambda z, x_pred, t, s, u, mask_id: torch.where(z == mask_id, x_pred, z))
    with pytest.raises(ExerciseError, match="returned None"):
        ch15.check_unmask_step(lambda z, x_pred, t, s, u, mask_id: None)


def _ce(logits, x0):
    return F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")


def test_masked_ce():
    ch15.check_masked_ce(ch15.masked_ce_reference)
    ch15.check_masked_ce(lambda logits, x0, masked, t: -(logits.log_softmax(-1).gather(
        -1, x0[..., None])[..., 0] * masked).sum(1) / t)
    slips = {
        "only masked positions": lambda logits, x0, masked, t: _ce(logits, x0).sum(1) / t,
        "average over all positions": lambda logits, x0, masked, t: _ce(logits, x0).mean(1) / t,
        "average over the masked": lambda logits, x0, masked, t: (_ce(logits, x0) * masked).sum(1) / masked.sum(1) / t,
        "not t": lambda logits, x0, masked, t: (_ce(logits, x0) * masked).sum(1) * t,
        "not 1 − t": lambda logits, x0, masked, t: (_ce(logits, x0) * masked).sum(1) / (1 - t),
        "forgot the weight": lambda logits, x0, masked, t: (_ce(logits, x0) * masked).sum(1),
    }
    for diagnosis, wrong in slips.items():
        with pytest.raises(ExerciseError, match=diagnosis):
            ch15.check_masked_ce(wrong)
    with pytest.raises(ExerciseError, match="wrong sign"):
        ch15.check_masked_ce(lambda logits, x0, masked, t: -(_ce(logits, x0) * masked).sum(1) / t)
    with pytest.raises(ExerciseError, match="shape"):
        ch15.check_masked_ce(lambda logits, x0, masked, t: _ce(logits, x0) * masked / t[:, None])
    with pytest.raises(ExerciseError, match="differs"):  # an unnamed slip: weight 1/t²
        ch15.check_masked_ce(lambda logits, x0, masked, t: (_ce(logits, x0) * masked).sum(1) / t**2)


def test_checkers_do_not_touch_the_global_rng():
    state = torch.get_rng_state()
    ch15.check_masked_ce(ch15.masked_ce_reference)
    ch15.check_unmask_step(ch15.unmask_step_reference)
    assert torch.equal(state, torch.get_rng_state())
