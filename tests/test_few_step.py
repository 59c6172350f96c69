"""The chapter's cached models: registration, and every student spends exactly its stated NFE."""

import pytest
import torch

from diffusion_lite import few_step, pretrained


@pytest.fixture
def untrained(monkeypatch):
    """Serve freshly built (untrained) modules instead of training, and count network calls."""
    calls = []

    def fake(name, config=None, **kwargs):
        entry = pretrained.REGISTRY[name]
        module = entry.build(config if config is not None else entry.default_config)
        for sub in module.modules():
            if type(sub).__name__ in ("MLP", "ConditionalMLP"):
                sub.register_forward_hook(lambda *a: calls.append(1))
        module.pretrained_info = {"train_cpu_s": 0.0}
        return module.eval()

    monkeypatch.setattr(few_step.pretrained, "pretrained", fake)
    return calls


# A one-step DDGAN would be an ordinary conditional GAN: the chapter caches T = 2 and 4 only.
@pytest.mark.parametrize("kind, nfe", [(k, n) for k in few_step.STUDENTS for n in (1, 2, 4)
                                       if not (k == "ddgan" and n == 1)])
def test_every_student_spends_exactly_its_nfe(untrained, kind, nfe):
    x = few_step.sample_student(kind, nfe, 16, generator=torch.Generator().manual_seed(0))
    assert x.shape == (16, 2) and bool(torch.isfinite(x).all())
    assert len(untrained) == nfe


def test_registered_names_and_seeded_configs_have_distinct_cache_keys():
    for name in ("few_step_teacher", "few_step_pd", "few_step_cm", "few_step_ddgan"):
        assert name in pretrained.REGISTRY
    keys = {pretrained.cache_key("few_step_cm", few_step.CMConfig(seed=s, teacher=t))
            for s in range(3) for t in ("learned", "oracle", "none")}
    assert len(keys) == 9
    assert "diffusion_lite.few_step" in pretrained.PROVIDERS
    with pytest.raises(ValueError, match="teacher"):
        few_step.CMConfig(teacher="exact")
    with pytest.raises(ValueError, match="unknown student"):
        few_step.sample_student("gan", 1, 4)
