"""Chapter 5's ablation runs: the activation and depth really change, and configs are validated."""

import pytest
import torch

from diffusion_lite import ablations, models, pretrained


def test_configs_cover_five_architectures_times_three_seeds():
    cfgs = ablations.ablation_configs()
    assert len(cfgs) == 15 and len(set(cfgs)) == 15
    assert {(c.activation, c.depth) for c in cfgs} == {
        ("silu", 3), ("tanh", 3), ("sigmoid", 3), ("silu", 1), ("silu", 6)}
    assert ablations.COURSE_MODELS[:15] == [("ring_mlp", c) for c in cfgs]


def test_build_uses_the_configured_activation_and_depth():
    den = ablations.build(ablations.RingRunConfig(depth=2, activation="sigmoid"))
    assert len(den.net.blocks) == 2 and den.net.activation == "sigmoid"
    x, c = torch.randn(4, 2), torch.zeros(4)
    other = ablations.build(ablations.RingRunConfig(depth=2, activation="tanh"))
    other.load_state_dict(den.state_dict())  # same weights, other activation: other outputs
    assert not torch.allclose(den.net(x, c), other.net(x, c))


def test_mlp_activation_and_out_dim():
    net = models.MLP(dim=3, hidden=8, depth=1, out_dim=1, activation="tanh")
    assert net(torch.randn(5, 3), torch.zeros(5)).shape == (5, 1)
    with pytest.raises(ValueError, match="activation"):
        models.MLP(activation="swish")


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="activation"):
        ablations.RingRunConfig(activation="relu6")
    with pytest.raises(ValueError, match="depth"):
        ablations.RingRunConfig(depth=0)
    with pytest.raises(ValueError, match="steps"):
        ablations.RingRunConfig(steps=10.5)


def test_registered_and_keyed_by_the_ring():
    assert "ring_mlp" in pretrained.REGISTRY
    a = pretrained.cache_key("ring_mlp", ablations.RingRunConfig(seed=0))
    b = pretrained.cache_key("ring_mlp", ablations.RingRunConfig(seed=1))
    assert a != b


def test_param_runs_cross_parametrisation_and_weighting():
    cfgs = ablations.param_configs()
    assert len(cfgs) == 12 and len(set(cfgs)) == 12
    assert {(c.prediction, c.weighting) for c in cfgs} == {
        ("eps", "eps"), ("eps", "x0"), ("x0", "eps"), ("x0", "x0")}
    assert ablations.COURSE_MODELS[15:] == [("ring_param", c) for c in cfgs]
    tc = ablations.ParamRunConfig(prediction="x0", weighting="eps").train_config()
    assert (tc.prediction, tc.weighting, tc.lr_decay, tc.steps) == ("x0", "eps", "constant", 1000)
    assert ablations.build_param(ablations.ParamRunConfig(prediction="x0")).prediction == "x0"
    with pytest.raises(ValueError, match="weighting"):
        ablations.ParamRunConfig(weighting="snr")
    with pytest.raises(ValueError, match="prediction"):
        ablations.ParamRunConfig(prediction="noise")
