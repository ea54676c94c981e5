"""Benchmark: the manifold stage's UMAP restarts side by side in worker processes against one
after another in the step's own process, on MNIST at the stage's default settings.

    CLUSTERING_DAG_DATA_DIR=../shared/data .venv/bin/python benchmarks/manifold_restarts.py

The code is a 10-dimensional PCA of the training images (a stand-in for a learned code, needing no
trained model: UMAP's cost depends on the rows and dimensions, not on where the code came from).
Each way runs ``embed`` twice in a fresh process: the first call pays numba's compilation (in the
workers or here), the second is what every later variant of a run pays. Prints JSON: seconds of
each call, the ratios, and whether both ways gave the same arrays. Target: the second call at
most 0.75 of one-after-another's on 2 cores (three restarts in two rounds instead of three).
"""

import json
import os
import subprocess
import sys
import time

TARGET_RATIO = 0.75

CHILD = r"""
import json, sys, time
import numpy as np
from sklearn.decomposition import PCA
from clustering_dag.core import manifold
from clustering_dag.core.arrays import Splits
from clustering_dag.core.configs import ManifoldConfig
from clustering_dag.core.idx import read_image_label_pair
from clustering_dag.settings import data_dir

if sys.argv[1] == "sequential":
    manifold.cores = lambda: 1
folder = data_dir() / "mnist"
train, _ = read_image_label_pair(folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz")
test, _ = read_image_label_pair(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
train, test = train.reshape(len(train), -1) / 255.0, test.reshape(len(test), -1) / 255.0
pca = PCA(10, random_state=0).fit(train)
codes = Splits(pca.transform(train).astype(np.float32), None, pca.transform(test).astype(np.float32), None)
seconds = []
for _ in range(2):
    start = time.perf_counter()
    embedded = manifold.embed(codes, ManifoldConfig(), n_clusters=10)
    seconds.append(time.perf_counter() - start)
np.save(sys.argv[2], embedded.test_x)
print(json.dumps({"first": seconds[0], "second": seconds[1], "chosen_seed": embedded.meta["chosen_seed"]}))
"""


def run(way: str, out: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, way, out], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode:
        raise SystemExit(f"{way}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import tempfile

    import numpy as np

    from clustering_dag.core import cores

    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        sequential = run("sequential", f"{work}/sequential.npy")
        parallel = run("parallel", f"{work}/parallel.npy")
        same = bool(np.array_equal(np.load(f"{work}/sequential.npy"), np.load(f"{work}/parallel.npy")))
    ratio = parallel["second"] / sequential["second"]
    print(json.dumps({
        "cores": cores(), "restarts": 3, "fit_rows": 20000, "test_rows": 10000,
        "sequential_s": {k: round(sequential[k], 1) for k in ("first", "second")},
        "parallel_s": {k: round(parallel[k], 1) for k in ("first", "second")},
        "ratio_first": round(parallel["first"] / sequential["first"], 3),
        "ratio_second": round(ratio, 3), "target_ratio_second": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO, "same_arrays": same,
        "same_choice": sequential["chosen_seed"] == parallel["chosen_seed"],
        "wall_s": round(time.perf_counter() - start, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
