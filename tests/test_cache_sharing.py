"""A model cache a classroom can share: loads without a write lock, readable by everyone, two
processes on a cold cache train once (the second says it waits), a file that no longer fits its
model is retrained or the error says how, and a cache path that is a file is a clear error."""

import os
import pathlib
import stat
import subprocess
import sys
import warnings

import pytest
import torch

from diffusion_lite import model_cache
from diffusion_lite import pretrained as pt
from fault_helper import ARCH  # registers the tiny cached model "tiny_cache_test"

HELPER = pathlib.Path(__file__).with_name("fault_helper.py")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_LITE_CACHE", str(tmp_path / "cache"))
    ARCH["extra"] = 0
    return tmp_path / "cache"


def test_a_valid_cached_model_loads_without_a_lock(cache, monkeypatch, capsys):
    first = pt.pretrained("tiny_cache_test")
    for lock in cache.glob("*.lock"):
        lock.unlink()

    def no_lock(*args, **kwargs):
        raise AssertionError("loading a valid file must not take the write lock")

    monkeypatch.setattr(model_cache, "exclusive", no_lock)
    monkeypatch.setattr(model_cache.os, "access", lambda path, mode: mode != os.W_OK)  # a read-only cache
    again = pt.pretrained("tiny_cache_test")
    assert torch.equal(first.weight, again.weight)
    assert list(cache.glob("*.lock")) == []  # nothing written
    assert "loaded tiny_cache_test" in capsys.readouterr().out


def test_a_read_only_cache_without_the_model_says_what_to_do(cache, monkeypatch):
    cache.mkdir()
    monkeypatch.setattr(model_cache.os, "access", lambda path, mode: mode != os.W_OK)
    with pytest.raises(ValueError, match="read-only.*DIFFUSION_LITE_CACHE to a writable folder"):
        pt.pretrained("tiny_cache_test", verbose=False)


def test_cached_files_are_readable_by_every_user(cache):
    old = os.umask(0o077)  # a private umask must not make the shared cache private
    try:
        pt.pretrained("tiny_cache_test", verbose=False)
    finally:
        os.umask(old)
    (path,) = cache.glob("*.safetensors")
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & 0o044 == 0o044, oct(mode)


def test_a_file_with_the_right_key_but_another_architecture_is_retrained(cache, monkeypatch):
    pt.pretrained("tiny_cache_test", verbose=False)
    ARCH["extra"] = 2  # the model's code changed; its config (and so its key) did not
    with pytest.warns(UserWarning, match="do not fit.*retraining"):
        module = pt.pretrained("tiny_cache_test", verbose=False)
    assert module.weight.shape == (5, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pt.pretrained("tiny_cache_test", verbose=False)  # the retrained file now fits
    ARCH["extra"] = 0
    monkeypatch.setattr(model_cache.os, "access", lambda path, mode: mode != os.W_OK)
    with pytest.raises(ValueError, match=r"(?s)do not fit.*retrain=True"):
        pt.pretrained("tiny_cache_test", verbose=False)


def test_a_cache_path_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch):
    f = tmp_path / "not_a_folder"
    f.write_text("x")
    monkeypatch.setenv("DIFFUSION_LITE_CACHE", str(f))
    with pytest.raises(ValueError, match="is a file, not a folder"):
        pt.pretrained("tiny_cache_test")


def test_two_processes_on_a_cold_cache_train_once_and_the_second_says_it_waits(tmp_path):
    procs = [subprocess.Popen([sys.executable, str(HELPER), "cache", str(tmp_path / "cache"),
                               str(tmp_path / name), "4.0"]) for name in ("a.txt", "b.txt")]
    for proc in procs:  # each imports torch (a second or two), then one trains for 4 s
        assert proc.wait(timeout=300) == 0
    outputs = [(tmp_path / name).read_text() for name in ("a.txt", "b.txt")]
    trained = [text for text in outputs if "training tiny_cache_test (no valid" in text]
    waited = [text for text in outputs if "waiting for another process" in text]
    assert len(trained) == 1 and len(waited) == 1 and trained[0] is not waited[0], outputs
    assert "loaded tiny_cache_test" in waited[0]  # it loaded the other one's file
    weights = [line for text in outputs for line in text.splitlines() if line.startswith("weight")]
    assert len(weights) == 2 and weights[0] == weights[1]  # same weights, trained once
