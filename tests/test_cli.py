"""The command line: help for newcomers, clear errors, fetch, and compare end to end on a tiny set."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

import pandas as pd
import pytest

from fake_cifar import write_cifar_archive, write_cifar_folder
from sema_demo import cli
from sema_demo.datasets import images as image_data


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``sema-demo argv…`` run in this process."""
    try:
        code = cli.main(list(argv))
    except SystemExit as e:   # argparse exits for --help and for bad arguments
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_explains_the_commands_with_examples(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "fetch" in out and "compare" in out and "examples:" in out and "sema-demo fetch cifar10" in out
    code, out, _ = run(capsys, "compare", "--help")
    assert code == 0
    for text in ("--per-class", "--methods", "--seeds", "--out", "mean ± std", "EMA decay"):
        assert text in out


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "usage: sema-demo" in out


@pytest.mark.parametrize("argv, message", [
    (["compare", "--methods", "sgd,sgdd"], "unknown method(s) sgdd; choose from sgd,ema,sema,swa,lookahead"),
    (["compare", "--seeds", "zero"], "seeds are whole numbers separated by commas"),
    (["compare", "--alpha", "1.5"], "α is the EMA decay and must be in [0, 1)"),
    (["compare", "--epochs", "0"], "expected a number >= 1, got 0"),
    (["compare", "--lr", "nan"], "expected a number > 0"),
    (["compare", "--dataset", "mnist"], "invalid choice: 'mnist'"),
    (["fetch", "imagenet"], "invalid choice: 'imagenet'"),
])
def test_bad_arguments_give_one_clear_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_compare_without_fetched_cifar_says_what_to_run(capsys, tmp_path):
    code, _, err = run(capsys, "compare", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out", str(tmp_path))
    assert code == 1 and err.startswith("error:") and "`sema-demo fetch cifar10`" in err
    assert "Traceback" not in err


def test_compare_on_a_missing_device_is_a_clear_error(capsys, tmp_path):
    code, _, err = run(capsys, "compare", "--device", "mps", "--out", str(tmp_path))
    assert code == 1 and "device 'mps' was requested but is not available" in err


def test_fetch_downloads_verifies_and_reports(capsys, tmp_path, monkeypatch):
    source = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", "cifar10")
    spec = dataclasses.replace(image_data.CIFAR["cifar10"], url=source.as_uri(),
                               md5=hashlib.md5(source.read_bytes()).hexdigest())
    monkeypatch.setitem(image_data.CIFAR, "cifar10", spec)
    code, out, err = run(capsys, "fetch", "cifar10", "--data-dir", str(tmp_path / "data"))
    assert code == 0 and "Verified" in out and "100%" in err
    assert image_data.is_available("cifar10", tmp_path / "data")
    code, out, _ = run(capsys, "fetch", "cifar10", "--data-dir", str(tmp_path / "data"))
    assert code == 0 and "already in" in out


def test_fetch_with_a_bad_checksum_fails_cleanly(capsys, tmp_path, monkeypatch):
    source = write_cifar_archive(tmp_path / "cifar-100-python.tar.gz", "cifar100")
    monkeypatch.setitem(image_data.CIFAR, "cifar100",
                        dataclasses.replace(image_data.CIFAR["cifar100"], url=source.as_uri()))
    code, _, err = run(capsys, "fetch", "cifar100", "--data-dir", str(tmp_path / "data"))
    assert code == 1 and "has MD5" in err and "expected eb9058c3a382ffc7106e4002c42a8d85" in err


def test_compare_end_to_end_on_a_tiny_cifar_folder(capsys, tmp_path):
    write_cifar_folder(tmp_path / "data", "cifar10", train_per_class=4, test_per_class=2)
    out_dir = tmp_path / "results"
    code, out, err = run(capsys, "compare", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"),
                         "--per-class", "4", "--test-size", "20", "--epochs", "2", "--width", "4",
                         "--batch-size", "20", "--methods", "sgd,sema", "--seeds", "0,1", "--device", "cpu",
                         "--target", "5", "--out", str(out_dir))
    assert code == 0, err
    assert "epoch 2/2" in err and "100%" in err
    metrics = pd.read_csv(out_dir / "metrics.csv")
    assert len(metrics) == 2 * 2 * 2 and set(metrics["method"]) == {"sgd", "sema"}
    assert metrics.loc[metrics["method"] == "sema", "switched"].all()
    report = json.loads((out_dir / "metrics.json").read_text())
    assert report["dataset"] == "cifar10" and report["config"]["seeds"] == [0, 1]
    assert [row["Method"] for row in report["summary"]] == ["SGD", "SEMA"]
    assert len(report["history"]) == 8 and report["target_accuracy"] == 0.05
    assert (out_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SEMA" in out and "Epochs to 5% test accuracy" in out and "Wrote" in out


def test_python_dash_m_runs_the_cli(root):
    done = subprocess.run([sys.executable, "-m", "sema_demo", "--version"], cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("sema-demo ")


def test_paths_writes_the_projected_paths_the_surface_the_plane_and_a_figure(capsys, tmp_path):
    import numpy as np

    out_dir = tmp_path / "paths"
    code, out, err = run(capsys, "paths", "--dataset", "circles", "--epochs", "3", "--grid", "5", "--seeds", "0,1",
                         "--alpha", "0.9", "--device", "cpu", "--out", str(out_dir))
    assert code == 0, err
    frame = pd.read_csv(out_dir / "paths.csv")
    assert list(frame.columns) == ["method", "seed", "step", "epoch", "weights", "x", "y"]
    assert set(frame.weights) == {"live", "average"} and set(frame.seed) == {0, 1}
    assert frame.epoch.max() == 3
    surface = np.load(out_dir / "surface.npz")
    assert surface["x"].shape == (5,) and surface["y"].shape == (5,) and surface["loss"].shape == (5, 5)
    assert np.isfinite(surface["loss"]).all()
    report = json.loads((out_dir / "plane.json").read_text())
    assert report["plane"]["kind"] == "solutions" and report["plane"]["centre"] == "SGD's end"
    points = report["points"]
    assert [(p["method"], p["seed"]) for p in points] == [(m, s) for s in (0, 1) for m in ("sgd", "ema", "sema")]
    assert points[0]["x"] == 0 and points[0]["y"] == 0 and all(p["loss"] > 0 for p in points)
    assert (out_dir / "paths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out_dir.glob(".*.tmp"))                        # written through temporary files
    assert "Lowest end." in out and "Wrote" in out


@pytest.mark.parametrize("argv, message", [
    (("--grid", "2"), "--grid must be at least 3"),
    (("--dataset", "cifar10"), "CIFAR-10"),
    (("--alpha", "1.5"), "α is the EMA decay"),
])
def test_paths_bad_arguments_get_one_error_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.setenv(image_data.DATA_ENV, str(tmp_path / "empty"))
    code, _, err = run(capsys, "paths", "--epochs", "1", "--out", str(tmp_path / "o"), *argv)
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert "error:" in last and message in last and "Traceback" not in err
    assert not (tmp_path / "o").exists()
