"""Couplings, straightness, reflow pairs and the flow-matching training function."""

import math

import numpy as np
import ot
import pytest
import torch

from diffusion_lite import couplings, flow_matching as fm, mixtures, pretrained
from diffusion_lite.flow_training import FlowMatchingConfig, sample_t, train_flow_matching
from diffusion_lite.models import MLP


@pytest.mark.parametrize("shape", [(40, 2), (25, 1, 3, 3)])
def test_ot_permutation_is_pots_exact_solution(shape):
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64) + 1
    eps = torch.randn(shape, generator=g, dtype=torch.float64)
    perm = couplings.ot_permutation(x0, eps)
    n = shape[0]
    cost = ot.dist(x0.flatten(1).numpy(), eps.flatten(1).numpy())  # squared Euclidean
    plan = ot.emd(np.full(n, 1 / n), np.full(n, 1 / n), cost)
    ours = np.zeros((n, n))
    ours[np.arange(n), perm.numpy()] = 1 / n
    assert abs((ours * cost).sum() - (plan * cost).sum()) < 1e-10
    np.testing.assert_allclose(ours, plan, atol=1e-12)  # continuous data: the optimum is unique
    paired = couplings.ot_pair(x0, eps)
    assert torch.equal(paired, eps[perm]) and sorted(perm.tolist()) == list(range(n))
    with pytest.raises(ValueError, match="equally large"):
        couplings.ot_permutation(x0, eps[:-1])


def test_straightness_of_lines_and_a_quarter_circle():
    ts = torch.linspace(1, 0, 2001, dtype=torch.float64)
    a, b = torch.randn(3, 2), torch.randn(3, 2)
    line = a + ts[:, None, None] * (b - a)  # straight, constant speed
    assert couplings.straightness(ts, line) < 1e-12
    theta = math.pi / 2 * (1 - ts)  # quarter circle at constant speed: S = π²/4 − 2 exactly
    arc = torch.stack([theta.cos(), theta.sin()], -1)[:, None, :].expand(-1, 4, -1)
    assert abs(couplings.straightness(ts, arc) - (math.pi**2 / 4 - 2)) < 1e-6
    # S has the units of a squared speed: twice the distance in half the time is 16 times S.
    assert abs(couplings.straightness(0.5 * ts, 2 * arc) - 16 * (math.pi**2 / 4 - 2)) < 1e-5
    with pytest.raises(ValueError, match="one entry per state"):
        couplings.straightness(ts[:-1], arc)


def test_reflow_pairs_follow_the_ode_of_the_model():
    mix = mixtures.ring()
    x0, eps = couplings.reflow_pairs(mix, 300, (2,), steps=48, generator=torch.Generator().manual_seed(0),
                                     dtype=torch.float64)
    assert x0.shape == eps.shape == (300, 2)
    again = couplings.reflow_pairs(mix, 300, (2,), steps=48, batch_size=64,
                                   generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(again[0], x0) and torch.equal(again[1], eps)  # batching changes nothing
    # The exact probability-flow ODE carries the noise onto the data: nearly all land on a mode.
    assert mixtures_coverage(mix, x0) > 0.97


def mixtures_coverage(mix, x):
    from diffusion_lite.mode_coverage import mode_coverage

    return 1 - mode_coverage(mix, x).off_mode_rate


def test_training_learns_and_is_reproducible():
    mix = mixtures.ring()
    config = FlowMatchingConfig(steps=300, batch_size=128, lr_warmup=10, seed=4, progress=False)

    def run():
        net = MLP(dim=2, hidden=32, depth=2, generator=torch.Generator().manual_seed(0))
        return train_flow_matching(net, mix.sample, config)

    first, second = run(), run()
    assert first.history["loss"] == second.history["loss"]
    # Held out, against the exact floor: 1.63x at initialisation, about 1.14x after 300 steps.
    g = torch.Generator().manual_seed(1)
    x0 = mix.sample(20_000, generator=g, dtype=torch.float64)
    eps = torch.randn(20_000, 2, generator=g, dtype=torch.float64)
    t = sample_t(20_000, config, g, torch.float64)
    with torch.no_grad():
        ratio = fm.flow_matching_loss(first.ema.double(), x0, eps, t).mean() / \
            fm.velocity_floor(mix, x0, eps, t).mean()
    assert ratio < 1.25
    # Fixed pairs (reflow) and minibatch OT run through the same function.
    pairs = (mix.sample(500), torch.randn(500, 2))
    net = MLP(dim=2, hidden=16, depth=1)
    assert len(train_flow_matching(net, pairs, FlowMatchingConfig(steps=3, progress=False)).history["loss"]) == 3
    ot_cfg = FlowMatchingConfig(steps=3, batch_size=16, coupling="ot", path="cosine", progress=False)
    assert train_flow_matching(net, mix.sample(64), ot_cfg).ema.path == "cosine"


def test_config_validation_names_the_fix():
    with pytest.raises(ValueError, match="unknown coupling"):
        FlowMatchingConfig(coupling="sinkhorn")
    with pytest.raises(ValueError, match="unknown t_dist"):
        FlowMatchingConfig(t_dist="beta")
    with pytest.raises(ValueError, match="batch_size"):
        FlowMatchingConfig(batch_size=1)
    with pytest.raises(ValueError, match="ema_decay"):
        FlowMatchingConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="reflow data"):
        train_flow_matching(MLP(), (torch.zeros(3, 2), torch.zeros(4, 2)), FlowMatchingConfig())
    t = sample_t(10_000, FlowMatchingConfig(t_dist="logit_normal", t_mean=1.0, t_std=0.5),
                 torch.Generator().manual_seed(0), torch.float64)
    assert abs(float(torch.logit(t).mean()) - 1.0) < 0.02 and abs(float(torch.logit(t).std()) - 0.5) < 0.02


def test_cached_models_round_trip(tmp_path, monkeypatch):
    """pretrained trains a tiny flow once, then loads identical weights (build matches train)."""
    from diffusion_lite.flow_models import ReflowConfig, RingFlowConfig

    monkeypatch.setenv("DIFFUSION_LITE_CACHE", str(tmp_path))
    base = RingFlowConfig(hidden=8, depth=1, train=FlowMatchingConfig(steps=5, batch_size=16,
                                                                      progress=False))
    first = pretrained.pretrained("fm_ring", base, verbose=False)
    again = pretrained.pretrained("fm_ring", base, verbose=False)
    x = torch.randn(5, 2)
    assert torch.equal(first(x, 1.0), again(x, 1.0))
    reflow = ReflowConfig(base=base, n_pairs=64, ode_steps=4,
                          train=FlowMatchingConfig(steps=3, batch_size=16, progress=False))
    model = pretrained.pretrained("fm_ring_reflow", reflow, verbose=False)
    assert isinstance(model, fm.VelocityDenoiser) and model.pretrained_info["train_cpu_s"] > 0
