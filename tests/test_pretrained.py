"""The train-once cache: keyed by the full config, atomic, and never loading a damaged file."""

import dataclasses

import pytest
import torch
from safetensors import safe_open

from diffusion_lite import checkpoints
from diffusion_lite import pretrained as pt
from diffusion_lite.classifier import ClassifierConfig
from diffusion_lite.pretrained import DigitsUNetConfig, cache_key, cache_path, pretrained
from diffusion_lite.unet import UNetConfig

TINY_UNET = DigitsUNetConfig(
    unet=UNetConfig(base_channels=8, channel_mults=(1, 2), emb_dim=16, num_groups=4),
    train=dataclasses.replace(DigitsUNetConfig().train, steps=3, batch_size=8, lr_warmup=1))
TINY_CLF = ClassifierConfig(channels=4, num_features=8, steps=3, batch_size=8)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_LITE_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture()
def train_calls(monkeypatch):
    """Count training runs of both registered models."""
    calls = []
    for name, entry in list(pt.REGISTRY.items()):
        def counting(cfg, _train=entry.train, _name=name):
            calls.append(_name)
            return _train(cfg)
        monkeypatch.setitem(pt.REGISTRY, name, dataclasses.replace(entry, train=counting))
    return calls


# Valid alternatives for fields that are not numbers (TrainConfig validates its fields).
ALTERNATIVES = {"prediction": "v", "lr_decay": "constant", "sigma_dist": "loguniform",
                "weighting": "x0", "progress": True}


def _changed(name, value):
    if name in ALTERNATIVES:
        return ALTERNATIVES[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, tuple):
        return value + (value[-1],)
    raise AssertionError(f"no rule to change {value!r}")


def _all_variants(cfg):
    """One copy of ``cfg`` per field (nested dataclasses included) with that field changed."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            for inner in _all_variants(value):
                yield f"{f.name}.{inner[0]}", dataclasses.replace(cfg, **{f.name: inner[1]})
        else:
            yield f.name, dataclasses.replace(cfg, **{f.name: _changed(f.name, value)})


@pytest.mark.parametrize("name,cfg", [("digits_unet", DigitsUNetConfig()),
                                      ("digits_classifier", ClassifierConfig())])
def test_cache_key_changes_when_any_field_changes(name, cfg):
    base = cache_key(name, cfg)
    assert cache_key(name, cfg) == base  # stable
    variants = list(_all_variants(cfg))
    assert len(variants) >= len(dataclasses.fields(cfg))
    for field, changed in variants:
        assert cache_key(name, changed) != base, f"changing {field} kept the cache key"


def test_cache_key_depends_on_the_name_and_the_data(monkeypatch):
    assert cache_key("digits_unet") != cache_key("digits_classifier", ClassifierConfig())
    base = cache_key("digits_classifier", TINY_CLF)
    entry = pt.REGISTRY["digits_classifier"]
    monkeypatch.setitem(pt.REGISTRY, "digits_classifier",
                        dataclasses.replace(entry, data_fingerprint=lambda: "other data"))
    assert cache_key("digits_classifier", TINY_CLF) != base


def test_trains_once_then_loads_identical_weights(cache, train_calls):
    a = pretrained("digits_unet", TINY_UNET, verbose=False)
    assert train_calls == ["digits_unet"]
    assert cache_path("digits_unet", TINY_UNET).exists()
    b = pretrained("digits_unet", TINY_UNET, verbose=False)
    assert train_calls == ["digits_unet"]  # loaded, not retrained
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    assert b.pretrained_info["train_wall_s"] > 0 and len(b.pretrained_info["loss_per_100_steps"]) == 1
    assert not b.training
    # a changed config trains again, into another file
    longer = dataclasses.replace(TINY_UNET, train=dataclasses.replace(TINY_UNET.train, steps=4))
    pretrained("digits_unet", longer, verbose=False)
    assert train_calls == ["digits_unet", "digits_unet"]
    assert len(list(cache.glob("*.safetensors"))) == 2


def test_training_is_deterministic():
    a = pretrained("digits_classifier", TINY_CLF, verbose=False)
    b = pretrained("digits_classifier", TINY_CLF, retrain=True, verbose=False)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_file_is_plain_safetensors_with_checksum():
    pretrained("digits_classifier", TINY_CLF, verbose=False)
    with safe_open(str(cache_path("digits_classifier", TINY_CLF)), framework="pt") as f:
        meta = f.metadata()
        assert "conv1.weight" in f.keys()
    assert len(meta["sha256"]) == 64 and meta["key"] == cache_key("digits_classifier", TINY_CLF)


def _damage(path, how):
    raw = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif how == "tampered":  # flip one byte of the last tensor's data, header intact
        raw[-3] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "tampered", "empty"])
def test_damaged_file_is_detected_and_retrained(how, train_calls):
    good = pretrained("digits_classifier", TINY_CLF, verbose=False)
    path = cache_path("digits_classifier", TINY_CLF)
    _damage(path, how)
    with pytest.warns(UserWarning, match="retraining"):
        again = pretrained("digits_classifier", TINY_CLF, verbose=False)
    assert train_calls == ["digits_classifier", "digits_classifier"]
    for k, v in good.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    pretrained("digits_classifier", TINY_CLF, verbose=False)  # the rewritten file is valid
    assert train_calls == ["digits_classifier", "digits_classifier"]


def _files(folder):
    """Everything in the cache but the lock files, which persist by design."""
    return [p for p in folder.iterdir() if p.suffix != ".lock"]


def test_interrupted_training_or_write_leaves_nothing_loadable(cache, monkeypatch):
    entry = pt.REGISTRY["digits_classifier"]

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setitem(pt.REGISTRY, "digits_classifier", dataclasses.replace(entry, train=interrupted))
    with pytest.raises(KeyboardInterrupt):
        pretrained("digits_classifier", TINY_CLF, verbose=False)
    assert _files(cache) == []
    monkeypatch.setitem(pt.REGISTRY, "digits_classifier", entry)

    def killed(fd):
        raise KeyboardInterrupt  # killed after the bytes were written, before they were flushed

    monkeypatch.setattr(checkpoints.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        pretrained("digits_classifier", TINY_CLF, verbose=False)
    assert _files(cache) == []  # neither the real name nor a stray temp file


def test_cache_dir_and_errors(cache, monkeypatch, tmp_path):
    assert pt.cache_dir() == cache
    monkeypatch.delenv("DIFFUSION_LITE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pt.cache_dir() == tmp_path / "xdg" / "diffusion-lite"
    with pytest.raises(ValueError, match="choose one of"):
        pretrained("digits_gan")
    with pytest.raises(TypeError, match="ClassifierConfig"):
        cache_key("digits_classifier", TINY_UNET)


def test_unet_config_must_agree_on_the_null_class():
    bad = dataclasses.replace(TINY_UNET, train=dataclasses.replace(TINY_UNET.train, null_label=0))
    with pytest.raises(ValueError, match="null class"):
        pt.train_digits_unet(bad)


def test_digits_denoiser_uses_the_training_preconditioning():
    D = pt.digits_denoiser(pt.UNet(TINY_UNET.unet), TINY_UNET)
    assert (D.prediction, D.sigma_data) == (TINY_UNET.train.prediction, TINY_UNET.train.sigma_data)
    x = torch.randn(2, 1, 8, 8)
    # a fresh U-Net outputs 0, so D(x, σ) = c_skip·x = σ_d²/(σ² + σ_d²)·x
    torch.testing.assert_close(D(x, 1.0), x * 0.25 / 1.25)


def test_concurrent_first_calls_train_once(cache, monkeypatch):
    """Two notebooks starting together (nbval workers) share one training run via the file lock."""
    import threading
    import time

    calls = []
    entry = pt.REGISTRY["digits_classifier"]

    def slow_train(cfg, _train=entry.train):
        calls.append(cfg)
        time.sleep(0.5)  # long enough for the second caller to arrive while the first trains
        return _train(cfg)

    monkeypatch.setitem(pt.REGISTRY, "digits_classifier", dataclasses.replace(entry, train=slow_train))
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        pretrained("digits_classifier", TINY_CLF, verbose=False))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2 and len(calls) == 1, f"trained {len(calls)} times"
    for (k, va), (_, vb) in zip(results[0].state_dict().items(), results[1].state_dict().items()):
        assert torch.equal(va, vb), k


def test_derived_digit_recipes_pin_their_label_dropout():
    """Chapter 7's U-Net trains with p_uncond = 0.25; the recipes built on its TrainConfig pin the
    former 0.1 (or 0 without labels), so their cached models and cache keys did not change."""
    from diffusion_lite import cascade, latent
    from diffusion_lite.nets import transformer

    assert DigitsUNetConfig().train.label_dropout == 0.25
    assert cascade.CascadeConfig().train_base.label_dropout == 0.1
    assert cascade.CascadeConfig().train_sr.label_dropout == 0.0
    assert latent.LatentDiffusionConfig().train.label_dropout == 0.1
    assert transformer.DigitsTransformerConfig().train.label_dropout == 0.1
