"""Result files of a command: checked before the work starts, written whole or not at all.

    folder = prepare_out_dir(args.out, ("metrics.csv", "metrics.json", "curves.png"))  # OutputError now …
    ...                                                                                 # … not after an hour
    write_outputs(folder, {"metrics.csv": lambda path: frame.to_csv(path, index=False),
                           "metrics.json": lambda path: path.write_text(json_text(report)),
                           "curves.png": lambda path: figure.savefig(path)})

``prepare_out_dir`` refuses, with one sentence, a folder that is an existing file, lies below a
file, cannot be written to (tried, not guessed from permission bits), has a name longer than the
file system allows, or would replace a folder with one of the result files.  It creates nothing.

``write_outputs`` is how a run is written:

1. every file goes to a hidden temporary file in the output folder (``.tmp-<random>-<name>``,
   same file system, same extension, so a writer that looks at the suffix still works);
2. only when all of them are complete (flushed to disk) are they renamed into place; an older
   run's files of the same names are first moved aside, and put back if a rename fails.

So the folder holds the whole new set or the whole older set, never a mix of the two, and never
a truncated file.  Files with other names in the folder are left alone.  On any failure (disk
full, interrupted) every temporary file is removed and :class:`OutputError` says nothing was
written.  ``json_text`` writes ``null`` for NaN and ±inf, which JSON cannot hold.
"""
from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

__all__ = ["OutputError", "prepare_out_dir", "write_outputs", "json_text", "finite_or_null"]

Writer = Callable[[Path], None]     # writes one complete file at the path it is given
TEMP_NAME_EXTRA = 24                # ".tmp-" + 16 hex digits + "-": what a temporary name adds to a file name


class OutputError(Exception):
    """An output location that cannot be used, or results that could not be written."""


def _limit(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):   # no pathconf (Windows) or no such limit
        return default


def _deepest_existing(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists (as anything: folder or file)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def prepare_out_dir(path: str | os.PathLike, names: Iterable[str]) -> Path:
    """The output folder as a Path, once it is certain that ``names`` can be written into it.

    Raises :class:`OutputError` naming the problem.  Nothing is created (the check writes and
    removes a hidden probe folder where the output folder will be made).
    """
    names = tuple(names)
    folder = Path(os.path.abspath(Path(path).expanduser()))
    base = _deepest_existing(folder)
    if base == folder and not folder.is_dir():
        raise OutputError(f"the output folder {path} is an existing file, not a folder; choose a folder for the results")
    if not base.is_dir():
        raise OutputError(f"the output folder {path} lies below {base}, which is a file, not a folder")
    longest = _limit(base, "PC_NAME_MAX", 255)
    for part in (*folder.relative_to(base).parts, *names):
        if len(os.fsencode(part)) + (TEMP_NAME_EXTRA if part in names else 0) > longest:
            raise OutputError(f"the output folder {str(path)[:60]}…: the name {part[:40]}… is longer than the {longest} characters "
                              "this file system allows")
    longest_path = _limit(base, "PC_PATH_MAX", 4096)
    if len(os.fsencode(folder)) + max(map(len, names), default=0) + TEMP_NAME_EXTRA + 1 >= longest_path:
        raise OutputError(f"the output folder {str(path)[:60]}… is longer than the {longest_path} characters this "
                          "file system allows for a path")
    for name in names:
        if (folder / name).is_dir():
            raise OutputError(f"{folder / name} is a folder; the results would replace it. Move it or choose "
                              "another output folder")
    try:                                   # the one reliable test of "can I write here": do it
        probe = base / f".tmp-{secrets.token_hex(8)}-probe"
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        raise OutputError(f"cannot write the results to {folder}: {base} is not writable "
                          f"({e.strerror or e})") from None
    return folder


def write_outputs(folder: str | os.PathLike, writers: Mapping[str, Writer]) -> list[Path]:
    """Write every file of ``writers`` ({file name: writer}) into ``folder``, all or none.

    Returns the written paths.  Raises :class:`OutputError` when anything fails; then
    nothing new is in the folder and an older run's files are as they were.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"could not create {folder} ({e.strerror or e}); nothing was written") from None
    token = secrets.token_hex(8)
    temps = {name: folder / f".tmp-{token}-{name}" for name in writers}
    try:
        for name, write in writers.items():
            write(temps[name])
            _flush_to_disk(temps[name])    # a full disk may only say so here
    except OSError as e:
        _remove(temps.values())
        raise OutputError(f"could not write the results to {folder} ({e.strerror or e}); nothing was "
                          "written and older results there are unchanged") from None
    except BaseException:                  # interrupted: leave nothing half-written
        _remove(temps.values())
        raise
    return _rename_into_place(folder, temps, token)


def _rename_into_place(folder: Path, temps: Mapping[str, Path], token: str) -> list[Path]:
    """Swap the complete new files in for an older run's; on failure put the older ones back."""
    moved_aside: dict[Path, Path] = {}
    placed: list[Path] = []
    try:
        for name, temp in temps.items():
            target = folder / name
            if os.path.lexists(target):
                aside = folder / f".old-{token}-{name}"
                os.replace(target, aside)
                moved_aside[target] = aside
            os.replace(temp, target)
            placed.append(target)
    except OSError as e:
        _remove(placed)
        for target, aside in moved_aside.items():
            os.replace(aside, target)
        _remove(temps.values())
        raise OutputError(f"could not move the results into {folder} ({e.strerror or e}); nothing was "
                          "written and older results there are unchanged") from None
    _remove(moved_aside.values())
    return placed


def _flush_to_disk(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def finite_or_null(value):
    """``value`` with every NaN / ±inf replaced by None, through dicts, lists and numpy scalars."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def json_text(obj) -> str:
    """Strict JSON (``null`` for non-finite numbers; other objects as their ``str``)."""
    return json.dumps(finite_or_null(obj), indent=1, default=str, allow_nan=False)
