"""Fixtures for the comparison tests: small IDX folders of real (upscaled) digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def digits_28(count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` of scikit-learn's 8x8 digits blown up to 28x28 uint8 (3x3 blocks, 2-pixel border)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[:count] / 16.0  # (N, 8, 8) in [0, 1]
    big = np.kron(images, np.ones((3, 3)))  # (N, 24, 24)
    big = np.pad(big, ((0, 0), (2, 2), (2, 2)))  # (N, 28, 28)
    return (big * 255).round().astype(np.uint8), bunch.target[:count].astype(np.uint8)


@pytest.fixture(scope="session")
def idx_folder(tmp_path_factory) -> Path:
    """A folder holding only a t10k-* pair of 300 digits (split 240 / 60 by the loader)."""
    from attnlab.data.images import write_idx

    folder = tmp_path_factory.mktemp("idx") / "digits28"
    folder.mkdir()
    images, labels = digits_28(300)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    return folder
