"""Cluster quality: the paper's internal metrics and label-based ones comparable across spaces."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.metrics.cluster import contingency_matrix

INTERNAL = {"dbi": "lower", "silhouette": "higher", "chs": "higher"}


def clustering_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Accuracy under the best one-to-one matching of clusters to labels (Hungarian)."""
    table = contingency_matrix(labels, clusters)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(labels))


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Share of points whose cluster's most common label is their own."""
    table = contingency_matrix(labels, clusters)
    return float(table.max(axis=0).sum() / len(labels))


def internal_metrics(x: np.ndarray, clusters: np.ndarray, silhouette_sample: int | None = None,
                     seed: int = 0) -> dict:
    """Davies-Bouldin, Calinski-Harabasz (linear in rows) and Silhouette (quadratic: on a seeded
    sample of ``silhouette_sample`` rows when there are more; ``silhouette_rows`` says how many)."""
    sample = silhouette_sample if silhouette_sample and silhouette_sample < len(x) else None
    rows = {"silhouette_rows": sample or len(x)}
    if len(np.unique(clusters)) < 2:
        nan = float("nan")
        return {"dbi": nan, "silhouette": nan, "chs": nan, **rows}
    return {
        "dbi": float(davies_bouldin_score(x, clusters)),
        "silhouette": float(silhouette_score(x, clusters, sample_size=sample, random_state=seed)),
        "chs": float(calinski_harabasz_score(x, clusters)),
        **rows,
    }


def label_metrics(labels: np.ndarray, clusters: np.ndarray) -> dict:
    return {
        "accuracy": clustering_accuracy(labels, clusters),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
        "purity": purity(labels, clusters),
    }


def all_metrics(x: np.ndarray, clusters: np.ndarray, labels: np.ndarray | None, n_clusters: int,
                silhouette_sample: int | None = None, seed: int = 0) -> dict:
    row = internal_metrics(x, clusters, silhouette_sample, seed)
    if labels is not None:
        row.update(label_metrics(labels, clusters))
    row["n_clusters_used"] = int(len(np.unique(clusters)))
    row["min_cluster_size"] = int(np.bincount(clusters, minlength=n_clusters).min()) if len(clusters) else 0
    return row


def space_row(space: str, data, clusters: np.ndarray, n_clusters: int,
              silhouette_sample: int | None = None) -> dict:
    """The metric table's row of one space: its name, dimension and rows (``data`` is its
    :class:`~clustering_dag.core.arrays.Splits`), and every metric of its test split's clusters."""
    return {"representation": space, "dim": data.dim, "train_rows": len(data.train_x),
            "test_rows": len(data.test_x),
            **all_metrics(data.test_x, clusters, data.test_y, n_clusters, silhouette_sample)}
