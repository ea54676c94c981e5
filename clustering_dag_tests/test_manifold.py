"""The manifold stage (N2D): UMAP of a code fitted on the training split and applied to the test
split, then a Gaussian mixture in that space."""

import numpy as np
import pytest

from clustering_dag.core.arrays import Splits
from clustering_dag.core.clustering import ClusterConfig, fit_clusters
from clustering_dag.core.errors import DataError
from clustering_dag.core.manifold import ManifoldConfig, embed
from clustering_dag.core.metrics import label_metrics


def clustered_codes(n_train=3000, n_test=600, seed=0) -> Splits:
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n_train + n_test, n_features=10, centers=10, cluster_std=1.5,
                      random_state=seed)
    x = x.astype(np.float32)
    return Splits(x[:n_train], y[:n_train], x[n_train:], y[n_train:], meta={"source": "blobs"})


def test_config_is_checked():
    with pytest.raises(ValueError, match="fit_rows must exceed n_neighbors"):
        ManifoldConfig(n_neighbors=20, fit_rows=10)
    with pytest.raises(ValueError):
        ManifoldConfig(min_dist=-1)


def test_bad_codes_get_a_clear_error():
    codes = clustered_codes(n_train=50, n_test=10)
    with pytest.raises(DataError, match="lower `n_neighbors`"):
        embed(codes, ManifoldConfig(n_neighbors=60, fit_rows=None))
    codes.test_x[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN or Inf"):
        embed(codes, ManifoldConfig())


@pytest.mark.slow
def test_umap_then_mixture_recovers_the_clusters_and_repeats():
    codes = clustered_codes()
    config = ManifoldConfig(n_components=5, fit_rows=1000, n_epochs=100)
    embedded = embed(codes, config)
    assert embedded.train_x.shape == (1000, 5) and embedded.test_x.shape == (600, 5)
    assert embedded.meta["fit_rows"] == 1000 and embedded.meta["of_train_rows"] == 3000
    assert embedded.meta["source"] == "blobs"  # the codes' metadata carried over (no cache key in it)
    np.testing.assert_array_equal(embedded.test_y, codes.test_y)
    model = fit_clusters(embedded.train_x, ClusterConfig(method="gmm", n_clusters=10, n_init=2))
    accuracy = label_metrics(embedded.test_y, model.predict(embedded.test_x))["accuracy"]
    assert accuracy > 0.95
    # The fit sample's labels are its rows' labels (the sample and its labels stay aligned).
    assert label_metrics(embedded.train_y, model.predict(embedded.train_x))["accuracy"] > 0.95
    again = embed(codes, config)  # seeded: the same embedding
    np.testing.assert_allclose(again.test_x, embedded.test_x, atol=1e-5)


@pytest.mark.slow
def test_restarts_in_worker_processes_give_the_same_embedding(monkeypatch):
    from clustering_dag.core import manifold

    codes = clustered_codes(n_train=1500, n_test=300)
    config = ManifoldConfig(n_components=5, fit_rows=None, n_epochs=50, restarts=3)
    monkeypatch.setattr(manifold, "PARALLEL_FROM_ROWS", 0)  # this small input to the workers too
    monkeypatch.setattr(manifold, "cores", lambda: 2)
    parallel = embed(codes, config)
    assert manifold._workers is not None  # the fits ran in worker processes
    monkeypatch.setattr(manifold, "cores", lambda: 1)
    here = embed(codes, config)
    np.testing.assert_array_equal(parallel.train_x, here.train_x)
    np.testing.assert_array_equal(parallel.test_x, here.test_x)
    assert parallel.meta["chosen_seed"] == here.meta["chosen_seed"]


@pytest.mark.slow  # UMAP's first fit in this process: its kernels compile here
def test_restarts_run_here_when_no_worker_process_starts(monkeypatch):
    from clustering_dag.core import manifold

    def no_processes(workers):
        raise AssertionError("daemonic processes are not allowed to have children")

    codes = clustered_codes(n_train=300, n_test=60)
    config = ManifoldConfig(n_components=2, fit_rows=None, n_epochs=10, restarts=2)
    monkeypatch.setattr(manifold, "PARALLEL_FROM_ROWS", 0)
    monkeypatch.setattr(manifold, "cores", lambda: 2)
    monkeypatch.setattr(manifold, "_pool", no_processes)
    said = []
    embedded = embed(codes, config, log=said.append)
    assert embedded.test_x.shape == (60, 2) and len(embedded.meta["restart_agreement"]) == 2
    assert said == ["UMAP restarts run one after another: no worker processes "
                    "(AssertionError: daemonic processes are not allowed to have children)"]


def test_a_worker_goes_when_the_process_that_started_it_is_killed(tmp_path):
    """SIGKILL (or a terminated task) runs no clean-up in the step's process: its UMAP workers
    must not wait for work for ever."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import os, sys\n"
              "from clustering_dag.core import manifold\n"
              "pool = manifold._pool(1)\n"
              "print(pool.submit(os.getpid).result(), flush=True)\n"
              "import time; time.sleep(600)\n")
    step = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(step.stdout.readline())
        os.kill(step.pid, signal.SIGKILL)
        step.wait(timeout=10)
        deadline = time.monotonic() + 20
        while os.path.exists(f"/proc/{worker}") and time.monotonic() < deadline:
            time.sleep(0.2)
        if os.path.exists(f"/proc/{worker}"):  # a zombie is gone as a process, only not reaped
            assert open(f"/proc/{worker}/stat").read().split()[2] == "Z", "the worker outlived its step"
    finally:
        step.kill()


FIT_ONCE = """
import numpy as np
from clustering_dag.core.configs import ManifoldConfig
from clustering_dag.core.manifold import fit_umap
rng = np.random.default_rng(0)
fit_umap(rng.normal(size=(300, 5)).astype(np.float32), rng.normal(size=(50, 5)).astype(np.float32),
         ManifoldConfig(n_epochs=20), seed=0)
"""


@pytest.mark.slow
def test_a_new_process_loads_the_umap_kernels_the_first_one_compiled(tmp_path):
    """umap compiles most of its numba kernels without numba's on-disk cache: the stage switches
    it on, so the kernels a process's first fit compiles are saved and the next process loads
    them (numba's cache log says which), UMAP's own and the nearest-neighbour search's."""
    import os
    import re
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_DEBUG_CACHE": "1"}

    def fit_in_a_new_process() -> tuple[set[str], set[str]]:
        run = subprocess.run([sys.executable, "-c", FIT_ONCE], env=env, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        kernels = {how: set(re.findall(rf"data {how} (?:to|from) '.*?/([\w.]+)-\d+\.py", run.stdout))
                   for how in ("saved", "loaded")}
        return kernels["saved"], kernels["loaded"]

    kernels = {"umap_.smooth_knn_dist", "umap_.compute_membership_strengths", "utils.fast_knn_indices",
               "layouts._optimize_layout_euclidean_single_epoch"}  # compiled without a cache by umap
    saved, loaded = fit_in_a_new_process()
    assert kernels <= saved and not loaded
    saved_again, loaded = fit_in_a_new_process()
    assert saved_again == set() and kernels <= loaded  # nothing compiled again
