"""Chapter 16 checkers accept the reference and diagnose typical wrong answers."""

import pytest
import torch

from diffusion_lite.checks import ExerciseError, ch16


def test_combine_gradients_reference_is_the_full_batch_gradient():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    x, y = torch.randn(11, 3, generator=g, dtype=torch.float64), torch.randn(11, generator=g, dtype=torch.float64)
    sizes = [2, 5, 4]
    grads = [torch.autograd.grad(((a @ w - b) ** 2).mean(), w)[0] for a, b in zip(x.split(sizes), y.split(sizes))]
    full = torch.autograd.grad(((x @ w - y) ** 2).mean(), w)[0]
    assert torch.allclose(ch16.combine_gradients_reference(grads, sizes), full, atol=1e-12)


def test_combine_gradients_accepts_reference_and_diagnoses_mistakes():
    ch16.check_combine_gradients(ch16.combine_gradients_reference)
    ch16.check_combine_gradients(
        lambda grads, sizes: sum(n * gr for n, gr in zip(sizes, grads)) / sum(sizes))
    # Right shape, scale and mean for equal shards, wrong for unequal ones: what DDP assumes.
    with pytest.raises(ExerciseError, match="(?s)differs.*plain average"):
        ch16.check_combine_gradients(lambda grads, sizes: torch.stack(grads).mean(0))
    with pytest.raises(ExerciseError, match="(?s)differs.*n_r / sum"):  # weights inverted
        ch16.check_combine_gradients(
            lambda grads, sizes: sum(gr / n for n, gr in zip(sizes, grads)) / sum(1 / n for n in sizes))
    with pytest.raises(ExerciseError, match="shape"):
        ch16.check_combine_gradients(lambda grads, sizes: torch.stack(grads))

    def stub(grads, sizes):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch16.check_combine_gradients(stub)


def test_to_pixels_accepts_reference_and_diagnoses_mistakes():
    ch16.check_to_pixels(ch16.to_pixels_reference)
    ch16.check_to_pixels(lambda x: torch.round(255 * (x.clip(-1, 1) + 1) / 2))
    with pytest.raises(ExerciseError, match="(?s)outside 0..255.*clip"):  # no clipping
        ch16.check_to_pixels(lambda x: ((x + 1) * 127.5).round())
    with pytest.raises(ExerciseError, match="between whole pixel levels"):  # not rounded
        ch16.check_to_pixels(lambda x: (x.clamp(-1, 1) + 1) * 127.5)
    with pytest.raises(ExerciseError, match="(?s)constant factor of about 2.*255/2"):
        ch16.check_to_pixels(lambda x: ((x.clamp(-1, 1) + 1) * 255).round())
    with pytest.raises(ExerciseError, match="(?s)offset.*add 1"):
        ch16.check_to_pixels(lambda x: (x.clamp(-1, 1) * 127.5).round())


def test_near_copy_share_accepts_reference_and_diagnoses_mistakes():
    ch16.check_near_copy_share(ch16.near_copy_share_reference)

    def ratio(gen, a, b):
        return torch.cdist(gen, a).min(1).values / torch.cdist(gen, b).min(1).values

    ch16.check_near_copy_share(lambda gen, train, heldout: (ratio(gen, train, heldout) < 1 / 3).double().mean())
    with pytest.raises(ExerciseError, match="(?s)expected.*which distance goes on top"):
        ch16.check_near_copy_share(  # ρ upside down
            lambda gen, train, heldout: (ratio(gen, heldout, train) < 1 / 3).double().mean())
    with pytest.raises(ExerciseError, match="(?s)more than 1.*not a count"):
        ch16.check_near_copy_share(  # a count, not a share
            lambda gen, train, heldout: (ratio(gen, train, heldout) < 1 / 3).double().sum())
