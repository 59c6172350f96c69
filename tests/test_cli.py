"""The diffusion-lite command line end to end on tiny data, every bad input, and DDP = one process.

Everything runs in a temporary folder. Runs are a few dozen steps: these tests check plumbing
(exact resume, files written or not written, errors that name the fix), not model quality.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from diffusion_lite import cli, datasets_io, export, runs
from diffusion_lite.distributed import Parallel

REPO = pathlib.Path(__file__).resolve().parents[1]
FAST = ["--steps", "40", "--batch-size", "32", "--hidden", "32", "--depth", "1", "--no-progress",
        "--lr-warmup", "5"]


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def _points(path, n=80, d=2, seed=0, shift=0.0):
    g = np.random.default_rng(seed)
    x = np.concatenate([g.normal(-2, 0.5, (n // 2, d)), g.normal(2, 0.5, (n - n // 2, d))]) + shift
    header = ",".join(f"c{i}" for i in range(d))
    np.savetxt(path, x, delimiter=",", header=header, comments="")
    return path


def _images(folder, n=24, size=8, mode="RGB", classes=None):
    g = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sub = folder / classes[i % len(classes)] if classes else folder
        sub.mkdir(exist_ok=True)
        shape = (size, size, 3) if mode == "RGB" else (size, size)
        Image.fromarray(g.integers(0, 256, shape, dtype=np.uint8), mode).save(sub / f"im{i:02d}.png")
    return folder


def _tensors(run_dir):
    return load_file(str(run_dir / "checkpoint.safetensors"))


def test_points_end_to_end_with_interruption_resume_sample_evaluate_export(tmp_path, capsys):
    csv = _points(tmp_path / "pts.csv")
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert run("train", csv, "--out", whole, *FAST) == 0
    assert run("train", csv, "--out", part, *FAST, "--checkpoint-every", "10", "--stop-after", "20") == 0
    assert json.loads((part / "checkpoint.json").read_text())["step"] == 20
    assert run("train", "--out", part, "--resume") == 0  # the data path comes from run.json
    a, b = _tensors(whole), _tensors(part)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise exact
    assert run("sample", part, "--n", "50", "--steps", "8", "--out", tmp_path / "s.npy",
               "--png", tmp_path / "s.png") == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (50, 2) and np.isfinite(s).all() and (tmp_path / "s.png").stat().st_size > 0
    assert abs(np.abs(s).mean() - 2) < 1.0  # back in the data's units (blobs at ±2), not standardised
    assert run("evaluate", part, "--steps", "8") == 0
    report = json.loads((part / "evaluation.json").read_text())
    assert set(report["metrics"]) == {"mmd2", "sliced_w2", "frechet", "precision", "recall",
                                      "memorisation"}
    assert "noise floor" in (part / "evaluation.md").read_text()
    assert run("export", part, "--out", tmp_path / "model") == 0
    card = json.loads((tmp_path / "model" / "model.json").read_text())
    assert card["evaluation"]["m"] == report["m"] and card["data"]["shape"] == [2]
    ts = export.load_exported(tmp_path / "model")
    den, _ = runs.load_denoiser(part)
    x, sigma = torch.randn(7, 2), torch.tensor([0.01, 0.1, 0.5, 1.0, 3.0, 10.0, 80.0])
    with torch.no_grad():
        assert torch.allclose(ts(x, sigma), den(x, sigma), atol=1e-5)
    capsys.readouterr()
    assert run("info", part) == 0 and "step 40 of 40" in capsys.readouterr().out
    assert run("info", tmp_path / "model", "--json") == 0
    assert json.loads(capsys.readouterr().out)["what"] == "exported model"


def test_images_conditional_guidance_and_fine_tuning(tmp_path):
    folder = _images(tmp_path / "imgs", classes=["cats", "dogs"])
    small = ["--steps", "4", "--batch-size", "8", "--base-channels", "8", "--channel-mults", "1,2",
             "--emb-dim", "16", "--attention", "false", "--no-progress", "--heldout", "0"]
    assert run("train", folder, "--out", tmp_path / "r", *small) == 0
    meta = runs.read_run(tmp_path / "r")
    assert meta["data"]["classes"] == ["cats", "dogs"] and meta["model"]["in_channels"] == 3
    assert run("sample", tmp_path / "r", "--n", "4", "--steps", "3", "--class", "dogs",
               "--guidance", "2", "--out", tmp_path / "s.npy", "--png", tmp_path / "s.png") == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (4, 8, 8, 3) and s.dtype == np.uint8
    assert run("export", tmp_path / "r", "--out", tmp_path / "m") == 0
    # Fine-tuning starts from the base run's EMA weights.
    new = _images(tmp_path / "new", classes=["cats", "dogs"])
    assert run("train", new, "--out", tmp_path / "ft", "--init-from", tmp_path / "r", *small,
               "--stop-after", "0") == 0
    base, ft = _tensors(tmp_path / "r"), _tensors(tmp_path / "ft")
    assert all(torch.equal(base["ema." + k[6:]], ft[k]) for k in ft if k.startswith("model."))


def _assert_fails(tmp_path, capsys, argv, *fragments, out=None):
    assert run(*argv) == 2
    err = capsys.readouterr().err
    for f in fragments:
        assert f in err, err
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), "a failed command left files behind"


@pytest.mark.parametrize("case", ["missing", "empty", "mixed_sizes", "not_image", "corrupt",
                                  "nan", "inf", "ragged", "text"])
def test_bad_input_names_the_fix_and_writes_nothing(tmp_path, capsys, case):
    out = tmp_path / "out"
    data, fix = tmp_path / "data", ""
    if case == "missing":
        fix = "no file or folder"
    elif case == "empty":
        data.mkdir()
        fix = "holds no images"
    elif case in ("mixed_sizes", "not_image", "corrupt"):
        _images(data, n=6)
        if case == "mixed_sizes":
            Image.new("RGB", (10, 12)).save(data / "odd.png")
            fix = "--image-size"
        elif case == "not_image":
            (data / "notes.txt").write_text("hello")
            fix = "notes.txt is not a PNG/JPEG image; move it out"
        else:
            (data / "broken.png").write_bytes(b"not really a png")
            fix = "broken.png is not a readable image"
    else:
        data = tmp_path / "data.csv"
        rows = ["a,b"] + [f"{i},{i % 3}" for i in range(20)]
        if case == "nan":
            rows[5] = "nan,1"
            fix = "NaN/inf"
        elif case == "inf":
            rows[7] = "1,inf"
            fix = "NaN/inf"
        elif case == "ragged":
            rows[3] = "1,2,3"
            fix = "same number of columns"
        else:
            rows[4] = "1,cat"
            fix = "--label-column"
        data.write_text("\n".join(rows))
    _assert_fails(tmp_path, capsys, ["train", data, "--out", out, "--steps", "2"], fix, out=out)


def test_mixed_sizes_train_with_resize(tmp_path):
    data = _images(tmp_path / "d", n=8, mode="L")
    Image.new("L", (10, 12)).save(data / "odd.png")
    ds = datasets_io.load_images(data, size=8)
    assert ds.x.shape == (9, 1, 8, 8) and ds.x.min() >= -1 and ds.x.max() <= 1


def test_dimension_mismatch_existing_run_and_unwritable_output(tmp_path, capsys):
    csv = _points(tmp_path / "pts.csv")
    assert run("train", csv, "--out", tmp_path / "r", *FAST, "--steps", "2") == 0
    wide = _points(tmp_path / "wide.csv", d=3)
    _assert_fails(tmp_path, capsys, ["train", wide, "--out", tmp_path / "ft", "--init-from",
                                     tmp_path / "r"], "has 3 columns", "has 2", out=tmp_path / "ft")
    _assert_fails(tmp_path, capsys, ["train", csv, "--out", tmp_path / "r", *FAST], "--resume")
    other = _points(tmp_path / "other.csv", seed=5)
    _assert_fails(tmp_path, capsys, ["train", "--out", tmp_path / "r", "--resume", other],
                  "fingerprints differ")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    _assert_fails(tmp_path, capsys, ["train", csv, "--out", blocker / "run", *FAST], "cannot write")
    _assert_fails(tmp_path, capsys, ["sample", tmp_path / "r", "--out", blocker / "s.npy"],
                  "cannot write")


def test_toml_config_flags_win_and_unknown_keys_fail(tmp_path, capsys):
    csv = _points(tmp_path / "pts.csv")
    cfg = tmp_path / "run.toml"
    cfg.write_text('# my run\n[model]  # the network\nhidden = 16\ndepth = 1\n[training]\n'
                   'steps = 3\nbatch_size = 16\nlr = 1e-3  # small\nprediction = "eps"\n'
                   'progress = false\nlr_decay = "constant" # true\n')
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; 3.10 uses the fallback only
    assert cli._toml_fallback(cfg.read_text(), "x") == tomllib.loads(cfg.read_text())
    assert cli._toml_value('["a # b", "untrue", true]', "x") == ["a # b", "untrue", True]
    assert run("train", csv, "--out", tmp_path / "r", "--config", cfg, "--steps", "2") == 0
    saved = json.loads((tmp_path / "r" / "checkpoint.json").read_text())["config"]
    assert (saved["steps"], saved["batch_size"], saved["prediction"]) == (2, 16, "eps")
    assert runs.read_run(tmp_path / "r")["model"]["hidden"] == 16
    cfg.write_text("stepz = 3\n")
    _assert_fails(tmp_path, capsys, ["train", csv, "--out", tmp_path / "r2", "--config", cfg],
                  "unknown option(s) ['stepz']", out=tmp_path / "r2")


def test_every_subcommand_has_help(capsys):
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0 and f"diffusion-lite {name}" in capsys.readouterr().out


def test_project_scripts_import_and_python_m_runs():
    import importlib

    tomllib = pytest.importorskip("tomllib")

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name
    out = subprocess.run([sys.executable, "-m", "diffusion_lite", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and all(c in out.stdout for c in cli.COMMANDS)


def test_shards_partition_the_global_batch():
    shards = [Parallel(r, 4, r, "gloo", torch.device("cpu")).shard(12) for r in range(4)]
    assert [list(range(12))[s] for s in shards] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    with pytest.raises(ValueError, match="multiple of 4"):
        Parallel(0, 4, 0, "gloo", torch.device("cpu")).shard(10)


def test_two_process_ddp_equals_one_process(tmp_path):
    """torchrun, 2 CPU processes (gloo), global batch 32 = one process with batch 32.

    Tolerance: 1e-6 on every weight after 25 Adam steps (measured: about 3e-8, float32 round-off
    from summing the gradient in two halves).
    """
    csv = _points(tmp_path / "pts.csv")
    args = ["train", csv, *FAST, "--steps", "25", "--out"]
    assert run(*args, tmp_path / "one") == 0
    args.append(tmp_path / "two")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", "-m", "diffusion_lite", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 process(es)" in proc.stdout
    one, two = _tensors(tmp_path / "one"), _tensors(tmp_path / "two")
    for k in one:
        if k.startswith(("model.", "ema.", "history.")):
            assert torch.allclose(one[k].double(), two[k].double(), atol=1e-6, rtol=0), k
    log = [json.loads(line) for line in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["world_size"] == 2 and log[-1]["backend"] == "gloo"


def test_points_from_npy_npz_and_grey_jpeg_images(tmp_path):
    x = np.random.default_rng(2).normal(3.0, 2.0, (40, 3))
    np.save(tmp_path / "x.npy", x)
    ds = datasets_io.load_data(tmp_path / "x.npy")
    assert ds.x.shape == (40, 3) and torch.allclose(ds.x.mean(0), torch.zeros(3), atol=1e-5)
    restored = runs.postprocess(ds.x.double(), ds.normalisation)
    assert np.allclose(restored.numpy(), x, atol=1e-5)  # post-processing inverts preparation
    np.savez(tmp_path / "xy.npz", points=x, y=np.arange(40) % 2)
    with pytest.raises(datasets_io.DataError, match="--npz-key"):
        datasets_io.load_data(tmp_path / "xy.npz")
    ds = datasets_io.load_data(tmp_path / "xy.npz", npz_key="points", label_column="y")
    assert ds.classes == ["0", "1"] and ds.labels.tolist() == (np.arange(40) % 2).tolist()
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 5, dtype=object), allow_pickle=True)
    with pytest.raises(datasets_io.DataError, match="pickle"):
        datasets_io.load_data(tmp_path / "obj.npy")
    folder = tmp_path / "jpg"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8), "L").save(folder / f"{i}.jpg")
    ds = datasets_io.load_data(folder)
    assert ds.x.shape == (5, 1, 8, 8) and float(ds.x[0].mean()) == -1.0
