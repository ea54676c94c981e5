"""Shared fixtures: the real datasets, an isolated cache and small generated IDX files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
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


def download_datasets(raw: Path, mirror_root: str | None = None,
                      specs: dict | None = None) -> tuple[Path | None, str]:
    """The paper's datasets (``specs``, by default ``DATASETS``) fetched as the run command fetches
    them, checksum-verified into ``raw`` (the project's raw-data cache; files already there and
    intact are kept), from ``mirror_root/<folder>/`` or each dataset's own mirrors. Returns the
    folder, or None and why."""
    from clustering_dag.core.datasets import DATASETS, download
    from clustering_dag.core.errors import DataError

    try:
        for spec in (specs or DATASETS).values():
            download(spec, raw / spec.folder, (f"{mirror_root}/{spec.folder}/",) if mirror_root else None)
    except DataError as exc:
        return None, str(exc)
    return raw, ""


def pytest_configure(config):
    """A relative ``CLUSTERING_DAG_DATA_DIR`` (as in the README's test command) made absolute once,
    here: the workers and subprocesses the tests start run in other folders and inherit it."""
    if settings.data_dir() is not None:
        os.environ["CLUSTERING_DAG_DATA_DIR"] = str(settings.data_dir())
    _hold_to_own_cores()


def _hold_to_own_cores() -> None:
    """A pytest-xdist worker runs on its share of the cores (``-n 2`` on two cores: one each), so
    that TensorFlow's threads, the UMAP workers and the processes a test starts (which inherit it)
    do not crowd the other worker's; the project sizes its thread pools from this affinity."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not (worker and count and hasattr(os, "sched_setaffinity")):
        return
    cpus, index, count = sorted(os.sched_getaffinity(0)), int(worker.removeprefix("gw")), int(count)
    if count <= len(cpus):
        os.sched_setaffinity(0, cpus[index * len(cpus) // count:(index + 1) * len(cpus) // count])


TIERS = ("services", "browser", "quality")


# Tests that share a session's costly fixture run in one pytest-xdist worker (`--dist loadgroup`),
# which builds it once; the other workers take the rest.
SHARED = {"shared_graph": "shared_graph", "graph_copy": "shared_graph", "quick_graph": "quick_graph",
          "user_graphs": "user_graphs"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A test of another tier is slow too, so that `-m "not slow"` leaves it out; a test on a
    shared fixture joins that fixture's xdist group."""
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(pytest.mark.slow)
        groups = {SHARED[name] for name in item.fixturenames if name in SHARED}
        if groups:
            item.add_marker(pytest.mark.xdist_group(min(groups)))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with mnist/ and fashion-mnist/: CLUSTERING_DAG_DATA_DIR or ../shared/data, else
    the files downloaded into the project's raw-data cache, as the run command does."""
    found = _shared_data_dir()
    if found is None:
        from clustering_dag.defs.resources import DatasetSource

        found, why = download_datasets(DatasetSource().raw_cache())
        if found is None:
            pytest.skip(f"real datasets not found and not downloaded: {why}\nFix: set "
                        "CLUSTERING_DAG_DATA_DIR to a folder with mnist/ and fashion-mnist/")
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

# The profile of the graph the tests share: every asset, in about a minute (the quality tier's
# `quick_graph` runs the quick profile, whose numbers mean something).
GRAPH_PROFILE = "smoke"


def graph_config() -> dict:
    """The run config of the shared graph (``GRAPH_PROFILE``)."""
    from clustering_dag.profiles import PROFILES

    return PROFILES[GRAPH_PROFILE]()


def link_tree(source: Path, target: Path) -> None:
    """A copy of ``source`` whose files are hard links: free, and safe because the cache replaces
    a file by an atomic rename, never by writing into it (a test that damages a file in place
    must unlink it first)."""
    shutil.copytree(source, target, copy_function=os.link)


@dataclass
class GraphRun:
    """A profile's whole graph materialized once for ``mnist``: the run's result, the asset cache
    and a Dagster home whose instance recorded the run."""

    result: object
    cache: Path
    home: Path
    profile: str
    stderr: str = ""  # what the process wrote to its standard error while the run went (C++ too)

    def copy_to(self, folder: Path, monkeypatch) -> GraphRun:
        """A private copy (cache and instance) for a test that changes things; the environment
        points at it for the rest of the test."""
        link_tree(self.cache, folder / "cache")
        shutil.copytree(self.home, folder / "home")  # SQLite writes into its files: a real copy
        monkeypatch.setenv("CLUSTERING_DAG_CACHE_DIR", str(folder / "cache"))
        monkeypatch.setenv("DAGSTER_HOME", str(folder / "home"))
        return GraphRun(self.result, folder / "cache", folder / "home", self.profile)


def _graph_run(profile: str, data_dir: Path, root: Path) -> GraphRun:
    from dagster import DagsterInstance, materialize

    from clustering_dag.definitions import all_assets, resources
    from clustering_dag.profiles import PROFILES

    home = initialized_dagster_home(root / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLUSTERING_DAG_DATA_DIR", str(data_dir))
        mp.setenv("CLUSTERING_DAG_CACHE_DIR", str(root / "cache"))
        with DagsterInstance.from_config(str(home)) as instance, stderr_of_process(root / "stderr") as seen:
            result = materialize(all_assets, partition_key="mnist", run_config=PROFILES[profile](),
                                 resources=resources, instance=instance)
    assert result.success
    return GraphRun(result, root / "cache", home, profile, seen.read_text())


@contextlib.contextmanager
def stderr_of_process(path: Path):
    """Copy what the process writes to file descriptor 2 (Python's and the C++ libraries' alike)
    into ``path`` while the block runs; the file's path is what the block gets."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as out:
        os.dup2(out.fileno(), 2)
        try:
            yield path
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@pytest.fixture(scope="session")
def shared_graph(data_dir, tmp_path_factory) -> GraphRun:
    """The cold run (``GRAPH_PROFILE``) that the pipeline, incremental, staleness, code-version,
    scoring, executor and services tests share."""
    return _graph_run(GRAPH_PROFILE, data_dir, tmp_path_factory.mktemp("shared_graph"))


@pytest.fixture(scope="session")
def quick_graph(data_dir, tmp_path_factory) -> GraphRun:
    """The quick profile's cold run, for the quality tier's checks of what its numbers show."""
    return _graph_run("quick", data_dir, tmp_path_factory.mktemp("quick_graph"))


# --- the whole graph on users' datasets, from the command line --------------------------------------

# The digit images the users'-data graph runs on: a sample of scikit-learn's 1,797 (the run's
# assertions hold for any size; fewer rows train faster).
USER_DIGITS = 600


@dataclass
class UserGraphs:
    """Three registered datasets, each materialized by its own `dagster asset materialize` (all at
    once, one DAGSTER_HOME): scikit-learn's wine table (labelled) and a sample of its digit images
    (unlabelled), whole, and the wine table with its labels shuffled, up to the metric tables.
    ``logs``: each process's output."""

    folder: Path
    cache: Path
    wine: object
    shuffled: object
    digits: tuple
    logs: dict


@pytest.fixture(scope="session")
def user_graphs(tmp_path_factory) -> UserGraphs:
    import subprocess
    import sys

    from sklearn.datasets import load_digits, load_wine

    folder = tmp_path_factory.mktemp("user_graphs")
    wine = load_wine(as_frame=True).frame
    shuffled = wine.assign(target=np.random.default_rng(0).permutation(wine["target"].to_numpy()))
    data = load_digits()
    digits = ((data.images * (255 / 16)).round().astype(np.uint8)[:USER_DIGITS], data.target[:USER_DIGITS])
    wine.to_csv(folder / "wine.csv", index=False)
    shuffled.to_csv(folder / "shuffled.csv", index=False)
    np.savez(folder / "digits.npz", x=digits[0])
    (folder / "datasets.yaml").write_text(
        "datasets:\n"
        "  wine: {path: wine.csv, label_column: target, test_fraction: 0.25}\n"
        "  shuffled: {path: shuffled.csv, label_column: target, test_fraction: 0.25}\n"
        "  digits: {path: digits.npz}\n")
    env = {**os.environ, "DAGSTER_HOME": str(initialized_dagster_home(folder / "home")),
           "CLUSTERING_DAG_CACHE_DIR": str(folder / "cache"),
           "CLUSTERING_DAG_DATASETS": str(folder / "datasets.yaml")}
    from clustering_dag.core.variants import VARIANTS

    dagster = str(Path(sys.executable).with_name("dagster"))
    to_metrics = ",".join(f"*{v}/clustering_metrics" for v in VARIANTS)
    procs = {p: subprocess.Popen(
        [dagster, "asset", "materialize", "-m", "clustering_dag.definitions", "--select", select,
         "--partition", p, "-c", str(brief_small_profile(folder))],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for p, select in (("wine", "*"), ("shuffled", to_metrics), ("digits", "*"))}
    logs = {}
    for partition, proc in procs.items():
        logs[partition], _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, logs[partition][-4000:]
    return UserGraphs(folder, folder / "cache", wine, shuffled, digits, logs)


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server on 127.0.0.1 for the session (Debian's postgresql; skipped without it)."""
    from clustering_dag_tests.services import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def graph_copy(shared_graph, data_dir, tmp_path, monkeypatch) -> GraphRun:
    monkeypatch.setenv("CLUSTERING_DAG_DATA_DIR", str(data_dir))
    return shared_graph.copy_to(tmp_path, monkeypatch)
