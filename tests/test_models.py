"""The noise embeddings and the MLP: shapes, determinism, labels, clear errors."""

import math

import pytest
import torch

from diffusion_lite import models


@pytest.mark.parametrize("kind", ["fourier", "sinusoidal"])
def test_embedding_shape_and_unit_norm(kind):
    emb = models.make_embedding(kind, 16, generator=torch.Generator().manual_seed(0))
    c = torch.linspace(-2, 2, 7)
    e = emb(c)
    assert e.shape == (7, 16)
    # cos² + sin² = 1 per frequency, so |e|² = E/2 exactly.
    torch.testing.assert_close((e**2).sum(1), torch.full((7,), 8.0))


def test_fourier_features_match_the_formula():
    emb = models.FourierEmbedding(4, scale=2.0, generator=torch.Generator().manual_seed(1))
    f = emb.freqs
    c = torch.tensor([0.3])
    want = torch.cat([torch.cos(2 * math.pi * f * 0.3), torch.sin(2 * math.pi * f * 0.3)])
    torch.testing.assert_close(emb(c)[0], want)


def test_sinusoidal_frequencies_are_geometric():
    emb = models.SinusoidalEmbedding(8, scale=1.0, max_period=10_000.0)
    ratios = emb.freqs[1:] / emb.freqs[:-1]
    torch.testing.assert_close(ratios, torch.full((3,), 10_000.0 ** (-1 / 4)))


def test_embeddings_reject_odd_dims_and_unknown_names():
    with pytest.raises(ValueError, match="even"):
        models.FourierEmbedding(5)
    with pytest.raises(ValueError, match="choose one of"):
        models.make_embedding("gaussian", 8)


@pytest.mark.parametrize("dim", [2, 5])
def test_mlp_shapes_any_dimension(dim):
    net = models.MLP(dim=dim, hidden=32, depth=2, generator=torch.Generator().manual_seed(0))
    out = net(torch.randn(10, dim), torch.randn(10))
    assert out.shape == (10, dim) and torch.isfinite(out).all()


def test_mlp_init_is_deterministic_given_a_generator():
    a = models.MLP(hidden=16, generator=torch.Generator().manual_seed(3))
    b = models.MLP(hidden=16, generator=torch.Generator().manual_seed(3))
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)


def test_mlp_depends_on_noise_level_and_labels():
    net = models.MLP(hidden=16, n_classes=3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 2)
    assert not torch.allclose(net(x, torch.zeros(4)), net(x, torch.ones(4)))
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.full((4,), 3)  # 3 = null class
    assert not torch.allclose(net(x, torch.zeros(4), y0), net(x, torch.zeros(4), y1))


def test_mlp_errors_name_the_fix():
    net = models.MLP(hidden=8)
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        net(torch.randn(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="n_classes"):
        net(torch.randn(4, 2), torch.zeros(4), torch.zeros(4, dtype=torch.long))
