"""The cache warm-up trains exactly what the course loads, and the no-train switch is enforced."""

import sys
import types

import pytest
import torch
from torch import nn

from diffusion_lite import pretrained, warmup
from diffusion_lite.classifier import ClassifierConfig


@pytest.fixture
def tiny_provider(monkeypatch, tmp_path):
    """A fake chapter module registering one tiny model, loaded by two configs."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class TinyConfig:
        width: int = 3
        seed: int = 0

    trained = []

    def train(cfg):
        trained.append(cfg)
        torch.manual_seed(cfg.seed)
        return nn.Linear(2, cfg.width), {}

    module = types.ModuleType("fake_chapter")
    module.COURSE_MODELS = [("tiny", TinyConfig(seed=1)), ("tiny", TinyConfig(seed=2))]
    monkeypatch.setitem(sys.modules, "fake_chapter", module)
    monkeypatch.setattr(pretrained, "PROVIDERS", ("fake_chapter",))
    monkeypatch.setitem(pretrained.REGISTRY, "tiny", pretrained.Entry(
        TinyConfig(), lambda c: nn.Linear(2, c.width), train, lambda: "fake-data"))
    monkeypatch.setenv("DIFFUSION_LITE_CACHE", str(tmp_path / "cache"))
    return trained


def test_course_models_lists_chapter_7_and_every_provider(tiny_provider):
    models = warmup.course_models()
    assert [n for n, _ in models] == ["digits_unet", "digits_classifier", "tiny", "tiny"]
    assert [c.seed for n, c in models if n == "tiny"] == [1, 2]
    assert isinstance(models[1][1], ClassifierConfig)  # None means the registered default


def test_warm_cache_trains_each_missing_model_once_then_nothing(tiny_provider, monkeypatch):
    tiny = [(n, c) for n, c in warmup.course_models() if n == "tiny"]
    monkeypatch.setattr(warmup, "course_models", lambda: tiny)  # leave the digit models out
    assert len(warmup.missing()) == 2
    warmup.warm_cache(jobs=1, verbose=False)
    assert [c.seed for c in tiny_provider] == [1, 2]
    assert warmup.missing() == []
    warmup.warm_cache(jobs=1, verbose=False)  # everything cached: trains nothing
    assert len(tiny_provider) == 2
    assert warmup.main(["--check"]) == 0


def test_no_train_switch_refuses_to_train_and_names_the_fix(tiny_provider, monkeypatch):
    monkeypatch.setenv(warmup.NO_TRAIN_ENV, "1")
    with pytest.raises(RuntimeError, match="make cache"):
        pretrained.pretrained("tiny", verbose=False)
    assert tiny_provider == []
    with pytest.raises(RuntimeError, match="unset it"):
        warmup.warm_cache(jobs=1, verbose=False)


def test_check_fails_on_a_cold_cache_without_training(tiny_provider, capsys):
    assert warmup.main(["--check"]) == 1
    assert "missing" in capsys.readouterr().out and tiny_provider == []


def test_jobs_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="jobs"):
        warmup.warm_cache(jobs=0)


def test_the_command_line_cache_subcommand_checks_without_training(tiny_provider, capsys):
    from diffusion_lite import cli

    assert cli.main(["cache", "--check"]) == 1 and tiny_provider == []
    assert "missing" in capsys.readouterr().out


def test_a_failing_model_does_not_stop_the_others(tiny_provider, monkeypatch):
    tiny = [(n, c) for n, c in warmup.course_models() if n == "tiny"]
    entry = pretrained.REGISTRY["tiny"]

    def train(cfg):
        if cfg.seed == 1:
            raise ValueError("broken on purpose")
        return entry.train(cfg)

    monkeypatch.setitem(pretrained.REGISTRY, "tiny", pretrained.Entry(
        entry.default_config, entry.build, train, entry.data_fingerprint))
    monkeypatch.setattr(warmup, "course_models", lambda: tiny)
    with pytest.raises(RuntimeError, match="(?s)1 of 2 models could not be trained.*broken on purpose"):
        warmup.warm_cache(jobs=1, verbose=False)
    assert [c.seed for c in tiny_provider] == [2]  # the second model still trained
