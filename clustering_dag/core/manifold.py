"""A manifold-learning stage on a learned code, the N2D recipe (McConville et al. 2020): UMAP of
the latent code, fitted on the training split, applied to the test split; the clusters are then
fitted in the UMAP space (a Gaussian mixture by default, see :mod:`clustering_dag.core.clustering`).

UMAP is fitted on a seeded sample of the training codes (``fit_rows``): its cost grows faster
than linearly in the rows it is fitted on, and a fixed ``random_state`` (needed for repeatable
results) runs it on one thread. A single UMAP fit can tear a class in two or merge two; the stage
therefore fits ``restarts`` of them (seeds ``seed``, ``seed + 1``, ...) on the same rows and keeps
the one whose k-means clusters agree most with the other restarts' (mean adjusted Rand index):
the consensus choice, made without the labels. The fitted UMAP is not stored (only pickle could
store it): the stage's value is the embedding of the fit sample and of every test row, as arrays.

The restarts run side by side, one worker process per core (seeded UMAP uses one thread, so one
process alone leaves the other cores idle). The workers outlive the step, and the numba kernels
UMAP and its nearest-neighbour search compile on their first call are kept on disk
(``keep_kernels_on_disk``): a process after the first loads them instead of compiling them again
(on a 2-core host the first fit of a process took 219.7 s at the stage's defaults with nothing
on disk, 57.3 s with the kernels on disk, 26.7 s once loaded; benchmarks/umap_kernel_cache.py). Each
restart is seeded, so the result is the same in a worker as in the step's own process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from pathlib import Path

import numpy as np

from clustering_dag.core import cores
from clustering_dag.core.arrays import Splits
from clustering_dag.core.configs import ManifoldConfig
from clustering_dag.core.errors import DataError

# The packages whose numba kernels are kept on disk, by their distribution names.
KERNEL_PACKAGES = {"umap": "umap-learn", "pynndescent": "pynndescent", "numba": "numba"}
# Below this many fit rows UMAP finds neighbours exactly (no nearest-neighbour search to compile)
# and a fit takes about a second: starting worker processes would cost more than it saves.
PARALLEL_FROM_ROWS = 4096
_workers: tuple[ProcessPoolExecutor, int] | None = None  # the pool and its size
_in_worker = False
_kernels_kept = False  # keep_kernels_on_disk has run in this process


def fit_sample(n: int, config: ManifoldConfig) -> np.ndarray:
    """The training rows UMAP is fitted on (sorted): a seeded sample of ``fit_rows`` of the ``n``,
    or all of them. The same rows for every restart, and for whoever needs to know them."""
    if config.fit_rows is None or n <= config.fit_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(config.seed).choice(n, config.fit_rows, replace=False))


def kernel_cache_dir() -> Path:
    """Where numba keeps the machine code it compiles for UMAP and its nearest-neighbour search
    (unless NUMBA_CACHE_DIR says otherwise): a folder per version of umap, pynndescent and numba,
    since numba checks a cached kernel against its own source file only, not against the
    kernels of another file it calls."""
    from importlib.metadata import version

    versions = "-".join(f"{name}{version(dist)}" for name, dist in KERNEL_PACKAGES.items())
    return Path.home() / ".cache" / "clustering_dag" / "numba" / versions


def keep_kernels_on_disk() -> int:
    """Switch numba's on-disk cache on for the kernels of umap and pynndescent that are compiled
    without it (most of them: each process would compile them on its first UMAP fit, tens of
    seconds, minutes on a slow host); before their first call, so their first compilation is
    saved. A kernel that cannot be saved (pynndescent's ``nn_descent`` holds dynamic globals) is
    compiled as before, without numba's warning about it. Returns how many were switched."""
    import warnings

    from numba.core.caching import NullCache
    from numba.core.errors import NumbaWarning
    from numba.core.registry import CPUDispatcher

    warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
    switched = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in ("umap", "pynndescent"):
            continue
        for kernel in list(vars(module).values()):
            if (isinstance(kernel, CPUDispatcher) and isinstance(getattr(kernel, "_cache", None), NullCache)
                    and "<locals>" not in kernel.py_func.__qualname__):  # a module's own function
                kernel.enable_caching()
                switched += 1
    return switched


def _umap():
    global _kernels_kept
    os.environ.setdefault("NUMBA_CACHE_DIR", str(kernel_cache_dir()))  # read when numba loads
    if not _in_worker:
        # umap imports TensorFlow (for its parametric UMAP): load it the project's way first
        # (Keras 2, no CUDA probing noise on a machine without a GPU).
        import clustering_dag.core.tf_env  # noqa: F401, I001
    import umap

    if not _kernels_kept:
        keep_kernels_on_disk()
        _kernels_kept = True
    return umap


def _start_worker(parent: int):
    """A UMAP worker: TensorFlow kept out (umap imports it only for its parametric UMAP, unused
    here; that import would cost each worker seconds and a GPU context), and gone once the
    process that started it is (killed, or its task terminated), instead of waiting for work."""
    global _in_worker
    _in_worker = True
    sys.modules.setdefault("tensorflow", None)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="exit-with-parent").start()


def _exit_with(parent: int, every: float = 1.0):
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    """The UMAP worker processes of this process (started on first use, kept until it exits)."""
    global _workers
    if _workers is None or _workers[1] < workers:
        if _workers is not None:
            _workers[0].shutdown(wait=False, cancel_futures=True)
        # `spawn`: a fresh interpreter, whatever threads the step's own process runs.
        _workers = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_worker, initargs=(os.getpid(),)), workers)
    return _workers[0]


def fit_restarts(train: np.ndarray, test: np.ndarray, config: ManifoldConfig, seeds: list[int],
                 log=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``fit_umap`` under each of ``seeds``: in worker processes, one per core (at most one per
    seed), where there are several seeds, cores and enough rows; else here, one after another.
    The same arrays either way."""
    workers = min(len(seeds), cores())
    if workers > 1 and len(train) >= PARALLEL_FROM_ROWS and not _in_worker:
        n = len(seeds)
        try:
            return list(_pool(workers).map(fit_umap, [train] * n, [test] * n, [config] * n, seeds))
        except (BrokenProcessPool, OSError, AssertionError) as error:
            # No processes here (a daemonic worker, a sandbox): the same fits, one after another.
            global _workers
            _workers = None
            (log or (lambda _: None))(f"UMAP restarts run one after another: no worker processes "
                                      f"({type(error).__name__}: {error})")
    return [fit_umap(train, test, config, s) for s in seeds]


def fit_umap(train: np.ndarray, test: np.ndarray, config: ManifoldConfig, seed: int):
    """(embedded train, embedded test) of one UMAP fitted on ``train`` under ``seed``."""
    reducer = _umap().UMAP(n_components=config.n_components, n_neighbors=config.n_neighbors,
                           min_dist=config.min_dist, n_epochs=config.n_epochs, random_state=seed,
                           transform_seed=seed, n_jobs=1)  # seeded: one thread either way
    return reducer.fit_transform(train).astype(np.float32), reducer.transform(test).astype(np.float32)


def agreement(partitions: list[np.ndarray]) -> np.ndarray:
    """Each partition's mean adjusted Rand index with the others (1.0 for a single partition)."""
    from sklearn.metrics import adjusted_rand_score

    r = len(partitions)
    if r == 1:
        return np.ones(1)
    ari = np.ones((r, r))
    for i in range(r):
        for j in range(i + 1, r):
            ari[i, j] = ari[j, i] = adjusted_rand_score(partitions[i], partitions[j])
    return (ari.sum(1) - 1) / (r - 1)


def embed(codes: Splits, config: ManifoldConfig, n_clusters: int | None = None, log=None) -> Splits:
    """The UMAP embedding of ``codes``: fitted on (a seeded sample of) the training split, the
    test split transformed by it; of ``config.restarts`` fits, the one whose ``n_clusters``
    k-means clusters (default: the dataset's) agree most with the others'. The result's training
    split is the fit sample, labels kept; its metadata lists each restart's seed and agreement.

    Called from a script of your own, keep its work under ``if __name__ == "__main__":`` (as for
    any code that starts processes): each worker process imports the script that started it, and
    would otherwise run its top level again before failing, and the fits would then run in this
    process."""
    from sklearn.cluster import KMeans

    if not (np.isfinite(codes.train_x).all() and np.isfinite(codes.test_x).all()):
        raise DataError("cannot embed: the code contains NaN or Inf")
    n = len(codes.train_x)
    if n <= config.n_neighbors:
        raise DataError(f"cannot fit UMAP with {config.n_neighbors} neighbours on {n} training rows; "
                        "lower `n_neighbors`")
    rows = fit_sample(n, config)
    k = n_clusters or codes.n_clusters
    seeds = [config.seed + r for r in range(config.restarts)]
    fits = fit_restarts(codes.train_x[rows], codes.test_x, config, seeds, log)
    # Labels never enter the choice: it compares the restarts' own clusterings with each other.
    partitions = [KMeans(k, n_init=3, random_state=config.seed).fit_predict(train) for train, _ in fits]
    scores = agreement(partitions) if len(fits) > 1 else np.ones(1)
    best = int(np.argmax(scores))
    train, test = fits[best]
    train_y = None if codes.train_y is None else codes.train_y[rows]
    return Splits(train, train_y, test, codes.test_y,
                  meta={**codes.meta, "representation": "manifold", "fit_rows": int(len(rows)),
                        "of_train_rows": int(n), "umap": asdict(config), "restart_seeds": seeds,
                        "restart_agreement": [round(float(s), 4) for s in scores],
                        "chosen_seed": seeds[best]})
