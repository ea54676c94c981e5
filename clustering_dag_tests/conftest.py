"""Shared fixtures: the real datasets, an isolated cache and small generated IDX files."""

import os
from pathlib import Path

import numpy as np
import pytest

from clustering_dag.core.idx import write_idx
from clustering_dag.settings import PROJECT_ROOT


def _shared_data_dir() -> Path | None:
    for candidate in (os.environ.get("CLUSTERING_DAG_DATA_DIR"), PROJECT_ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with mnist/ and fashion-mnist/ (CLUSTERING_DAG_DATA_DIR or ../shared/data)."""
    found = _shared_data_dir()
    if found is None:
        pytest.skip("real datasets not found: set CLUSTERING_DAG_DATA_DIR to a folder with mnist/")
    return found


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh asset cache for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("CLUSTERING_DAG_CACHE_DIR", str(path))
    return path


@pytest.fixture
def env_data_dir(data_dir, monkeypatch) -> Path:
    monkeypatch.setenv("CLUSTERING_DAG_DATA_DIR", str(data_dir))
    return data_dir


def write_fake_dataset(folder: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict:
    """Four small, valid IDX files in ``folder``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(folder / name, arr)
    return arrays


def initialized_dagster_home(folder: Path) -> Path:
    """A DAGSTER_HOME whose SQLite storage exists already: processes started together against a
    fresh one would race to create the same tables."""
    from dagster import DagsterInstance

    folder.mkdir(parents=True, exist_ok=True)
    with DagsterInstance.from_config(str(folder)) as instance:
        instance.get_runs(limit=1)
    return folder
