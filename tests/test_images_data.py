"""Image data: CIFAR loading from fabricated official-format files, fetch, safety, subsets, Digits."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import tracemalloc
import urllib.request

import numpy as np
import pytest
import torch

from fake_cifar import class_images, py2_pickle, write_cifar_archive, write_cifar_folder
from sema_demo.datasets import images as im
from sema_demo.models import small_cnn
from sema_demo.training import Trainer, TrainConfig


@pytest.mark.parametrize("name, n_classes", [("cifar10", 10), ("cifar100", 100)])
def test_loads_extracted_folder_in_official_format(tmp_path, name, n_classes):
    write_cifar_folder(tmp_path, name, train_per_class=3, test_per_class=2)
    assert im.is_available(name, tmp_path)
    images = im.load_images(name, tmp_path)
    assert images.x_train.shape == (3 * n_classes, 32, 32, 3) and images.x_train.dtype == np.uint8
    assert images.x_test.shape == (2 * n_classes, 32, 32, 3)
    assert np.bincount(images.y_train).tolist() == [3] * n_classes
    assert images.n_classes == n_classes and images.image_shape == (3, 32, 32)
    assert images.classes[1] == ("automobile" if name == "cifar10" else "class1")


def test_cifar_rows_become_height_width_channel_images(tmp_path):
    # A row is 1024 red, 1024 green, 1024 blue bytes, each row-major: check one pixel of each channel.
    folder = write_cifar_folder(tmp_path, "cifar10")
    batch = pickle.loads((folder / "test_batch").read_bytes(), encoding="bytes")
    row = batch[b"data"][0]
    images = im.load_cifar("cifar10", tmp_path)
    y, x = 5, 7
    assert images.x_test[0, y, x].tolist() == [row[c * 1024 + y * 32 + x] for c in range(3)]
    assert images.y_test[0] == batch[b"labels"][0]


def test_cifar100_uses_fine_labels(tmp_path):
    write_cifar_folder(tmp_path, "cifar100", train_per_class=1, test_per_class=1)
    train = pickle.loads((tmp_path / "cifar-100-python" / "train").read_bytes(), encoding="bytes")
    images = im.load_cifar("cifar100", tmp_path)
    assert images.y_train.tolist() == train[b"fine_labels"]
    assert max(train[b"coarse_labels"]) == 19 and images.y_train.max() == 99


def test_fetch_downloads_verifies_and_extracts(tmp_path):
    source = write_cifar_archive(tmp_path / "served.tar.gz", "cifar10")
    spec = dataclasses.replace(im.CIFAR["cifar10"], url=source.as_uri(),
                               md5=hashlib.md5(source.read_bytes()).hexdigest())
    seen = []
    cache = tmp_path / "cache"
    folder = im.fetch(spec, cache, progress=lambda done, total: seen.append((done, total)))
    assert folder == cache / "cifar-10-batches-py"
    assert (cache / "served.tar.gz").is_file() and not list(cache.glob("*.part"))
    assert seen[-1] == (source.stat().st_size, source.stat().st_size)
    assert im.load_cifar("cifar10", cache).x_train.shape == (30, 32, 32, 3)
    # A second fetch finds the folder and does not download again.
    assert im.fetch(dataclasses.replace(spec, url="file:///nonexistent"), cache) == folder


def test_fetch_rejects_an_archive_with_the_wrong_md5(tmp_path):
    source = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", "cifar10")
    spec = dataclasses.replace(im.CIFAR["cifar10"], url=source.as_uri())  # the official MD5
    with pytest.raises(im.DataError, match=r"has MD5 [0-9a-f]{32}, expected c58f3010.*sema-demo fetch cifar10"):
        im.fetch(spec, tmp_path / "cache")
    assert not (tmp_path / "cache" / "cifar-10-batches-py").exists()


def test_truncated_archive_in_the_cache_is_refused_by_its_checksum(tmp_path):
    source = write_cifar_archive(tmp_path / "whole.tar.gz", "cifar100")
    blob = source.read_bytes()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cifar-100-python.tar.gz").write_bytes(blob[: len(blob) // 2])
    spec = dataclasses.replace(im.CIFAR["cifar100"], md5=hashlib.md5(blob).hexdigest())
    with pytest.raises(im.DataError, match=r"cifar-100-python.tar.gz has MD5.*incomplete.*Delete it"):
        im.fetch(spec, cache)


def test_interrupted_download_leaves_no_file_and_says_so(tmp_path, monkeypatch):
    class ShortResponse(io.BytesIO):
        headers = {"Content-Length": "1000"}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: ShortResponse(b"x" * 400))
    with pytest.raises(im.DataError, match="stopped after 400 of 1,000 bytes"):
        im.download("https://example.invalid/cifar.tar.gz", tmp_path / "cifar.tar.gz")
    assert list(tmp_path.iterdir()) == []


def test_unreachable_download_gives_a_clear_error(tmp_path):
    with pytest.raises(im.DataError, match="could not download .*by hand"):
        im.download((tmp_path / "absent.tar.gz").as_uri(), tmp_path / "out.tar.gz")


def test_truncated_batch_file_names_the_file(tmp_path):
    folder = write_cifar_folder(tmp_path, "cifar10")
    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(im.DataError, match=r"data_batch_3 is truncated or damaged.*sema-demo fetch cifar10"):
        im.load_cifar("cifar10", tmp_path)


def test_batch_with_wrong_shape_is_refused(tmp_path):
    folder = write_cifar_folder(tmp_path, "cifar10")
    labels = np.zeros(4, np.int64)
    (folder / "test_batch").write_bytes(py2_pickle({b"labels": labels.tolist(),
                                                    b"data": class_images(labels, np.random.default_rng(0))[:, :100]}))
    with pytest.raises(im.DataError, match="test_batch does not look like a cifar10 batch"):
        im.load_cifar("cifar10", tmp_path)


class Evil:
    def __reduce__(self):
        import os
        return os.system, ("echo pwned > marker.txt",)


def test_pickle_with_an_unexpected_global_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_cifar_folder(tmp_path, "cifar10")
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": Evil()}, protocol=2))
    with pytest.raises(im.DataError, match=r"batches.meta was refused: .*unexpected global posix.system"):
        im.load_cifar("cifar10", tmp_path)
    assert not (tmp_path / "marker.txt").exists()


def test_restricted_unpickler_still_reads_plain_python3_pickles(tmp_path):
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps({b"data": np.arange(6, dtype=np.uint8), "n": 3, b"names": [b"a", "b"]}))
    loaded = im.load_pickle(path, "")
    assert loaded["data"].tolist() == list(range(6)) and loaded["n"] == 3 and loaded["names"] == [b"a", "b"]


def test_missing_cifar_says_which_command_fetches_it(tmp_path):
    assert not im.is_available("cifar100", tmp_path)
    with pytest.raises(im.MissingDataError, match="Run `sema-demo fetch cifar100`"):
        im.load_images("cifar100", tmp_path)


def test_data_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(im.DATA_ENV, str(tmp_path))
    assert im.data_root() == tmp_path
    monkeypatch.delenv(im.DATA_ENV)
    assert im.data_root().parts[-2:] == (".cache", "sema_demo")


def test_stratified_subset_counts_and_seeding(tmp_path):
    write_cifar_folder(tmp_path, "cifar10", train_per_class=6, test_per_class=4)
    images = im.load_cifar("cifar10", tmp_path)
    train, test = im.subset_indices(images, per_class=4, test_size=23, seed=1)
    assert np.bincount(images.y_train[train], minlength=10).tolist() == [4] * 10
    assert np.bincount(images.y_test[test], minlength=10).tolist() == [3, 3, 3] + [2] * 7
    again = im.subset_indices(images, per_class=4, test_size=23, seed=1)
    other = im.subset_indices(images, per_class=4, test_size=23, seed=2)
    assert np.array_equal(train, again[0]) and not np.array_equal(train, other[0])


def test_digits_are_bundled_and_split_without_overlap():
    digits = im.load_images("digits")
    assert im.is_available("digits")
    assert digits.x_train.shape[1:] == (8, 8, 1) and digits.n_classes == 10
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert abs(len(digits.x_test) / 1797 - 1 / 3) < 0.01
    assert digits.x_train.max() == 255 and digits.x_train.dtype == np.uint8


def test_make_data_puts_a_normalised_subset_on_the_device():
    data = im.make_data(im.load_images("digits"), per_class=20, test_size=50, seed=0, device="cpu")
    assert data.x_train.shape == (200, 1, 8, 8) and data.x_test.shape == (50, 1, 8, 8)
    assert data.n_classes == 10 and data.name == "digits"
    assert abs(float(data.x_train.mean())) < 1e-4 and abs(float(data.x_train.std()) - 1) < 0.01
    with pytest.raises(ValueError, match="at least 1 training image per class"):
        im.make_data(im.load_images("digits"), per_class=0, test_size=50)


def test_augment_crops_and_flips_reproducibly():
    batch = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    augment = im.Augment(pad=2, flip=True)
    a = augment(batch, torch.Generator().manual_seed(0))
    b = augment(batch, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == batch.shape
    # Every output image is a (possibly mirrored) window of the zero-padded input.
    padded = torch.nn.functional.pad(batch, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, r:r + 5, c:c + 5] for r in range(5) for c in range(5)]
        assert any(torch.equal(a[i], w) or torch.equal(a[i], w.flip(2)) for w in windows)
    flipped = im.Augment(pad=0, flip=True)(batch, torch.Generator().manual_seed(3))
    assert all(torch.equal(f, x) or torch.equal(f, x.flip(2)) for f, x in zip(flipped, batch))


def test_two_epoch_engine_run_on_a_tiny_cifar_subset(tmp_path):
    write_cifar_folder(tmp_path, "cifar10", train_per_class=8, test_per_class=3)
    data = im.make_data(im.load_cifar("cifar10", tmp_path), per_class=8, test_size=30, seed=0, device="cpu")
    config = TrainConfig(methods=("sgd", "sema"), seeds=(0,), epochs=2, batch_size=16, lr=0.05,
                         ema_momentum=0.9, device="cpu")
    history = Trainer(data, lambda: small_cnn(3, 10, width=8), config).run()
    assert set(history["method"]) == {"sgd", "sema"} and sorted(set(history["epoch"])) == [1, 2]
    assert history["test_acc"].between(0, 1).all() and np.isfinite(history["train_loss"]).all()


# ------------------------------------------------------------------- bad contents, memory, Python 3 files

def _batch_blob(data, labels, key=b"labels") -> bytes:
    return py2_pickle({b"batch_label": b"x", key: labels, b"data": data})


GOOD = class_images(np.arange(4) % 10, np.random.default_rng(0))


@pytest.mark.parametrize("data, labels, found", [
    (GOOD, [b"cat", b"dog", b"cat", b"dog"], "'labels' list of 4 (str)"),
    (GOOD, [2**70, 1, 2, 3], "'labels' list of 4 (int)"),
    (GOOD, [None, 1, 2, 3], "'labels' list of 4 (NoneType, int)"),
    (GOOD, [True, False, True, False], "'labels' list of 4 (bool)"),
    (GOOD[:0], [], "'data' uint8 array (0, 3072)"),
    (GOOD.astype(object), [0, 1, 2, 3], "'data' object array (4, 3072)"),
    (GOOD.astype(np.float32), [0, 1, 2, 3], "'data' float32 array (4, 3072)"),
    (GOOD.reshape(4, 3, 1024), [0, 1, 2, 3], "'data' uint8 array (4, 3, 1024)"),
    (GOOD, [0, 1, 2], "'labels' list of 3 (int)"),
    (b"not an array", [0, 1, 2, 3], "'data' str"),
], ids=["word-labels", "huge-label", "none-label", "bool-labels", "empty", "object-array", "float-data",
        "3d-data", "label-count", "bytes-data"])
def test_a_batch_with_bad_contents_is_refused_naming_the_file(tmp_path, data, labels, found):
    folder = write_cifar_folder(tmp_path, "cifar10")
    (folder / "data_batch_2").write_bytes(_batch_blob(data, labels))
    with pytest.raises(im.DataError) as refused:
        im.load_cifar("cifar10", tmp_path)
    message = str(refused.value)
    assert f"{folder / 'data_batch_2'} does not look like a cifar10 batch" in message and found in message
    assert "sema-demo fetch cifar10" in message


@pytest.mark.parametrize("names, message", [
    ([b"only-one"], "does not list the class names"),
    ([1, 2, 3], "does not list the class names"),
    ("airplane", "does not list the class names"),
    ([b"x" * 101] * 10, "does not list the class names"),
    ([b"a", b"b"], "names 2 classes but the batches use label 9"),
])
def test_a_meta_file_with_bad_class_names_is_refused_naming_the_file(tmp_path, names, message):
    folder = write_cifar_folder(tmp_path, "cifar10")
    (folder / "batches.meta").write_bytes(py2_pickle({b"label_names": names}))
    with pytest.raises(im.DataError, match=f"batches.meta {message}"):
        im.load_cifar("cifar10", tmp_path)


HUGE = (100_000, 3072)      # a batch shape that passes every check: 300 MB once copied


class HugeView:
    """numpy.ndarray called directly: 300 MB declared over a 1-byte buffer with zero strides."""
    def __reduce__(self):
        return np.ndarray, (HUGE, "u1", b"x", 0, (0, 0))


class HugeShell:
    """numpy's _reconstruct asked for a 300 MB array instead of the empty one numpy writes."""
    def __reduce__(self):
        return np.zeros(0).__reduce__()[0], (np.ndarray, HUGE, b"b")


class ShortBuffer:
    """An array whose state declares 300 MB but carries one byte."""
    def __reduce__(self):
        rebuild, args, _ = np.zeros(0, np.uint8).__reduce__()
        return rebuild, args, (1, HUGE, np.dtype(np.uint8), False, b"x")


@pytest.mark.parametrize("crafted", [HugeView, HugeShell, ShortBuffer])
def test_an_array_larger_than_its_file_is_refused_before_anything_is_allocated(tmp_path, crafted):
    folder = write_cifar_folder(tmp_path, "cifar10")
    # Protocol 4 keeps b"x" bytes (the numpy buffer) without _codecs; Python 2 str would load as text.
    blob = pickle.dumps({b"data": crafted(), b"labels": [0] * HUGE[0]}, protocol=4)
    assert len(blob) < 2**20
    (folder / "data_batch_1").write_bytes(blob)
    tracemalloc.start()                       # numpy reports its data buffers to tracemalloc
    try:
        with pytest.raises(im.DataError, match="data_batch_1 (was refused|is truncated or damaged)"):
            im.load_cifar("cifar10", tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB allocated for a {len(blob)}-byte file"


def test_a_python3_protocol2_cifar_folder_loads_like_the_official_one(tmp_path):
    """Re-saved by Python 3 with pickle protocol 2, every bytes object goes through _codecs.encode."""
    official = im.load_cifar("cifar10", write_cifar_folder(tmp_path / "py2", "cifar10").parent)
    folder = write_cifar_folder(tmp_path / "py3", "cifar10")
    for path in folder.iterdir():
        obj = pickle.loads(path.read_bytes(), encoding="bytes")   # our own test files: trusted
        path.write_bytes(pickle.dumps(obj, protocol=2))
        assert b"_codecs\nencode" in path.read_bytes()
    resaved = im.load_cifar("cifar10", folder.parent)
    assert resaved.classes == official.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                   "horse", "ship", "truck"]
    assert np.array_equal(resaved.x_train, official.x_train) and np.array_equal(resaved.y_test, official.y_test)


class OtherCodec:
    def __reduce__(self):
        import _codecs
        return _codecs.encode, ("x", "rot13")


class Decode:
    def __reduce__(self):
        import _codecs
        return _codecs.decode, (b"x", "latin1")


@pytest.mark.parametrize("crafted, message", [
    (OtherCodec, "was refused: it calls _codecs.encode with something other than a string in latin1"),
    (Decode, "was refused: it asks for the unexpected global _codecs.decode"),
])
def test_codecs_encode_is_the_only_new_global_and_only_for_latin1_text(tmp_path, crafted, message):
    folder = write_cifar_folder(tmp_path, "cifar10")
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": crafted()}, protocol=2))
    with pytest.raises(im.DataError, match=f"batches.meta {message}"):
        im.load_cifar("cifar10", tmp_path)
