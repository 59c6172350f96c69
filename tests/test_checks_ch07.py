"""Chapter 7 checkers accept the reference and reject typical wrong answers with the right diagnosis."""

import pytest
import torch

from diffusion_lite.checks import ch07
from diffusion_lite.checks.core import ExerciseError
from diffusion_lite.guidance import cfg_combine, drop_labels


def test_cfg_accepts_reference(capsys):
    ch07.check_cfg_combine(cfg_combine)
    ch07.check_cfg_combine(lambda d_uncond, d_cond, scale: (1 - scale) * d_uncond + scale * d_cond)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,message", [
    (lambda d_uncond, d_cond, scale: d_cond + scale * (d_uncond - d_cond), "swaps"),
    (lambda d_uncond, d_cond, scale: (1 + scale) * d_cond - scale * d_uncond, "convention"),
    (lambda d_uncond, d_cond, scale: scale * (d_cond - d_uncond), "starting point"),
    (lambda d_uncond, d_cond, scale: d_uncond + 2 * scale * (d_cond - d_uncond), "differs"),
    (lambda d_uncond, d_cond, scale: (d_uncond + scale * (d_cond - d_uncond)).mean(0), "shape"),
])
def test_cfg_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch07.check_cfg_combine(wrong)


def test_cfg_not_written_yet():
    def stub(d_uncond, d_cond, scale):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch07.check_cfg_combine(stub)


def test_drop_labels_accepts_reference_and_bernoulli_variant(capsys):
    ch07.check_drop_labels(drop_labels)

    def bernoulli(labels, p_uncond, null_label, generator=None):
        mask = torch.bernoulli(torch.full(labels.shape, p_uncond), generator=generator).bool()
        return labels.masked_fill(mask, null_label)

    ch07.check_drop_labels(bernoulli)
    assert "correct" in capsys.readouterr().out


def _inverted(labels, p_uncond, null_label, generator=None):
    u = torch.rand(labels.shape, generator=generator)
    return torch.where(u < p_uncond, labels, torch.full_like(labels, null_label))


def _zero(labels, p_uncond, null_label, generator=None):
    u = torch.rand(labels.shape, generator=generator)
    return torch.where(u < p_uncond, torch.zeros_like(labels), labels)


def _in_place(labels, p_uncond, null_label, generator=None):
    labels[torch.rand(labels.shape, generator=generator) < p_uncond] = null_label
    return labels


def _global_rng(labels, p_uncond, null_label, generator=None):
    return torch.where(torch.rand(labels.shape) < p_uncond, torch.full_like(labels, null_label), labels)


def _float(labels, p_uncond, null_label, generator=None):
    return drop_labels(labels, p_uncond, null_label, generator=generator).float()


@pytest.mark.parametrize("wrong,message", [
    (_inverted, "inverted"), (_zero, "digit zero"), (_in_place, "in place"),
    (_global_rng, "same generator seed"), (_float, "integer"),
])
def test_drop_labels_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch07.check_drop_labels(wrong)
