"""Benchmark: the first UMAP fit of a new process with nothing on disk against one whose kernels a
process before it kept on disk (``clustering_dag.core.manifold.keep_kernels_on_disk``), on MNIST
at the manifold stage's defaults.

    CLUSTERING_DAG_DATA_DIR=../shared/data .venv/bin/python benchmarks/umap_kernel_cache.py

The code is a 10-dimensional PCA of the images (UMAP's cost depends on the rows and dimensions,
not on where the code came from): one fit on 20,000 training rows (the stage's ``fit_rows``)
applied to the 10,000 test rows, twice in each process, each process with the same fresh
``NUMBA_CACHE_DIR``. Prints JSON: the seconds of each fit and the ratios. Target: the first fit
of the second process at most half the first process's.
"""

import json
import os
import subprocess
import sys
import tempfile

TARGET_RATIO = 0.5

CHILD = r"""
import json, time
import numpy as np
from sklearn.decomposition import PCA
from clustering_dag.core.configs import ManifoldConfig
from clustering_dag.core.idx import read_idx
from clustering_dag.core.manifold import fit_umap
from clustering_dag.settings import data_dir

folder = data_dir() / "mnist"
train = read_idx(folder / "train-images-idx3-ubyte.gz").reshape(60000, -1) / 255.0
test = read_idx(folder / "t10k-images-idx3-ubyte.gz").reshape(10000, -1) / 255.0
pca = PCA(10, random_state=0).fit(train)
rows = np.random.default_rng(0).choice(len(train), 20000, replace=False)
codes, test_codes = pca.transform(train[rows]).astype(np.float32), pca.transform(test).astype(np.float32)
seconds = []
for seed in (0, 1):
    start = time.perf_counter()
    fit_umap(codes, test_codes, ManifoldConfig(), seed)
    seconds.append(time.perf_counter() - start)
print(json.dumps(seconds))
"""


def fits(cache: str) -> list[float]:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=False,
                          env={**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONWARNINGS": "ignore"})
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        empty, kept = fits(cache), fits(cache)
    ratio = kept[0] / empty[0]
    print(json.dumps({
        "first_process_seconds": {"first_fit": round(empty[0], 1), "second_fit": round(empty[1], 1)},
        "second_process_seconds": {"first_fit": round(kept[0], 1), "second_fit": round(kept[1], 1)},
        "first_fit_ratio": round(ratio, 3), "target_ratio": TARGET_RATIO, "met": ratio <= TARGET_RATIO,
        "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
