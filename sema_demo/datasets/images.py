"""Image data sets: CIFAR-10/100 subsets (after one explicit download) and the bundled Digits.

    fetch("cifar10")                                   # once, with a network: download, verify, extract
    images = load_images("cifar10")                    # all images as uint8 arrays, from the cache folder
    data = make_data(images, per_class=100, test_size=1000, seed=0, device="cpu")   # a training.Data

Nothing here touches the network unless ``fetch`` is called.  The cache folder is
``$SEMA_DEMO_DATA`` (default ``~/.cache/sema_demo``); a torchvision-style extracted
folder (``cifar-10-batches-py/``, ``cifar-100-python/``) found there is used in place.

The CIFAR files are Python pickles.  They are read with :class:`RestrictedUnpickler`,
which builds only the dicts, lists, strings, bytes, ints and numpy arrays CIFAR
contains, so a tampered file cannot run code.  Every problem is a :class:`DataError`
whose message names the file and says what to do:

- :class:`MissingDataError`  the data set is not in the cache folder (run ``sema-demo fetch …``);
- :class:`DataError`          a checksum mismatch, a truncated or tampered file, a failed download.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..device import pick_device

DATA_ENV = "SEMA_DEMO_DATA"
DATASETS = ("digits", "cifar10", "cifar100")
DATASET_NAMES = {"digits": "Digits (8×8, bundled)", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


class DataError(Exception):
    """A data file that cannot be used; the message names the file and what to do."""


class MissingDataError(DataError):
    """The data set has not been fetched into the cache folder yet."""


@dataclass(frozen=True)
class CifarSpec:
    """Where one CIFAR archive lives and how its extracted folder is laid out."""

    name: str                       # "cifar10" | "cifar100"
    url: str                        # the official "python version" archive
    md5: str                        # its published checksum
    folder: str                     # the folder inside the archive (torchvision uses the same)
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str                  # "labels" (CIFAR-10) or "fine_labels" (CIFAR-100)
    meta_file: str
    names_key: str                  # class names inside the meta file

    @property
    def archive(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def fetch_command(self) -> str:
        return f"sema-demo fetch {self.name}"


CIFAR = {
    "cifar10": CifarSpec(
        "cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels",
        "batches.meta", "label_names"),
    "cifar100": CifarSpec(
        "cifar100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python",
        ("train",), ("test",), "fine_labels", "meta", "fine_label_names"),
}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``root`` if given, else ``$SEMA_DEMO_DATA``, else ``~/.cache/sema_demo``."""
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "sema_demo").expanduser()


# ---------------------------------------------------------------------------- safe unpickling

# The only globals a CIFAR pickle refers to: numpy's array reconstruction, written by
# numpy 1.x as numpy.core and by numpy 2.x as numpy._core; both map to this numpy's own,
# behind guards (below).  A folder re-saved by Python 3 with protocol 2 also spells each
# bytes object as _codecs.encode(text, "latin1"), as PyTorch's weights-only unpickler allows.
_reconstruct = np.zeros(0).__reduce__()[0]
MAX_CLASSES = 1_000          # CIFAR-100 has 100; a meta file listing more is not CIFAR
MAX_CLASS_NAME = 100         # characters per class name


class _ArrayClass:
    """What the name numpy.ndarray unpickles to: only a marker for ``_reconstruct``'s first
    argument.  The real class is callable as ``ndarray(shape, dtype, buffer, offset, strides)``,
    and a huge shape over a 1-byte buffer with zero strides would make a file of a few bytes
    claim gigabytes."""


def _array_shell(cls, shape, dtype):
    """numpy's ``_reconstruct`` as numpy's own pickles call it: an EMPTY array of the class
    ndarray, which ``__setstate__`` then fills, checking that the bytes present match the
    declared shape (so nothing is allocated beyond what the file holds)."""
    if cls is not _ArrayClass or not isinstance(shape, tuple) or \
            not all(type(n) is int and n >= 0 for n in shape) or math.prod(shape) != 0:
        raise pickle.UnpicklingError("its array header is not one numpy writes (a non-empty or odd shape)")
    return _reconstruct(np.ndarray, shape, dtype)


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as Python 3 pickles use it for bytes (protocol 2): str → latin1 bytes only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise RefusedGlobal("it calls _codecs.encode with something other than a string in latin1")
    return text.encode("latin1")


_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _array_shell,
    ("numpy._core.multiarray", "_reconstruct"): _array_shell,
    ("numpy", "ndarray"): _ArrayClass,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a function or class that CIFAR files never contain."""


class RestrictedUnpickler(pickle.Unpickler):
    """Builds plain containers and numpy arrays only; any other global is refused.

    Plain pickles of dicts, lists, str, bytes and ints need no globals at all, so
    refusing every global except numpy's array reconstruction (guarded: an array holds
    exactly the bytes in the file) and latin1 ``_codecs.encode`` leaves nothing that
    could run code or allocate more than the file holds on load.
    """

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"it asks for the unexpected global {module[:60]}.{name[:60]}, which could run "
                                "code") from None


def _plain_keys(value):
    """Python 2 pickles give str keys, Python 3 ones bytes keys: use str everywhere."""
    if isinstance(value, dict):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in value.items()}
    return value


def load_pickle(path: Path, what_to_do: str) -> dict:
    """Read one CIFAR pickle safely; problems become a DataError naming the file."""
    try:
        with open(path, "rb") as f:
            # latin1 is how Python 2 str (the CIFAR files were written by Python 2) maps to bytes losslessly.
            obj = RestrictedUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise MissingDataError(f"{path} is missing. {what_to_do}") from None
    except RefusedGlobal as e:
        raise DataError(f"{path} was refused: {e}. It is not an official CIFAR file. {what_to_do}") from None
    except OSError as e:
        raise DataError(f"{path} could not be read ({e.strerror or e}). {what_to_do}") from None
    except Exception as e:      # noqa: BLE001 - whatever a malformed pickle raises, the file is damaged
        raise DataError(f"{path} is truncated or damaged ({type(e).__name__}: {str(e)[:200]}). "
                        f"{what_to_do}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} does not hold a CIFAR dictionary. {what_to_do}")
    return _plain_keys(obj)


# ---------------------------------------------------------------------------- the image sets

@dataclass
class ImageSet:
    """A whole image data set in memory, as uint8 images (N, H, W, C) and int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) as the networks see them."""
        _, h, w, c = self.x_train.shape
        return c, h, w


def cifar_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    return data_root(root) / CIFAR[name].folder


def is_available(name: str, root: str | os.PathLike | None = None) -> bool:
    """True when ``name`` can be loaded without a network (Digits always can)."""
    if name == "digits":
        return True
    return has_files(CIFAR[name], cifar_folder(name, root))


def has_files(spec: CifarSpec, folder: Path) -> bool:
    """True when ``folder`` holds every file of the extracted archive ``spec``."""
    return all((folder / f).is_file() for f in (*spec.train_files, *spec.test_files, spec.meta_file))


def _labels(y, n: int) -> np.ndarray | None:
    """The labels of a batch of ``n`` images as int64, or None unless they are ``n`` whole numbers
    in 0..MAX_CLASSES - 1 (a list, as in the official files, or an integer array)."""
    if isinstance(y, np.ndarray):
        if y.ndim != 1 or y.dtype.kind not in "iu":
            return None
        y = y.tolist()
    if not isinstance(y, list) or len(y) != n or not all(type(v) is int and 0 <= v < MAX_CLASSES for v in y):
        return None
    return np.asarray(y, dtype=np.int64)


def _batch(spec: CifarSpec, path: Path, what_to_do: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64) of one batch file, after checking its structure."""
    batch = load_pickle(path, what_to_do)
    data = batch.get("data")
    shaped = (type(data) is np.ndarray and data.dtype == np.uint8 and data.ndim == 2 and len(data) > 0
              and data.shape[1] == 3 * 32 * 32)
    labels = _labels(batch.get(spec.label_key), len(data)) if shaped else None
    if labels is None:
        found = (f"'data' {_describe(data)}, '{spec.label_key}' {_describe(batch.get(spec.label_key))}")
        raise DataError(f"{path} does not look like a {spec.name} batch (expected 'data': uint8 array of shape "
                        f"(N, 3072) with N >= 1, and N whole-number '{spec.label_key}'; found {found}). "
                        f"{what_to_do}")
    # CIFAR stores each image as 1024 red, then green, then blue bytes, row by row.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _describe(value) -> str:
    """'uint8 array (5, 3072)', 'list of 5', 'str': what a batch holds, for the error message."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array {value.shape}"
    if isinstance(value, list):
        kinds = sorted({type(v).__name__ for v in value[:1000]})
        return f"list of {len(value)} ({', '.join(kinds) or 'empty'})"
    return "missing" if value is None else type(value).__name__


def _read_batches(spec: CifarSpec, folder: Path, files: tuple[str, ...], what_to_do: str):
    batches = [_batch(spec, folder / file, what_to_do) for file in files]
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _class_names(spec: CifarSpec, path: Path, labels: np.ndarray, what_to_do: str) -> list[str]:
    """The class names of the meta file, checked against the labels."""
    names = load_pickle(path, what_to_do).get(spec.names_key)
    usable = (isinstance(names, list) and 2 <= len(names) <= MAX_CLASSES
              and all(isinstance(n, (str, bytes)) and 0 < len(n) <= MAX_CLASS_NAME for n in names))
    if not usable:
        raise DataError(f"{path} does not list the class names ('{spec.names_key}': 2 to {MAX_CLASSES} names of "
                        f"1 to {MAX_CLASS_NAME} characters; found {_describe(names)}). {what_to_do}")
    if labels.max() >= len(names):
        raise DataError(f"{path} names {len(names)} classes but the batches use label {labels.max()}. "
                        f"{what_to_do}")
    return [n.decode("utf-8", errors="replace") if isinstance(n, bytes) else n for n in names]


def load_cifar(name: str, root: str | os.PathLike | None = None) -> ImageSet:
    """All of CIFAR-10 or CIFAR-100 (fine labels) from the extracted folder in the cache."""
    if name not in CIFAR:
        raise ValueError(f"name must be one of {sorted(CIFAR)}, got {name!r}")
    spec = CIFAR[name]
    folder = cifar_folder(name, root)
    what_to_do = (f"Delete {folder} and run `{spec.fetch_command}` (needs internet once), "
                  f"or put the official extracted folder there.")
    if not is_available(name, root):
        raise MissingDataError(f"{DATASET_NAMES[name]} is not in {folder.parent} (no complete {spec.folder}/ "
                               f"there). Run `{spec.fetch_command}` once with internet, or set ${DATA_ENV} to "
                               f"a folder that has it.")
    x_train, y_train = _read_batches(spec, folder, spec.train_files, what_to_do)
    x_test, y_test = _read_batches(spec, folder, spec.test_files, what_to_do)
    classes = _class_names(spec, folder / spec.meta_file, np.concatenate([y_train, y_test]), what_to_do)
    return ImageSet(spec.name, x_train, y_train, x_test, y_test, classes)


def load_digits_set(test_fraction: float = 1 / 3) -> ImageSet:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images), split stratified with a fixed seed."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)[..., None]  # 0..16 → 0..255, one channel
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)  # fixed: the split is part of the data set, not of the experiment
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: round(test_fraction * (labels == c).sum())]
                           for c in range(10)])
    is_test = np.zeros(len(labels), bool)
    is_test[test] = True
    return ImageSet("digits", images[~is_test], labels[~is_test], images[is_test], labels[is_test],
                    [str(d) for d in range(10)])


def load_images(name: str, root: str | os.PathLike | None = None) -> ImageSet:
    """The whole data set ``name`` (one of DATASETS) in memory."""
    if name == "digits":
        return load_digits_set()
    if name not in CIFAR:
        raise ValueError(f"data set must be one of {', '.join(DATASETS)}, got {name!r}")
    return load_cifar(name, root)


# ---------------------------------------------------------------------------- subsets → tensors

def stratified_indices(labels: np.ndarray, per_class: list[int] | np.ndarray, seed: int) -> np.ndarray:
    """Indices of ``per_class[c]`` randomly chosen examples of each class c (all of them if fewer)."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in enumerate(per_class)]
    return np.sort(np.concatenate(chosen))


def spread(total: int, n_classes: int) -> np.ndarray:
    """``total`` split over the classes as evenly as possible (the first classes get the remainder)."""
    counts = np.full(n_classes, total // n_classes)
    counts[: total % n_classes] += 1
    return counts


def subset_indices(images: ImageSet, per_class: int, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of the seeded stratified subset that ``make_data`` uses."""
    k = images.n_classes
    return (stratified_indices(images.y_train, np.full(k, per_class), seed),
            stratified_indices(images.y_test, spread(test_size, k), seed))


@dataclass
class Augment:
    """Random crop with zero padding and (optionally) a horizontal flip, on a batch of tensors.

    Called as ``augment(batch, generator)`` by the training engine, which passes the same
    generator state to every method of one seed: every method sees the same draws.
    """

    pad: int = 4
    flip: bool = True

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = batch.shape
        p = self.pad
        if p > 0:
            shifts = torch.randint(0, 2 * p + 1, (2, n), generator=generator, device=generator.device)
            shifts = shifts.to(batch.device)
            padded = torch.nn.functional.pad(batch, (p, p, p, p))
            rows = (shifts[0, :, None] + torch.arange(h, device=batch.device))[:, None, :, None]
            cols = (shifts[1, :, None] + torch.arange(w, device=batch.device))[:, None, None, :]
            # One gather per axis: every image gets its own window of the padded batch.
            batch = padded.gather(2, rows.expand(n, batch.shape[1], h, w + 2 * p))
            batch = batch.gather(3, cols.expand(n, batch.shape[1], h, w))
        if self.flip:
            flip = torch.rand(n, generator=generator, device=generator.device).to(batch.device) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        return batch


def to_tensor(images: np.ndarray, mean: torch.Tensor, std: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, C) → normalised float32 (N, C, H, W) on ``device``."""
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255)
    return ((x - mean.to(device)) / std.to(device)).contiguous()


def make_data(images: ImageSet, per_class: int, test_size: int, seed: int = 0, device: str = "auto",
              augment: bool = True):
    """A seeded, stratified subset as a ``training.Data`` with the whole subset on ``device``.

    Args:
        per_class: training images per class.
        test_size: test images in all, spread evenly over the classes.
        seed: which images are drawn (the same seed gives the same subset).
        augment: random crop (+ flip for natural images) on every training batch.
    """
    from ..training import Data

    if per_class < 1 or test_size < images.n_classes:
        raise ValueError(f"need at least 1 training image per class and {images.n_classes} test images "
                         f"(one per class); got per_class={per_class}, test_size={test_size}")
    train, test = subset_indices(images, per_class, test_size, seed)
    x_train = images.x_train[train]
    # Per-channel statistics of the training subset: works the same for CIFAR and Digits.
    pixels = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64) / 255
    mean, std = torch.tensor(pixels.mean(0), dtype=torch.float32), torch.tensor(pixels.std(0) + 1e-6,
                                                                              dtype=torch.float32)
    dev = pick_device(device)
    shape = (1, -1, 1, 1)
    small = images.x_train.shape[1] < 16
    return Data(
        x_train=to_tensor(x_train, mean.view(shape), std.view(shape), dev),
        y_train=torch.from_numpy(images.y_train[train]).to(dev),
        x_test=to_tensor(images.x_test[test], mean.view(shape), std.view(shape), dev),
        y_test=torch.from_numpy(images.y_test[test]).to(dev),
        n_classes=images.n_classes,
        name=images.name,
        # Digits are tiny and not mirror-symmetric: a 1-pixel shift, no flip.
        augment=(Augment(pad=1, flip=False) if small else Augment()) if augment else None,
    )


# ---------------------------------------------------------------------------- download

Progress = Callable[[int, int], None]   # (bytes done, bytes in all or 0 when unknown)
CHUNK = 1 << 20


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, progress: Progress | None = None, timeout: float = 60) -> Path:
    """Stream ``url`` into ``dest`` (via a .part file, so an interrupted download never looks complete)."""
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while block := response.read(CHUNK):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
        if total and done != total:
            raise DataError(f"download of {url} stopped after {done:,} of {total:,} bytes; run the fetch again.")
        part.replace(dest)
    except urllib.error.URLError as e:
        _discard(part)
        raise DataError(f"could not download {url} ({e}). Check the internet connection, or download it "
                        f"by hand and put it at {dest}.") from None
    except OSError as e:
        _discard(part)
        raise DataError(f"could not save the download of {url} as {dest} ({e.strerror or e}); nothing was "
                        "kept.") from None
    except BaseException:
        _discard(part)
        raise
    return dest


def _discard(path: Path) -> None:
    """Remove a partial download; never let the clean-up hide the error being reported."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _check_download_place(spec: CifarSpec, root: Path, archive: Path) -> None:
    """Before a 170 MB download: the data folder is (or can become) a writable folder, and the
    archive's and the partial download's names are free or hold files.  Creates the data folder."""
    where = f"Set ${DATA_ENV} (or --data-dir) to a folder you can write to."
    if root.exists() and not root.is_dir():
        raise DataError(f"the data folder {root} is a file, not a folder. {where}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        raise DataError(f"cannot write to the data folder {root} ({e.strerror or e}). {where}") from None
    for path in (archive, archive.with_name(archive.name + ".part")):
        if path.exists() and not path.is_file():
            raise DataError(f"{path} is a folder, where the downloaded archive should go. Move or delete it "
                            f"and run `{spec.fetch_command}` again.")


def fetch(spec: CifarSpec | str, root: str | os.PathLike | None = None, progress: Progress | None = None) -> Path:
    """Download (if needed), verify and extract one CIFAR archive; returns the extracted folder.

    Only this function touches the network.  An existing extracted folder is used as is;
    an archive already in the cache is verified and reused.
    """
    spec = CIFAR[spec] if isinstance(spec, str) else spec
    root = data_root(root)
    folder = root / spec.folder
    if has_files(spec, folder):
        return folder
    archive = root / spec.archive
    _check_download_place(spec, root, archive)
    if not archive.is_file():
        download(spec.url, archive, progress)
    found = md5sum(archive)
    if found != spec.md5:
        raise DataError(f"{archive} has MD5 {found}, expected {spec.md5}: the file is incomplete or not the "
                        f"official archive. Delete it and run `{spec.fetch_command}` again.")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.split("/")[0] == spec.folder]
            tar.extractall(root, members=members, filter="data")  # "data": no links or paths outside root
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise DataError(f"{archive} could not be extracted ({e}). Delete it and run "
                        f"`{spec.fetch_command}` again.") from None
    if not has_files(spec, folder):
        raise DataError(f"{archive} did not contain the expected files in {spec.folder}/. Delete it and run "
                        f"`{spec.fetch_command}` again.")
    return folder
