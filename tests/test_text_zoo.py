"""The chapter-15 cache: one entry per seed, deterministic training, reload gives the same weights."""

import pytest
import torch

from diffusion_lite import pretrained
from diffusion_lite.text import zoo
from diffusion_lite.text.training import TextTrainConfig


def tiny(kind, seed):
    return zoo.TextModelConfig(kind=kind, n_train=300, n_heldout=10, width=16, depth=1, heads=2,
                               train=TextTrainConfig(steps=12, warmup=2, batch_size=16, seed=seed,
                                                     progress=False))


@pytest.mark.parametrize("kind", zoo.KINDS)
def test_trains_once_per_seed_and_reloads(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_LITE_CACHE", str(tmp_path))
    name = f"text_{kind}"
    a = pretrained.pretrained(name, tiny(kind, 0), verbose=False)
    b = pretrained.pretrained(name, tiny(kind, 0), verbose=False)  # loaded, not retrained
    c = pretrained.pretrained(name, tiny(kind, 1), verbose=False)
    assert len(list(tmp_path.glob(f"{name}-*.safetensors"))) == 2
    assert "train_cpu_s" in a.pretrained_info and a.config.causal == (kind == "autoregressive")
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert not torch.equal(a.head.weight, c.head.weight)
    retrained = zoo.train(tiny(kind, 0))[0]  # deterministic given the seed
    assert torch.equal(retrained.head.weight, a.head.weight)


def test_default_configs_and_errors():
    assert zoo.config_for("masked", 2).train.seed == 2
    assert zoo.default_train("masked").steps == 3 * zoo.default_train("autoregressive").steps
    with pytest.raises(ValueError, match="choose one of"):
        zoo.TextModelConfig(kind="bert")
    with pytest.raises(ValueError, match="warmup"):
        TextTrainConfig(steps=10, warmup=10)
    with pytest.raises(ValueError, match="causal"):
        from diffusion_lite.text.training import train_masked
        train_masked(zoo.build(zoo.config_for("autoregressive")), torch.zeros(4, 12, dtype=torch.long),
                     TextTrainConfig(steps=2, warmup=0))
