"""The command line: help for newcomers, clear errors, fetch, and compare end to end on a tiny set."""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.figure
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


# ------------------------------------------------------------------------------ bad input, round two

TINY_DIGITS = ("compare", "--epochs", "1", "--seeds", "0", "--per-class", "2", "--test-size", "10", "--width", "2",
               "--methods", "sgd,sema", "--device", "cpu")


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder that refuses new files: read-only permissions, or (root may write anywhere) /sys,
    where the kernel refuses new entries from everyone."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    assert Path("/sys/kernel").is_dir(), "running as root needs Linux's /sys as an unwritable folder"
    return Path("/sys")


def no_training_started(out: str, err: str) -> bool:
    return "training images" not in out and "epoch" not in err


@pytest.mark.parametrize("where", ["afile", "afile/below", "x" * 300, "/".join(["d" * 200] * 25)],
                         ids=["existing-file", "below-a-file", "long-name", "long-path"])
def test_an_unusable_out_is_one_error_line_before_training_starts(capsys, tmp_path, where):
    (tmp_path / "afile").write_text("keep me")
    code, out, err = run(capsys, *TINY_DIGITS, "--out", str(tmp_path / where))
    assert code == 1 and err.startswith("error: the output folder") and err.count("\n") == 1, err
    assert no_training_started(out, err) and "Traceback" not in err
    assert (tmp_path / "afile").read_text() == "keep me"


def test_an_unwritable_out_is_one_error_line_before_training_starts(capsys, tmp_path):
    base = unwritable_folder(tmp_path)
    code, out, err = run(capsys, *TINY_DIGITS, "--out", str(base / "sema-demo-results"))
    assert code == 1 and err.startswith(f"error: cannot write the results to {base / 'sema-demo-results'}: "
                                        f"{base} is not writable ("), err
    assert err.count("\n") == 1 and no_training_started(out, err)
    assert not (base / "sema-demo-results").exists()


def test_a_full_disk_while_writing_keeps_the_older_results_whole(capsys, tmp_path, monkeypatch):
    code, _, err = run(capsys, *TINY_DIGITS, "--out", str(tmp_path))
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["curves.png", "metrics.csv", "metrics.json"]

    def savefig_on_a_full_disk(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89PNG half a picture")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig_on_a_full_disk)
    code, out, err = run(capsys, *TINY_DIGITS, "--methods", "ema", "--out", str(tmp_path))
    assert code == 1 and "error: could not write the results" in err and "No space left on device" in err
    assert "nothing was written and older results there are unchanged" in err and "Traceback" not in err
    assert "EMA" in out, "the numbers are printed before the files are written, so they are not lost"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "no mix, no half file, no temp file"


def test_a_diverged_run_is_marked_and_written_as_strict_json(capsys, tmp_path):
    # lr 1e4 sends BatchNorm's running_var to inf while the weights stay finite for a while.
    code, out, err = run(capsys, "compare", "--lr", "10000", "--epochs", "3", "--seeds", "0", "--per-class", "5",
                         "--test-size", "20", "--width", "4", "--methods", "sgd,ema", "--device", "cpu",
                         "--out", str(tmp_path))
    assert code == 0, err
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert metrics.groupby("method")["diverged"].any().all(), metrics
    report = json.loads((tmp_path / "metrics.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}, which is not JSON"))
    diverged = [row for row in report["history"] if row["diverged"]]
    assert diverged and all(row["test_loss"] is None and row["test_acc"] is None for row in diverged)
    assert "tied" not in out and "nan" not in out.lower()
    assert "SGD (seed 0) diverged at epoch" in out and "Every run diverged" in out


@pytest.mark.parametrize("argv, message", [
    (["--target", "nan"], "expected a percentage from 0 to 100, got nan"),
    (["--target", "inf"], "expected a percentage from 0 to 100, got inf"),
    (["--target", "150"], "expected a percentage from 0 to 100, got 150"),
    (["--seeds", "99999999999999999999"], "give one or more seeds from 0 to 9,223,372,036,854,775,807"),
])
def test_non_finite_targets_and_huge_seeds_are_refused(capsys, argv, message):
    code, _, err = run(capsys, "compare", *argv)
    assert code == 2 and message in err and "Traceback" not in err and "Overflow" not in err


def test_fetch_into_a_data_folder_that_is_a_file_or_unwritable(capsys, tmp_path):
    (tmp_path / "afile").write_text("keep me")
    code, _, err = run(capsys, "fetch", "cifar10", "--data-dir", str(tmp_path / "afile"))
    assert code == 1 and err.startswith("error: the data folder") and "is a file, not a folder" in err
    assert "Traceback" not in err and (tmp_path / "afile").read_text() == "keep me"
    data_dir = unwritable_folder(tmp_path) / "sema-demo-data"
    code, _, err = run(capsys, "fetch", "cifar10", "--data-dir", str(data_dir))
    assert code == 1 and err.startswith(f"error: cannot write to the data folder {data_dir}"), err
    assert "Traceback" not in err and not data_dir.exists()


def test_fetch_with_a_folder_where_the_archive_goes_downloads_nothing(capsys, tmp_path, monkeypatch):
    (tmp_path / "cifar-10-python.tar.gz").mkdir()
    monkeypatch.setattr(image_data.urllib.request, "urlopen",
                        lambda *a, **k: pytest.fail("nothing may be downloaded when it cannot be kept"))
    code, _, err = run(capsys, "fetch", "cifar10", "--data-dir", str(tmp_path))
    assert code == 1 and "cifar-10-python.tar.gz is a folder, where the downloaded archive should go" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz"], "no .part file left"


def test_a_download_that_cannot_be_saved_leaves_no_part_file(tmp_path, monkeypatch):
    source = write_cifar_archive(tmp_path / "src.tar.gz", "cifar10")
    real_open = open

    def open_on_a_full_disk(path, mode="r", *args, **kwargs):
        if str(path).endswith(".part"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", open_on_a_full_disk)
    with pytest.raises(image_data.DataError, match="could not save the download .*No space left on device"):
        image_data.download(source.as_uri(), tmp_path / "data" / "c.tar.gz")
    monkeypatch.undo()
    assert list((tmp_path / "data").iterdir()) == []


# A real SIGINT, sent by the process to itself the moment `import torch` begins: deterministic,
# unlike a timer racing the interpreter's start-up.
INTERRUPT_DURING_IMPORT = """
import builtins, os, runpy, signal, sys
real_import = builtins.__import__
def interrupting_import(name, *args, **kwargs):
    if name == {module!r}:
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupting_import
sys.argv = ["sema-demo", "compare"]
runpy.run_module("sema_demo", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module", ["argparse", "torch", "tarfile"])
def test_ctrl_c_while_the_cli_imports_says_interrupted(root, module):
    done = subprocess.run([sys.executable, "-c", INTERRUPT_DURING_IMPORT.format(module=module)], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 130 and done.stderr.strip() == "interrupted", done.stderr


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
    assert not list(out_dir.glob(".tmp-*"))                         # written through temporary files, renamed
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


@pytest.mark.parametrize("command", [("paths", "--dataset", "circles", "--epochs", "1"), ("claims", "--quick")])
def test_paths_and_claims_refuse_an_unusable_out_before_any_work(capsys, tmp_path, command):
    (tmp_path / "afile").write_text("keep me")
    code, out, err = run(capsys, *command, "--out", str(tmp_path / "afile" / "below"))
    assert code == 1 and err.startswith("error: the output folder") and err.count("\n") == 1, err
    assert "epoch" not in err and "claims" not in err.split("error:")[0] and "Traceback" not in err
    assert (tmp_path / "afile").read_text() == "keep me"
