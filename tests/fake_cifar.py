"""Tiny CIFAR-10/100 files in the exact official format, written by tests (no network here).

The official files are Python 2 pickles: dict keys and byte strings are Python 2 ``str``
(SHORT_BINSTRING/BINSTRING opcodes) and arrays refer to ``numpy.core.multiarray``.
``Py2Pickler`` writes the same opcodes, so the loader is tested on what it will really read.
"""
from __future__ import annotations

import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from sema_demo.datasets.images import CIFAR


class Py2Pickler(pickle._Pickler):
    """Protocol 2 with bytes written as Python 2 str, like the pickles on the CIFAR site."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 2 names its array constructor numpy._core; the official files (numpy 1) say numpy.core.
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def class_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3072) uint8 rows in CIFAR's layout; each class gets its own colour so a net can learn it."""
    base = (np.stack([labels * 37 % 256, labels * 91 % 256, labels * 151 % 256], 1)).astype(np.float64)
    noise = rng.normal(0, 25, (len(labels), 3, 32 * 32))
    return np.clip(base[:, :, None] + noise, 0, 255).astype(np.uint8).reshape(len(labels), 3072)


def cifar_files(name: str, train_per_class: int = 3, test_per_class: int = 2, seed: int = 0) -> dict[str, bytes]:
    """{file name: pickle bytes} of a tiny extracted CIFAR folder."""
    spec = CIFAR[name]
    rng = np.random.default_rng(seed)
    n_classes = 10 if name == "cifar10" else 100
    train = np.repeat(np.arange(n_classes), train_per_class)
    train = rng.permutation(train)
    test = rng.permutation(np.repeat(np.arange(n_classes), test_per_class))
    files = {}
    if name == "cifar10":
        for i, part in enumerate(np.array_split(train, len(spec.train_files)), 1):
            files[f"data_batch_{i}"] = py2_pickle({
                b"batch_label": f"training batch {i} of 5".encode(), b"labels": [int(v) for v in part],
                b"data": class_images(part, rng), b"filenames": [f"img_{j}.png".encode() for j in range(len(part))]})
        files["test_batch"] = py2_pickle({b"batch_label": b"testing batch 1 of 1", b"labels": [int(v) for v in test],
                                          b"data": class_images(test, rng), b"filenames": [b"t.png"] * len(test)})
        files["batches.meta"] = py2_pickle({b"num_cases_per_batch": 10000, b"num_vis": 3072, b"label_names": [
            b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]})
    else:
        for split, labels in (("train", train), ("test", test)):
            files[split] = py2_pickle({
                b"filenames": [b"x.png"] * len(labels), b"batch_label": split.encode(),
                b"fine_labels": [int(v) for v in labels], b"coarse_labels": [int(v) // 5 for v in labels],
                b"data": class_images(labels, rng)})
        files["meta"] = py2_pickle({b"fine_label_names": [f"class{c}".encode() for c in range(100)],
                                    b"coarse_label_names": [f"super{c}".encode() for c in range(20)]})
    return files


def write_cifar_folder(root: Path, name: str, **kwargs) -> Path:
    """An extracted torchvision-style folder (cifar-10-batches-py/ or cifar-100-python/) under root."""
    folder = Path(root) / CIFAR[name].folder
    folder.mkdir(parents=True, exist_ok=True)
    for file, blob in cifar_files(name, **kwargs).items():
        (folder / file).write_bytes(blob)
    return folder


def write_cifar_archive(path: Path, name: str, **kwargs) -> Path:
    """A .tar.gz laid out like the official archive."""
    with tarfile.open(path, "w:gz") as tar:
        for file, blob in cifar_files(name, **kwargs).items():
            info = tarfile.TarInfo(f"{CIFAR[name].folder}/{file}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path
