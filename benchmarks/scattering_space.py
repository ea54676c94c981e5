"""Benchmark: the scattering space through the manifold stage, one seed (1234), outside the pipeline
but with its functions (same data, noise, PCA, UMAP stage and mixture), on 2 CPU cores.

    .venv/bin/python benchmarks/scattering_space.py fashion_mnist:100 mnist:100 fashion_mnist:0

``<dataset>:<components>`` (0: every feature, no PCA). Prints a JSON line per job: the features'
seconds (the transform of 70,000 images and the PCA), the accuracy of k-means on them and of the
manifold stage (UMAP + full GMM) on the noisy test images, and its seconds.
``<dataset>:<components>:join=<cache folder>`` joins the features to the `invariant` code a run
stored there (each part scaled to unit mean norm) before both clusterings. With ``--check``
first, compares the transform with kymatio 0.3.0's NumPy frontend on four Fashion-MNIST images
(``pip install kymatio``; its package imports ``scipy.special.sph_harm``, gone from SciPy 1.17,
which the check stubs). Reads CLUSTERING_DAG_DATA_DIR.
"""
import json
import os
import sys
import time
from pathlib import Path


def data(name):
    from clustering_dag.core.datasets import DATASETS
    from clustering_dag.core.idx import load_image_dataset
    from clustering_dag.core.noise import add_gaussian_noise

    root = Path(os.environ.get("CLUSTERING_DAG_DATA_DIR", "data/raw"))
    raw = load_image_dataset(DATASETS[name], root / DATASETS[name].folder)
    return raw.with_x(add_gaussian_noise(raw.train_x, 0.05, 1234), add_gaussian_noise(raw.test_x, 0.05, 1235))


def check():
    import numpy as np
    import scipy.special

    scipy.special.sph_harm = getattr(scipy.special, "sph_harm", None)
    from kymatio.numpy import Scattering2D

    from clustering_dag.core.configs import ScatteringConfig
    from clustering_dag.core.scattering import _transform

    x = data("fashion_mnist").test_x[:4].reshape(-1, 28, 28)
    for J, L in ((3, 8), (2, 4)):
        theirs = Scattering2D(J=J, shape=(28, 28), L=L)(x)
        ours = _transform(x, ScatteringConfig(J=J, L=L), (28, 28)).numpy()
        worst = float(np.abs(theirs - ours).max() / np.abs(theirs).max())
        print(json.dumps({"check": f"J={J} L={L}", "shape": list(ours.shape),
                          "max_relative_difference": worst}))


def joined(rep, stored: Path):
    """The space's rows beside a stored run's invariance code of the same rows, each part scaled
    to a mean row norm of one."""
    import numpy as np
    from upath import UPath

    from clustering_dag.defs.storage import read_parquet

    code = read_parquet(UPath(str(stored)), lazy=False)
    a, b = (np.sqrt((s.train_x ** 2).sum(1).mean()) for s in (rep, code))
    return rep.with_x(np.hstack([rep.train_x / a, code.train_x / b]),
                      np.hstack([rep.test_x / a, code.test_x / b]))


def main():
    from clustering_dag.core.clustering import fit_clusters
    from clustering_dag.core.configs import ClusterConfig, ManifoldConfig, ScatteringConfig
    from clustering_dag.core.manifold import embed
    from clustering_dag.core.metrics import clustering_accuracy
    from clustering_dag.core.scattering import scattering_representation

    def score(rep, method="kmeans"):
        model = fit_clusters(rep.train_x, ClusterConfig(method=method, covariance_type="full", n_init=10))
        return round(clustering_accuracy(rep.test_y, model.predict(rep.test_x)), 4)

    jobs = sys.argv[1:]
    if jobs[:1] == ["--check"]:
        check()
        jobs = jobs[1:]
    for job in jobs:
        name, components, *join = job.split(":")
        noisy = data(name)
        start = time.perf_counter()
        rep = scattering_representation(noisy, ScatteringConfig(components=int(components) or None))
        res = {"features_s": round(time.perf_counter() - start, 1)}
        if join:
            stored = Path(join[0].removeprefix("join=")) / "invariant_representation" / f"{name}.parquet"
            rep = joined(rep, stored)
        res.update(dim=rep.dim, kmeans=score(rep))
        start = time.perf_counter()
        res["manifold_gmm"] = score(embed(rep, ManifoldConfig()), "gmm")
        res["manifold_s"] = round(time.perf_counter() - start, 1)
        print(json.dumps({job: res}), flush=True)


if __name__ == "__main__":
    main()
