"""Shared pytest fixtures.

`shared_data` points at ../shared/data (real data sets for tests and benchmarks).
Users do not have it: tests that need it skip with a reason, except under CI
(CI=true), where a missing folder is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ATTNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _shared_data_or_skip() -> Path:
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"shared data folder {SHARED_DATA} is absent (set ATTNLAB_SHARED_DATA to point at it)"
    if IN_CI:
        pytest.fail(message + "; under CI it must exist")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips (or fails under CI) when absent."""
    return _shared_data_or_skip()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread per test process: tiny models run faster without thread
    hand-offs, and parallel test workers do not oversubscribe the cores."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # NumPy's BLAS too (the NumPy engine)
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's downloads and caches out of the user's ~/.cache."""
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path_factory.getbasetemp() / "attnlab-cache"))
    # a developer's installed pre-trained models (`attnlab room install`) are never picked up
    monkeypatch.setenv("ATTNLAB_MODELS", str(tmp_path_factory.getbasetemp() / "attnlab-models"))
    monkeypatch.delenv("ATTNLAB_TRAIN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
