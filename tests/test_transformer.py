"""The DiT-style transformer: patchify round trip, adaLN-Zero identity at initialisation,
permutation equivariance without position embeddings, attention against PyTorch's, local windows."""

import pytest
import torch
from torch.nn import functional as F

from diffusion_lite.nets.transformer import (Block, Transformer, TransformerConfig, attention_maps,
                                             modulate, patchify, sincos_position_embedding,
                                             unpatchify, window_mask)


@pytest.mark.parametrize("shape,p", [((2, 3, 8, 8), 2), ((1, 2, 4, 6), 2), ((3, 1, 8, 8), 4),
                                     ((2, 4, 2, 2), 1)])
def test_patchify_matches_unfold_and_round_trips(shape, p):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    tokens = patchify(x, p)
    assert torch.equal(tokens, F.unfold(x, p, stride=p).transpose(1, 2))  # the library's layout
    assert torch.equal(unpatchify(tokens, p, *shape[2:]), x)


def test_patchify_rejects_untileable_images():
    with pytest.raises(ValueError, match="not divisible"):
        patchify(torch.zeros(1, 1, 8, 8), 3)
    with pytest.raises(ValueError, match="do not tile"):
        unpatchify(torch.zeros(1, 5, 4), 2, 8, 8)


def test_modulate_is_identity_at_zero_and_affine():
    g = torch.Generator().manual_seed(0)
    h, s, b = (torch.randn(shape, generator=g) for shape in ((3, 4, 8), (3, 1, 8), (3, 1, 8)))
    assert torch.equal(modulate(h, torch.zeros_like(b), torch.zeros_like(s)), h)
    assert torch.allclose(modulate(h, b, s), h + h * s + b, atol=1e-6)


def test_adaln_zero_blocks_are_identity_at_initialisation():
    torch.manual_seed(0)
    block = Block(width=32, heads=4, mlp_ratio=2)
    h, c = torch.randn(5, 16, 32), torch.randn(5, 32)
    assert torch.equal(block(h, c, None), h)
    assert torch.equal(block(h, c, window_mask(4, 1)), h)
    net = Transformer(TransformerConfig())
    out = net(torch.randn(4, 1, 8, 8), torch.randn(4), torch.tensor([0, 3, 9, 10]))
    assert torch.equal(out, torch.zeros_like(out))  # F = 0: the EDM denoiser starts at c_skip·x


def _randomise(net: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))


def _permute_patches(x: torch.Tensor, perm: torch.Tensor, p: int) -> torch.Tensor:
    return unpatchify(patchify(x, p)[:, perm], p, *x.shape[2:])


def test_attention_without_positions_is_permutation_equivariant():
    cfg = TransformerConfig(position="none", width=32, depth=2, heads=2)
    net = Transformer(cfg)
    _randomise(net)
    g = torch.Generator().manual_seed(0)
    x, c_noise = torch.randn(3, 1, 8, 8, generator=g), torch.randn(3, generator=g)
    perm = torch.randperm(16, generator=g)
    out = net(_permute_patches(x, perm, 2), c_noise)
    assert torch.allclose(out, _permute_patches(net(x, c_noise), perm, 2), atol=1e-5)
    # Position embeddings break the symmetry: the same check fails with them.
    net_pos = Transformer(TransformerConfig(position="sincos", width=32, depth=2, heads=2))
    _randomise(net_pos)
    out = net_pos(_permute_patches(x, perm, 2), c_noise)
    assert not torch.allclose(out, _permute_patches(net_pos(x, c_noise), perm, 2), atol=1e-3)


def test_attention_matches_pytorch_scaled_dot_product():
    net = Transformer(TransformerConfig(width=32, heads=4, depth=1, window=1))
    _randomise(net)
    attn = net.blocks[0].attn
    h = torch.randn(2, 16, 32)
    q, k, v = attn.qkv(h).reshape(2, 16, 3, 4, 8).permute(2, 0, 3, 1, 4)
    for mask in (None, net.mask):
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        want = attn.proj(want.transpose(1, 2).reshape(2, 16, 32))
        assert torch.allclose(attn(h, mask), want, atol=1e-5)


def test_window_mask_and_attention_maps():
    m = window_mask(4, 1)
    assert m.shape == (16, 16) and bool(m.diagonal().all())
    assert int(m[0].sum()) == 4 and int(m[5].sum()) == 9  # corner vs interior token
    assert window_mask(4, None) is None and torch.equal(window_mask(4, 0), torch.eye(16, dtype=bool))
    net = Transformer(TransformerConfig(window=1, depth=2))
    _randomise(net)
    maps = attention_maps(net, torch.randn(2, 1, 8, 8), torch.zeros(2))
    assert len(maps) == 2 and maps[0].shape == (2, 4, 16, 16)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 4, 16))  # rows are distributions
    assert float(maps[1][..., ~m].abs().max()) == 0.0  # nothing outside the window
    assert all(not b.attn.record and b.attn.last_attention is None for b in net.blocks)


def test_sincos_position_embedding_formula():
    pe = sincos_position_embedding(4, 16)
    assert pe.shape == (16, 16)
    i, j, k = 2, 3, 1  # token (2, 3), frequency index 1 of 4
    f = 10_000 ** (-k / 4)
    n = i * 4 + j
    assert torch.isclose(pe[n, k], torch.tensor(torch.sin(torch.tensor(i * f)).item()))
    assert torch.isclose(pe[n, 8 + 4 + k], torch.tensor(torch.cos(torch.tensor(j * f)).item()))
    assert len({tuple(r.tolist()) for r in pe}) == 16  # every position distinct


@pytest.mark.parametrize("kwargs,match", [({"patch_size": 3}, "divisible by patch_size"),
                                          ({"width": 30}, "divisible by heads"),
                                          ({"position": "rope"}, "unknown position"),
                                          ({"window": -1}, "window")])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransformerConfig(**kwargs)


def test_forward_validates_inputs():
    net = Transformer(TransformerConfig())
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.zeros(2, 1, 4, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="labels must be"):
        net(torch.zeros(2, 1, 8, 8), torch.zeros(2), torch.zeros(2))
