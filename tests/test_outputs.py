"""Result files: the output folder is checked before any work, and a run is written whole or not at all."""
from __future__ import annotations

import errno
import json
import os

import pytest

from sema_demo import outputs
from sema_demo.outputs import OutputError, json_text, prepare_out_dir, write_outputs

NAMES = ("metrics.csv", "metrics.json", "curves.png")


def writers(tag: str, fail_on: str | None = None):
    """{name: writer} writing ``tag`` into each file; ``fail_on`` writes half and then hits a full disk."""
    def writer(name):
        def write(path):
            if name == fail_on:
                path.write_text(tag[: len(tag) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            path.write_text(f"{tag} {name}")
        return write
    return {name: writer(name) for name in NAMES}


def test_prepare_out_dir_accepts_a_new_or_existing_folder_and_creates_nothing(tmp_path):
    assert prepare_out_dir(tmp_path / "a" / "b", NAMES) == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists() and list(tmp_path.iterdir()) == []
    assert prepare_out_dir(tmp_path, NAMES) == tmp_path


@pytest.mark.parametrize("where, message", [
    ("afile", "is an existing file, not a folder"),
    ("afile/below", "lies below .*afile, which is a file"),
    ("x" * 300, "is longer than the 255 characters this file system allows"),
    ("/".join(["d" * 200] * 25), "is longer than the 4096 characters this file system allows for a path"),
    ("hasdir", "metrics.json is a folder; the results would replace it"),
])
def test_prepare_out_dir_refuses_unusable_places_with_one_sentence(tmp_path, where, message):
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "hasdir" / "metrics.json").mkdir(parents=True)
    with pytest.raises(OutputError, match=message):
        prepare_out_dir(tmp_path / where, NAMES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "hasdir"], "the check left nothing behind"


def test_a_full_disk_writes_nothing_and_keeps_the_older_run(tmp_path):
    write_outputs(tmp_path, writers("old"))
    with pytest.raises(OutputError, match="No space left on device.*nothing was written and older results"):
        write_outputs(tmp_path, writers("new", fail_on="curves.png"))
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {n: f"old {n}" for n in NAMES}


def test_a_new_run_replaces_the_older_files_together_and_leaves_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    write_outputs(tmp_path, writers("old"))
    written = write_outputs(tmp_path, writers("new"))
    assert written == [tmp_path / n for n in NAMES]
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {**{n: f"new {n}" for n in NAMES},
                                                                    "notes.txt": "mine"}


def test_a_failed_rename_puts_the_older_run_back(tmp_path, monkeypatch):
    write_outputs(tmp_path, writers("old"))
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 4:                # the 2nd new file's move into place
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace)
    with pytest.raises(OutputError, match="could not move the results"):
        write_outputs(tmp_path, writers("new"))
    monkeypatch.undo()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {n: f"old {n}" for n in NAMES}


def test_json_text_writes_null_for_non_finite_numbers():
    import numpy as np

    text = json_text({"a": float("nan"), "b": [float("inf"), -np.inf, np.float32(0.5)], "c": (1, "x")})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == \
        {"a": None, "b": [None, None, 0.5], "c": [1, "x"]}
