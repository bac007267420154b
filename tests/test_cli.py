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
