"""Shared fixtures: the real datasets, an isolated cache and small generated IDX files."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from clustering_dag import settings
from clustering_dag.core.idx import write_idx
from clustering_dag.settings import PROJECT_ROOT


def _shared_data_dir() -> Path | None:
    for candidate in (settings.data_dir(), PROJECT_ROOT.parent / "shared" / "data"):
        if candidate and (candidate / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return candidate.resolve()
    return None


def pytest_configure(config):
    """A relative ``CLUSTERING_DAG_DATA_DIR`` (as in the README's test command) made absolute once,
    here: the workers and subprocesses the tests start run in other folders and inherit it."""
    if settings.data_dir() is not None:
        os.environ["CLUSTERING_DAG_DATA_DIR"] = str(settings.data_dir())


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


def brief_small_profile(folder: Path) -> Path:
    """The small profile's batches with a tenth of its epochs, as a run-config file in ``folder``:
    for the tests that check what a run on a user's table makes (every asset, no label read), not
    how far training gets."""
    from clustering_dag.profiles import small

    config = small()
    for op in config["ops"].values():
        op["config"]["epochs"] //= 10
    path = folder / "brief_small.yaml"
    path.write_text(json.dumps(config))  # YAML reads JSON
    return path


def initialized_dagster_home(folder: Path) -> Path:
    """A DAGSTER_HOME whose SQLite storage exists already: processes started together against a
    fresh one would race to create the same tables."""
    from dagster import DagsterInstance

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").touch()  # the default SQLite storage, stated
    with DagsterInstance.from_config(str(folder)) as instance:
        instance.get_runs(limit=1)
    return folder


# --- one cold run of the whole graph, shared -------------------------------------------------------


@dataclass
class GraphRun:
    """The quick profile's whole graph materialized once for ``mnist``: the run's result, the asset
    cache and a Dagster home whose instance recorded the run."""

    result: object
    cache: Path
    home: Path

    def copy_to(self, folder: Path, monkeypatch) -> GraphRun:
        """A private copy (cache and instance) for a test that changes things; the environment
        points at it for the rest of the test."""
        shutil.copytree(self.cache, folder / "cache")
        shutil.copytree(self.home, folder / "home")
        monkeypatch.setenv("CLUSTERING_DAG_CACHE_DIR", str(folder / "cache"))
        monkeypatch.setenv("DAGSTER_HOME", str(folder / "home"))
        return GraphRun(self.result, folder / "cache", folder / "home")


@pytest.fixture(scope="session")
def quick_graph(data_dir, tmp_path_factory) -> GraphRun:
    """The cold run that the pipeline, incremental, staleness, executor and UI tests share."""
    from dagster import DagsterInstance, materialize

    from clustering_dag.definitions import all_assets, resources
    from clustering_dag.profiles import quick

    root = tmp_path_factory.mktemp("quick_graph")
    home = initialized_dagster_home(root / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLUSTERING_DAG_DATA_DIR", str(data_dir))
        mp.setenv("CLUSTERING_DAG_CACHE_DIR", str(root / "cache"))
        with DagsterInstance.from_config(str(home)) as instance:
            result = materialize(all_assets, partition_key="mnist", run_config=quick(), resources=resources,
                                 instance=instance)
    assert result.success
    return GraphRun(result, root / "cache", home)


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server on 127.0.0.1 for the session (Debian's postgresql; skipped without it)."""
    from clustering_dag_tests.services import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def graph_copy(quick_graph, data_dir, tmp_path, monkeypatch) -> GraphRun:
    monkeypatch.setenv("CLUSTERING_DAG_DATA_DIR", str(data_dir))
    return quick_graph.copy_to(tmp_path, monkeypatch)
