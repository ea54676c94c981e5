"""A manifold-learning stage on a learned code, the N2D recipe (McConville et al. 2020): UMAP of
the latent code, fitted on the training split, applied to the test split; the clusters are then
fitted in the UMAP space (a Gaussian mixture by default, see :mod:`clustering_dag.core.clustering`).

UMAP is fitted on a seeded sample of the training codes (``fit_rows``): its cost grows faster
than linearly in the rows it is fitted on, and a fixed ``random_state`` (needed for repeatable
results) runs it on one thread. The fitted UMAP is not stored (only pickle could store it): the
stage's value is the embedding of the fit sample and of every test row, as arrays.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from clustering_dag.core.arrays import Splits
from clustering_dag.core.configs import ManifoldConfig
from clustering_dag.core.errors import DataError


def embed(codes: Splits, config: ManifoldConfig) -> Splits:
    """The UMAP embedding of ``codes``: fitted on (a seeded sample of) the training split, the
    test split transformed by it. The result's training split is the fit sample, labels kept."""
    # umap imports TensorFlow (for its parametric UMAP): load it the project's way first (Keras 2,
    # no CUDA probing noise on a machine without a GPU).
    import clustering_dag.core.tf_env  # noqa: F401, I001
    import umap

    if not (np.isfinite(codes.train_x).all() and np.isfinite(codes.test_x).all()):
        raise DataError("cannot embed: the code contains NaN or Inf")
    n = len(codes.train_x)
    if n <= config.n_neighbors:
        raise DataError(f"cannot fit UMAP with {config.n_neighbors} neighbours on {n} training rows; "
                        "lower `n_neighbors`")
    rows = np.arange(n)
    if config.fit_rows is not None and n > config.fit_rows:
        rows = np.sort(np.random.default_rng(config.seed).choice(n, config.fit_rows, replace=False))
    reducer = umap.UMAP(n_components=config.n_components, n_neighbors=config.n_neighbors,
                        min_dist=config.min_dist, n_epochs=config.n_epochs, random_state=config.seed,
                        transform_seed=config.seed, n_jobs=1)  # seeded: one thread either way
    train = reducer.fit_transform(codes.train_x[rows]).astype(np.float32)
    test = reducer.transform(codes.test_x).astype(np.float32)
    train_y = None if codes.train_y is None else codes.train_y[rows]
    return Splits(train, train_y, test, codes.test_y,
                  meta={**codes.meta, "representation": "manifold", "fit_rows": int(len(rows)),
                        "of_train_rows": int(n), "umap": asdict(config)})
