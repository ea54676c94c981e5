import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture

from clustering_dag.core.arrays import sample_rows
from clustering_dag.core.clustering import ClusterConfig, ClusterModel, fit_clusters
from clustering_dag.core.errors import DataError
from clustering_dag.core.metrics import all_metrics, clustering_accuracy, purity
from clustering_dag.core.paper import (
    PAPER_SETTINGS,
    compare_with_paper,
    describe_settings,
    latent_beats_original,
    ranking_summary,
    settings_differences,
)
from clustering_dag.profiles import matching_profile

PAPER_RUN = {**PAPER_SETTINGS, "profile": "full"}
QUICK_RUN = {**PAPER_SETTINGS, "train_rows": 10_000, "test_rows": 1000, "epochs": 10, "batch_size": 128,
             "profile": "quick"}


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=600, centers=4, n_features=5, random_state=0)
    return x.astype(np.float32), y


def test_hungarian_accuracy_on_permuted_labels():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    permuted = np.array([2, 0, 1])[labels]  # same partition, other names
    assert clustering_accuracy(labels, permuted) == 1.0
    assert purity(labels, permuted) == 1.0
    mixed = np.array([0, 1, 1, 1, 2, 2, 2])  # one point in the wrong group
    assert clustering_accuracy(labels, mixed) == pytest.approx(6 / 7)


def test_accuracy_penalises_merging_where_purity_does_not():
    labels = np.array([0, 0, 1, 1])
    split = np.array([0, 1, 2, 3])  # every point its own cluster: pure but not accurate
    assert purity(labels, split) == 1.0
    assert clustering_accuracy(labels, split) == 0.5


def test_metrics_agree_with_sklearn(blobs):
    x, y = blobs
    clusters = KMeans(4, n_init=2, random_state=0).fit_predict(x)
    row = all_metrics(x, clusters, y, n_clusters=4)
    assert row["dbi"] == pytest.approx(davies_bouldin_score(x, clusters))
    assert row["silhouette"] == pytest.approx(silhouette_score(x, clusters))
    assert row["chs"] == pytest.approx(calinski_harabasz_score(x, clusters))
    assert row["nmi"] == pytest.approx(normalized_mutual_info_score(y, clusters))
    assert row["ari"] == pytest.approx(adjusted_rand_score(y, clusters))
    assert row["accuracy"] == 1.0 and row["min_cluster_size"] == 150


def test_silhouette_is_exact_up_to_its_sample_size_and_sampled_above(blobs):
    x, y = blobs
    exact = all_metrics(x, y, None, n_clusters=4, silhouette_sample=600)
    assert exact["silhouette_rows"] == 600 and exact["silhouette"] == silhouette_score(x, y)
    sampled = all_metrics(x, y, None, n_clusters=4, silhouette_sample=200, seed=3)
    assert sampled["silhouette_rows"] == 200
    assert sampled["silhouette"] == silhouette_score(x, y, sample_size=200, random_state=3)
    assert sampled["silhouette"] == pytest.approx(exact["silhouette"], abs=0.05)
    assert sampled["dbi"] == exact["dbi"]  # the linear metrics always see every row


def test_stratified_sample_keeps_each_class_share():
    labels = np.repeat(np.arange(4), [500, 300, 150, 50])
    rows = sample_rows(len(labels), 100, labels, seed=1)
    assert len(np.unique(rows)) == 100 and np.all(np.diff(rows) > 0)
    assert np.bincount(labels[rows]).tolist() == [50, 30, 15, 5]
    assert np.array_equal(rows, sample_rows(len(labels), 100, labels, seed=1))
    assert not np.array_equal(rows, sample_rows(len(labels), 100, labels, seed=2))
    assert np.array_equal(sample_rows(10, None), np.arange(10))
    assert np.array_equal(sample_rows(10, 50), np.arange(10))
    assert len(sample_rows(1000, 10, None, seed=0)) == 10


def test_empty_cluster_is_counted():
    x = np.random.default_rng(0).random((20, 2))
    clusters = np.array([0] * 10 + [1] * 10)
    assert all_metrics(x, clusters, None, n_clusters=3)["min_cluster_size"] == 0


def test_kmeans_centroid_round_trip_gives_identical_predictions(blobs):
    x, _ = blobs
    cfg = ClusterConfig(n_clusters=4, n_init=3, seed=1)
    model = fit_clusters(x, cfg)
    reference = KMeans(4, init="k-means++", n_init=3, max_iter=500, random_state=1).fit(x)
    back = ClusterModel.from_frame(model.to_frame())
    np.testing.assert_array_equal(back.predict(x), reference.predict(x))
    assert back.inertia == pytest.approx(reference.inertia_)


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_gmm_alternative_round_trip(blobs, covariance_type):
    x, _ = blobs
    config = ClusterConfig(method="gmm", n_clusters=4, n_init=1, seed=0, covariance_type=covariance_type)
    model = fit_clusters(x, config)
    reference = GaussianMixture(4, covariance_type=covariance_type, n_init=1, max_iter=500,
                                random_state=0, reg_covar=1e-4).fit(x)
    back = ClusterModel.from_frame(model.to_frame())
    assert back.config == config  # stored with the model, read back
    np.testing.assert_array_equal(back.predict(x), reference.predict(x))


def test_clustering_rejects_bad_input():
    with pytest.raises(DataError, match="NaN or Inf"):
        fit_clusters(np.array([[np.nan, 1.0]] * 20), ClusterConfig())
    with pytest.raises(DataError, match="10 clusters from 5 points"):
        fit_clusters(np.zeros((5, 2)), ClusterConfig())
    with pytest.raises(ValueError, match="method"):
        ClusterConfig(method="dbscan")


def _ours(latent_dbi):
    return pd.DataFrame([
        {"representation": "original", "dbi": 2.9, "silhouette": 0.06, "chs": 390.0},
        {"representation": "reconstructed", "dbi": 2.3, "silhouette": 0.10, "chs": 560.0},
        {"representation": "latent", "dbi": latent_dbi, "silhouette": 0.19, "chs": 1500.0},
    ])


def test_comparison_keeps_the_paper_ranking():
    table = compare_with_paper(_ours(1.5), "mnist", PAPER_RUN)
    summary = ranking_summary(table)
    assert summary["ranking_matches_paper"] and summary["latent_best_on_all"]
    row = table.set_index(["representation", "metric"]).loc[("latent", "dbi")]
    assert row["paper"] == 1.557
    assert row["relative_diff"] == pytest.approx((1.5 - 1.557) / 1.557)


def test_comparison_flags_a_ranking_change():
    summary = ranking_summary(compare_with_paper(_ours(2.5), "mnist", PAPER_RUN))  # reconstructed best on DBI
    assert summary["ranking_matches_paper"] is False
    assert summary["ours_best"]["dbi"] == "reconstructed" and summary["paper_best"]["dbi"] == "latent"
    assert latent_beats_original(_ours(2.5)) == {"dbi": True, "silhouette": True, "chs": True}
    assert latent_beats_original(_ours(3.0))["dbi"] is False


def test_comparison_over_seeds_reports_mean_and_sd():
    runs = pd.concat([_ours(1.4), _ours(1.6)], ignore_index=True)
    table = compare_with_paper(runs, "fashion_mnist", PAPER_RUN)
    row = table.set_index(["representation", "metric"]).loc[("latent", "dbi")]
    assert row["ours_mean"] == pytest.approx(1.5)
    assert row["ours_sd"] == pytest.approx(np.std([1.4, 1.6], ddof=1))
    assert row["n_seeds"] == 2


def test_comparison_without_paper_numbers():
    table = compare_with_paper(_ours(1.5), "my_table", QUICK_RUN)
    summary = ranking_summary(table)
    assert "paper" not in table and "ranking_matches_paper" not in summary
    assert summary["latent_best_on_all"]


def test_paper_numbers_are_compared_only_at_the_papers_settings():
    assert settings_differences(PAPER_RUN) == []
    assert settings_differences(QUICK_RUN) == [
        "train_rows 10000 (paper 60000)", "test_rows 1000 (paper 10000)", "epochs 10 (paper 60)",
        "batch_size 128 (paper 512)"]
    table = compare_with_paper(_ours(2.5), "mnist", QUICK_RUN)  # would flag a ranking change
    assert not table["comparable"].any() and table["relative_diff"].isna().all()
    assert table["paper"].notna().all()  # the paper's value stays beside ours, marked
    assert ranking_summary(table)["ranking_matches_paper"] == "not comparable"
    assert (table["profile"] == "quick").all() and (table["epochs"] == 10).all()
    assert describe_settings(QUICK_RUN, False) == (
        "profile `quick`: 10,000 train / 1,000 test rows, 10 epochs; not the paper's settings, "
        "so the paper's numbers are not comparable")
    assert describe_settings(PAPER_RUN, True).endswith("60 epochs (the paper's settings)")
    assert describe_settings(QUICK_RUN, None).endswith("10 epochs")  # a dataset the paper did not use


def test_a_runs_profile_is_named_from_its_settings():
    assert matching_profile({**PAPER_RUN, "all_rows": True}) == "full"
    assert matching_profile({**QUICK_RUN, "all_rows": False}) == "quick"
    assert matching_profile({"train_rows": 133, "test_rows": 45, "all_rows": True, "epochs": 300,
                             "batch_size": 32}) == "small"
    assert matching_profile({**PAPER_RUN, "all_rows": False}) == "custom"  # rows cut, paper's epochs
    assert matching_profile({**QUICK_RUN, "all_rows": False, "epochs": 5}) == "custom"
    # The seeds profile is the paper's settings under three seeds: its tables say so.
    assert matching_profile({**PAPER_RUN, "all_rows": True, "n_seeds": 3}) == "seeds"
    assert matching_profile({**PAPER_RUN, "all_rows": True, "n_seeds": 2}) == "custom"
