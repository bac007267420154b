"""Toy 2D data sets (moons, circles, spirals, XOR, Gaussian blobs) and validated user CSVs.

    data = toy_data("moons", n=1000, noise=0.2, test_fraction=0.2, seed=0)   # a training.Data
    x, y, classes = read_csv(uploaded_bytes)                                 # raises CSVError
    data = split_data(x, y, test_fraction=0.2, seed=0, name="my.csv", standardize=True)

Every generator is seeded and gives balanced classes.  ``noise`` is on one scale for
all of them: 0 is clean, 0.2 a little overlap, 0.5 and more a lot.
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.model_selection import train_test_split

from ..training import Data

DATASETS = ("moons", "circles", "spirals", "xor", "blobs")
DATASET_NAMES = {"moons": "Two moons", "circles": "Circles", "spirals": "Spirals", "xor": "XOR",
                 "blobs": "Gaussian blobs (3 classes)"}
CSV_COLUMNS = ("x1", "x2", "label")
MAX_CSV_ROWS = 50_000
MAX_CLASSES = 10
MAX_LABEL_LENGTH = 40  # characters: a label is drawn in every legend and frame, so its length costs time
MIN_ROWS = 10
SHOWN_TEXT = 30        # characters of a user's value quoted back in a message
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")   # a decimal number as a label


MAX_ABS_VALUE = 1e6  # coordinates beyond this overflow float32 arithmetic (squares, logits)


class CSVError(ValueError):
    """A user CSV that cannot be used; the message says what is wrong and where."""


# ---------------------------------------------------------------------------------- generators


def _spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved arms, each turning 1.75 times around the origin."""
    y = np.arange(n) % 2
    t = np.sqrt(rng.uniform(0, 1, n)) * 1.75 * 2 * np.pi        # sqrt: points evenly along the arm
    angle = t + np.pi * y
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1) / (1.75 * 2 * np.pi) * 2.0
    return x + rng.normal(0, noise * 0.5, x.shape), y


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points in the four quadrants of [-1, 1]²; the class is the sign of x1·x2."""
    quadrant = np.arange(n) % 4
    signs = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]])[quadrant]
    x = signs * rng.uniform(0.05, 1.0, (n, 2))                   # a small gap at the axes
    return x + rng.normal(0, noise * 0.5, x.shape), (quadrant >= 2).astype(np.int64)


def make_points(name: str, n: int = 1000, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): ``n`` points in 2D as float32 and their int64 classes, balanced and seeded."""
    if name not in DATASETS:
        raise ValueError(f"data set must be one of {DATASETS}, got {name!r}")
    if n < MIN_ROWS:
        raise ValueError(f"need at least {MIN_ROWS} points, got {n}")
    if not 0 <= noise <= 5:
        raise ValueError(f"noise must be in [0, 5], got {noise}")
    rng = np.random.default_rng(seed)
    if name == "moons":
        x, y = make_moons(n, noise=noise * 0.5, random_state=seed)
    elif name == "circles":
        x, y = make_circles(n, noise=noise * 0.25, factor=0.5, random_state=seed)
    elif name == "blobs":
        centers = np.array([[-1.0, -0.6], [1.0, -0.6], [0.0, 1.0]])
        per_class = [n // 3 + (i < n % 3) for i in range(3)]
        x, y = make_blobs(per_class, centers=centers, cluster_std=0.15 + noise, random_state=seed)
    elif name == "spirals":
        x, y = _spirals(n, noise, rng)
    else:
        x, y = _xor(n, noise, rng)
    order = rng.permutation(n)                                   # no class runs in the row order
    return x[order].astype(np.float32), y[order].astype(np.int64)


def toy_data(name: str, n: int = 1000, noise: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> Data:
    """A generated data set, split into train and test, ready for ``training.Trainer``."""
    x, y = make_points(name, n, noise, seed)
    return split_data(x, y, test_fraction, seed, name=name)


def points_frame(name: str = "moons", n: int = 200, noise: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """Generated points as a CSV-ready table (x1, x2, label): an example of the upload format."""
    x, y = make_points(name, n, noise, seed)
    return pd.DataFrame({"x1": x[:, 0].round(4), "x2": x[:, 1].round(4), "label": y})


# --------------------------------------------------------------------------------------- splits


def split_data(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0, name: str = "",
               standardize: bool = False) -> Data:
    """A stratified, seeded train/test split as ``training.Data`` (with a plotting extent).

    ``standardize`` rescales both features to mean 0 and std 1 on the training part,
    so that data in any unit suits the same learning rates.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    n = len(y)
    n_test = min(max(1, round(n * test_fraction)), n - 1)
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 and n_test >= len(counts) and n - n_test >= len(counts) else None
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=n_test, random_state=seed,
                                                        stratify=stratify)
    if standardize:    # in float64: near ±1e6 float32 is 0.06 apart and would merge nearby points
        x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
        mean, std = x_train.mean(0), x_train.std(0)
        std[std == 0] = 1.0
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return Data(
        x_train=torch.as_tensor(x_train, dtype=torch.float32), y_train=torch.as_tensor(y_train),
        x_test=torch.as_tensor(x_test, dtype=torch.float32), y_test=torch.as_tensor(y_test),
        n_classes=int(y.max()) + 1, name=name, extent=square_extent(np.concatenate([x_train, x_test])),
    )


def square_extent(x: np.ndarray, margin: float = 0.12) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) around all points with a margin, as a square so circles look round."""
    lo, hi = x.min(0), x.max(0)
    center, half = (lo + hi) / 2, (hi - lo).max() / 2 * (1 + margin) + 1e-6
    return (float(center[0] - half), float(center[0] + half), float(center[1] - half), float(center[1] + half))


# ------------------------------------------------------------------------------------ user CSVs


def read_csv(source: bytes | str | Path | io.IOBase) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(x, y, class names) from a CSV with the columns x1, x2, label; raises :class:`CSVError`.

    x is float64 (the split standardises it before the networks' float32).  Labels may be
    numbers or words of at most MAX_LABEL_LENGTH characters; they become classes 0, 1, … in
    sorted order.  Numerically equal labels (``1``, ``1.0``, ``01``) are one class, named ``1``.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        # Read everything as text (one row more than allowed, to detect "too many" cheaply).
        frame = pd.read_csv(source, dtype=str, keep_default_na=False, nrows=MAX_CSV_ROWS + 1,
                            skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise CSVError(f"the file could not be read as CSV ({type(err).__name__}: {str(err).strip()[:120]})") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in CSV_COLUMNS if c not in frame.columns]
    if missing:
        raise CSVError(f"missing column(s) {', '.join(missing)}: the CSV needs a header row with "
                       f"x1, x2, label (found: {', '.join(map(_shown, frame.columns[:8])) or 'nothing'})")
    if len(frame) > MAX_CSV_ROWS:
        raise CSVError(f"more than {MAX_CSV_ROWS:,} rows; use at most {MAX_CSV_ROWS:,} points")
    if len(frame) < MIN_ROWS:
        raise CSVError(f"only {len(frame)} rows; need at least {MIN_ROWS} points")
    x = np.stack([_numeric_column(frame, c) for c in ("x1", "x2")], 1)
    labels = frame["label"].str.strip()
    empty = labels == ""
    if empty.any():
        raise CSVError(f"column label has {int(empty.sum())} missing value(s), first in data row "
                       f"{int(np.argmax(empty.to_numpy())) + 1}")
    long = labels.str.len() > MAX_LABEL_LENGTH
    if long.any():
        first = int(np.argmax(long.to_numpy()))
        raise CSVError(f"the label in data row {first + 1} is {len(labels.iloc[first]):,} characters long "
                       f"({_shown(labels.iloc[first])}); labels can have at most {MAX_LABEL_LENGTH}")
    labels = labels.map(_normal_label)
    classes = sorted(labels.unique(), key=_label_key)
    if len(classes) < 2:
        raise CSVError(f"need at least 2 classes, but every row has label {classes[0]!r}")
    if len(classes) > MAX_CLASSES:
        raise CSVError(f"{len(classes)} different labels; at most {MAX_CLASSES} classes are supported")
    y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    return x, y, classes


def _numeric_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    bad_text = np.isnan(values) & ~text.str.lower().isin(["", "nan", "na", "null", "none"]).to_numpy()
    if bad_text.any():
        first = int(np.argmax(bad_text))
        raise CSVError(f"column {column} has non-numeric values, e.g. {_shown(text.iloc[first])} in data row "
                       f"{first + 1}")
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise CSVError(f"column {column} has {int(bad.sum())} missing or infinite value(s) (NaN), "
                       f"first in data row {first + 1}")
    huge = np.abs(values) > MAX_ABS_VALUE
    if huge.any():
        first = int(np.argmax(huge))
        raise CSVError(f"column {column} has value {text.iloc[first][:SHOWN_TEXT]} in data row {first + 1}, beyond ±{MAX_ABS_VALUE:g}; "
                       "the networks train in float32, so rescale the data first")
    return values


def _shown(text: str) -> str:
    """A user's value quoted in a message: its repr, cut to SHOWN_TEXT characters."""
    return repr(text) if len(text) <= SHOWN_TEXT else repr(text[:SHOWN_TEXT]) + "…"


def _normal_label(label: str) -> str:
    """One spelling per number (``1.0`` and ``01`` → ``1``, ``2.50`` → ``2.5``); words as they are."""
    if not NUMBER.fullmatch(label):
        return label
    value = float(label)
    if not math.isfinite(value):       # 1e999: too big to be a class number; keep the text
        return label
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _label_key(label: str):
    """Sort numeric labels by value (2 before 10), words alphabetically after them."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, math.inf, label)


def csv_data(source, test_fraction: float = 0.2, seed: int = 0, name: str = "CSV") -> tuple[Data, list[str]]:
    """A validated user CSV as standardised, split ``training.Data``, and its class names."""
    x, y, classes = read_csv(source)
    return split_data(x, y, test_fraction, seed, name=name, standardize=True), classes
