"""Chapter 12 checkers accept the reference and reject typical wrong answers of the right shape."""

import pytest
import torch

from diffusion_lite.checks import ch12
from diffusion_lite.checks.core import ExerciseError
from diffusion_lite.nets.transformer import modulate, patchify
from diffusion_lite.nonlocal_means import nlm_weight, patch_kernel


def _six(x, p):
    B, C, H, W = x.shape
    return x.reshape(B, C, H // p, p, W // p, p), (B, C, H // p, W // p)


def test_patchify_accepts_reference_and_unfold(capsys):
    ch12.check_patchify(patchify)
    ch12.check_patchify(lambda x, p: torch.nn.functional.unfold(x, p, stride=p).transpose(1, 2))
    assert "correct" in capsys.readouterr().out


def _channels_last(x, p):
    six, (B, C, h, w) = _six(x, p)
    return six.permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, -1)


def _column_major(x, p):
    six, (B, C, h, w) = _six(x, p)
    return six.permute(0, 4, 2, 1, 3, 5).reshape(B, h * w, -1)


def _strided(x, p):
    B, C, H, W = x.shape
    return x.reshape(B, C, p, H // p, p, W // p).permute(0, 3, 5, 1, 2, 4).reshape(B, -1, C * p * p)


def _transposed(x, p):
    six, (B, C, h, w) = _six(x, p)
    return six.permute(0, 2, 4, 1, 5, 3).reshape(B, h * w, -1)


def _plain_reshape(x, p):  # right shape, scrambled content
    B, C, H, W = x.shape
    return x.reshape(B, (H // p) * (W // p), C * p * p)


@pytest.mark.parametrize("wrong,message", [
    (_channels_last, "channels last"), (_column_major, "column-major"), (_strided, "strided"),
    (_transposed, "transposed"), (_plain_reshape, "differs"),
    (lambda x, p: patchify(x, p).transpose(1, 2), "shape"),
])
def test_patchify_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch12.check_patchify(wrong)


def test_patchify_not_written():
    def stub(x, p):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch12.check_patchify(stub)


def test_modulate_accepts_reference(capsys):
    ch12.check_modulate(modulate)
    ch12.check_modulate(lambda h, shift, scale: torch.addcmul(h + shift, h, scale))
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,message", [
    (lambda h, shift, scale: h * scale + shift, "without the 1 \\+"),
    (lambda h, shift, scale: h * (1 + shift) + scale, "swaps scale and shift"),
    (lambda h, shift, scale: (h + shift) * (1 + scale), "before scaling"),
    (lambda h, shift, scale: h, "unchanged"),
    (lambda h, shift, scale: h * (1 + scale) - shift, "differs"),
    (lambda h, shift, scale: (h * (1 + scale) + shift).mean(1), "shape"),
])
def test_modulate_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch12.check_modulate(wrong)


def test_nlm_weight_accepts_reference_and_a_loop_version(capsys):
    ch12.check_nlm_weight(nlm_weight)

    def loop(patch_i, patch_j, h, sigma):
        s = patch_i.shape[-1]
        A, total, norm = (s - 1) / 4, 0.0, 0.0
        for u in range(s):
            for v in range(s):
                g = float(torch.exp(torch.tensor(-((u - s // 2) ** 2 + (v - s // 2) ** 2)
                                                 / (2 * A * A), dtype=torch.float64)))
                total += g * float(patch_i[u, v] - patch_j[u, v]) ** 2
                norm += g
        return torch.exp(torch.tensor(-max(total / norm - 2 * sigma**2, 0.0) / h**2,
                                      dtype=torch.float64))

    ch12.check_nlm_weight(loop)
    assert "correct" in capsys.readouterr().out


def _gauss(s):
    k = patch_kernel(s, 1.0)
    return k, k / k[s // 2, s // 2]


def _sum(patch_i, patch_j, h, sigma):  # Σ g Δ² without dividing by Σ g
    _, g = _gauss(patch_i.shape[-1])
    return torch.exp(-((g * (patch_i - patch_j) ** 2).sum() - 2 * sigma**2).clamp_min(0) / h**2)


def _uniform(patch_i, patch_j, h, sigma):
    return torch.exp(-(((patch_i - patch_j) ** 2).mean() - 2 * sigma**2).clamp_min(0) / h**2)


def _d2(patch_i, patch_j):
    k, _ = _gauss(patch_i.shape[-1])
    return (k * (patch_i - patch_j) ** 2).sum()


@pytest.mark.parametrize("wrong,message", [
    (_sum, "weighted \\*mean\\*"), (_uniform, "Gaussian window"),
    (lambda patch_i, patch_j, h, sigma: torch.exp(-(_d2(patch_i, patch_j) - 2 * sigma**2)
                                                  .clamp_min(0) / h), "h², not h"),
    (lambda patch_i, patch_j, h, sigma: torch.exp(-(_d2(patch_i, patch_j) - 2 * sigma**2) / h**2),
     "clamp"),
    (lambda patch_i, patch_j, h, sigma: torch.exp(-_d2(patch_i, patch_j) / h**2), "subtract 2σ²"),
    (lambda patch_i, patch_j, h, sigma: torch.exp(-(_d2(patch_i, patch_j) - sigma**2)
                                                  .clamp_min(0) / h**2), "not σ²"),
    (lambda patch_i, patch_j, h, sigma: nlm_weight(patch_i, patch_j, h=h, sigma=sigma)
     / (1 + nlm_weight(patch_i, patch_j, h=h, sigma=sigma)), "expected"),
    (lambda patch_i, patch_j, h, sigma: nlm_weight(patch_i, patch_j, h=h, sigma=sigma)[None],
     "shape"),
])
def test_nlm_weight_rejects_wrong_normalisations(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch12.check_nlm_weight(wrong)
