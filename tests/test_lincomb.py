"""lincomb: the samplers' linear combinations equal the term-by-term formula on every branch."""

import itertools

import pytest
import torch

from diffusion_lite.lincomb import Affine, lin2, lin3, mix

# weights that hit each branch: 0, 1, a pair summing to 1, small and large, negative
WEIGHTS = [0.0, 1.0, 0.25, 0.75, -1.0, 1e-9, 3e4, -0.5, 1.5]


def tensors(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(7, 3, generator=g, dtype=torch.float64) for _ in range(n)]


@pytest.mark.parametrize("wa,wb", list(itertools.product(WEIGHTS, repeat=2)))
def test_lin2_is_the_weighted_sum_and_leaves_its_inputs_alone(wa, wb):
    a, b = tensors(2)
    a0, b0 = a.clone(), b.clone()
    torch.testing.assert_close(lin2(wa, a, wb, b), wa * a + wb * b, rtol=1e-13, atol=1e-13)
    assert torch.equal(a, a0) and torch.equal(b, b0)


@pytest.mark.parametrize("w", list(itertools.product([0.0, 1.0, 0.5, -0.3, 0.7, 2.0], repeat=3)))
def test_lin3_is_the_weighted_sum_and_leaves_its_inputs_alone(w):
    ts = tensors(3, seed=1)
    before = [t.clone() for t in ts]
    want = w[0] * ts[0] + w[1] * ts[1] + w[2] * ts[2]
    torch.testing.assert_close(lin3(w[0], ts[0], w[1], ts[1], w[2], ts[2]), want,
                               rtol=1e-13, atol=1e-13)
    assert all(torch.equal(t, t0) for t, t0 in zip(ts, before))


@pytest.mark.parametrize("c_skip,c_out", [(1.0, -2.0), (0.0, 1.0), (0.2, 0.4), (0.5, -0.1)])
def test_mix_folds_the_denoisers_parts_into_the_update(c_skip, c_out):
    x, F, y = tensors(3, seed=2)
    D = Affine(c_skip, x, c_out, F)
    d = c_skip * x + c_out * F
    torch.testing.assert_close(D.value(), d, rtol=1e-13, atol=1e-13)
    for wx, wd in [(0.3, 0.7), (-1.0, 1.0), (1.0, 0.0), (0.5, -0.2)]:
        torch.testing.assert_close(mix(wx, x, wd, D), wx * x + wd * d, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(mix(wx, x, wd, D, also=(0.5, y)), wx * x + wd * d + 0.5 * y,
                                   rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(mix(wx, x, wd, d), wx * x + wd * d, rtol=1e-13, atol=1e-13)


def test_mix_refuses_parts_of_another_input():
    x, other, F = tensors(3)
    with pytest.raises(ValueError, match="output at this x"):
        mix(0.5, x, 0.5, Affine(1.0, other, -1.0, F))


def test_float32_weights_of_very_different_size_do_not_overflow():
    a, b = (t.float() for t in tensors(2))
    torch.testing.assert_close(lin2(1e-30, a, 3e30, b), 1e-30 * a.double() + 3e30 * b.double(),
                               rtol=1e-5, atol=0, check_dtype=False)
