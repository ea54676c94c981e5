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
