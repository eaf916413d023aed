"""Shared fixtures: locating the real MovieLens files and tiny synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from privrec.data.synthetic import make_synthetic

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("PRIVREC_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    return shared_data_dir()


def _need(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set PRIVREC_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def ml100k_dir(data_root) -> Path:
    return _need(data_root / "ml-100k")


@pytest.fixture(scope="session")
def ml1m_dir(data_root) -> Path:
    return _need(data_root / "ml-1m")


@pytest.fixture(scope="session")
def ml1m(ml1m_dir):
    import warnings

    from privrec.data.movielens import load_ml1m

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_ml1m(ml1m_dir)


@pytest.fixture(scope="session")
def tiny():
    """600 users × 150 items with a strongly planted binary attribute."""
    return make_synthetic(n_users=600, n_items=150, density=0.08, strength=0.6, seed=1)


@pytest.fixture(scope="session", autouse=True)
def _share_the_cores_between_test_workers():
    """Under pytest-xdist each worker gets its share of the cores as torch's intra-op threads:
    with two workers on two cores, torch's default (one thread per core in every worker) runs
    four busy threads on two cores, which slows torch's parallel loops down severely."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    yield
    torch.set_num_threads(before)
