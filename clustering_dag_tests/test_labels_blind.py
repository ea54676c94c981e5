"""Labels are for scoring only: the same dataset with its label column shuffled gets the same
clusters in every space of every variant (autoencoders, UMAP restarts and their choice, the
mixtures, the refined classifier), and only the label-based metrics move (the users'-data graphs
of ``conftest.user_graphs``: ``wine`` and ``shuffled``, each a `dagster asset materialize`)."""

import pandas as pd
import pytest

from clustering_dag.core.spaces import space_names
from clustering_dag.core.variants import VARIANTS

SPACES = space_names()


@pytest.mark.slow
def test_permuted_labels_give_identical_cluster_assignments(user_graphs):
    wine, shuffled = user_graphs.wine, user_graphs.shuffled
    assert (shuffled["target"] != wine["target"]).mean() > 0.5
    cache = user_graphs.cache
    for variant in VARIANTS:
        real, blind = (pd.read_parquet(cache / variant / "cluster_assignments" / f"{p}.parquet")
                       for p in ("wine", "shuffled"))
        assert (real["label"] != blind["label"]).any()  # the labels did differ
        for space in SPACES:
            assert (real[space] == blind[space]).all(), f"{variant} {space} read the labels"
        metrics = [pd.read_parquet(cache / variant / "clustering_metrics" / f"{p}.parquet")
                   .set_index("representation") for p in ("wine", "shuffled")]
        internal = ["dbi", "silhouette", "chs"]
        pd.testing.assert_frame_equal(metrics[0][internal], metrics[1][internal])
        assert (metrics[0]["accuracy"] > metrics[1]["accuracy"]).all()  # scored against noise
