"""The digit U-Net: shapes through every resolution, determinism, conditioning, bad input."""

import pathlib
import re

import pytest
import torch

from diffusion_lite.unet import UNet, UNetConfig

TINY = UNetConfig(base_channels=8, channel_mults=(1, 2), emb_dim=16, num_groups=4)
REPO = pathlib.Path(__file__).resolve().parents[1]


def _net(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    net = UNet(cfg)
    for p in net.parameters():  # the output conv starts at zero; randomise so outputs depend on x
        torch.nn.init.normal_(p, std=0.2)
    return net.eval()


@pytest.mark.parametrize("cfg", [TINY, UNetConfig(base_channels=8, emb_dim=16, num_groups=4),
                                 UNetConfig(base_channels=8, emb_dim=16, attention=False)])
@pytest.mark.parametrize("hw", [8, 16])
def test_output_shape_matches_input(cfg, hw):
    net = _net(cfg)
    x = torch.randn(3, 1, hw, hw)
    out = net(x, torch.randn(3), labels=torch.tensor([0, 5, cfg.num_classes]))
    assert out.shape == x.shape


def test_skip_path_shapes_are_recorded():
    """Each down level hands its activation to the matching up level: channels and size agree."""
    net = _net(UNetConfig(base_channels=8, emb_dim=16, num_groups=4))
    seen = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape))) for b in net.down]
    net(torch.randn(2, 1, 8, 8), torch.zeros(2))
    for h in hooks:
        h.remove()
    assert seen == [(2, 8, 8, 8), (2, 16, 4, 4), (2, 16, 2, 2)]


def test_fresh_network_outputs_zero():
    """The zero-initialised output layer makes F = 0, so the EDM denoiser starts at c_skip·x."""
    net = UNet(TINY)
    assert torch.equal(net(torch.randn(2, 1, 8, 8), torch.zeros(2)), torch.zeros(2, 1, 8, 8))


def test_deterministic_given_seed_and_batch_independent():
    a, b = _net(seed=1), _net(seed=1)
    x, c = torch.randn(4, 1, 8, 8), torch.randn(4)
    y = torch.tensor([1, 2, 3, 10])
    assert torch.equal(a(x, c, y), b(x, c, y))
    # GroupNorm is per sample: one sample's output does not depend on the rest of the batch.
    torch.testing.assert_close(a(x[:1], c[:1], y[:1]), a(x, c, y)[:1], atol=1e-5, rtol=1e-5)


def test_noise_level_and_label_change_the_output():
    net = _net()
    x = torch.randn(2, 1, 8, 8)
    base = net(x, torch.zeros(2), torch.tensor([3, 3]))
    assert not torch.allclose(base, net(x, torch.ones(2), torch.tensor([3, 3])))
    assert not torch.allclose(base, net(x, torch.zeros(2), torch.tensor([4, 4])))


def test_none_labels_mean_the_null_class():
    net = _net()
    x, c = torch.randn(2, 1, 8, 8), torch.randn(2)
    torch.testing.assert_close(net(x, c), net(x, c, torch.full((2,), TINY.num_classes)))


def test_bad_input_gives_clear_errors():
    net = _net()
    with pytest.raises(ValueError, match="shape"):
        net(torch.randn(2, 3, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(2, 1, 7, 7), torch.zeros(2))
    with pytest.raises(ValueError, match="null class"):
        net(torch.randn(2, 1, 8, 8), torch.zeros(2), torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="integer"):
        net(torch.randn(2, 1, 8, 8), torch.zeros(2), torch.tensor([0.0, 1.0]))


def test_float64_follows_the_input():
    net = _net().double()
    out = net(torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    assert out.dtype == torch.float64


def test_no_cuda_calls_in_the_package():
    """Device-agnostic code only: device and dtype come from the inputs."""
    for path in (REPO / "diffusion_lite").rglob("*.py"):
        assert not re.search(r"\.cuda\(", path.read_text()), f"{path.name} calls .cuda()"
