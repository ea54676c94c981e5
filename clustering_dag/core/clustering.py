"""Clustering of a representation: k-means (the paper's) or a Gaussian mixture.

A fitted model is kept as plain arrays (centroids, or means/covariances/weights) with the config
that fitted it, never as a pickled estimator; predictions are rebuilt from those arrays.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances, pairwise_distances_argmin_min
from sklearn.mixture import GaussianMixture

from clustering_dag.core.configs import ClusterConfig
from clustering_dag.core.errors import DataError


@dataclass
class ClusterModel:
    """A fitted clustering: ``centers`` (k x d), plus GMM parameters when ``method == 'gmm'``
    (``covariances``: variances k x d for a diagonal mixture, k x d x d for a full one), and the
    ``config`` that fitted it. ``inertia`` is k-means' sum of squared distances; a mixture has
    ``lower_bound`` instead (the log-likelihood lower bound per point of its best restart)."""

    method: str
    centers: np.ndarray
    covariances: np.ndarray | None = None
    weights: np.ndarray | None = None
    inertia: float = float("nan")
    lower_bound: float = float("nan")
    n_iter: int = 0
    config: ClusterConfig | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.nearest(x)[0]

    def nearest(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's cluster and its Euclidean distance to that cluster's centre (a mixture's
        cluster is its most probable component)."""
        if x.shape[1] != self.centers.shape[1]:
            raise DataError(f"points have {x.shape[1]} features, the model {self.centers.shape[1]}")
        if self.method == "kmeans":
            clusters, distances = pairwise_distances_argmin_min(x, self.centers)
            return clusters.astype(np.int64), distances.astype(np.float64)
        clusters = self._log_joint(x).argmax(1).astype(np.int64)
        return clusters, np.linalg.norm(x - self.centers[clusters], axis=1)

    def confidence(self, x: np.ndarray) -> np.ndarray:
        """How surely each point belongs to its predicted cluster, in [0, 1]: a mixture's posterior
        probability of that component; for k-means, 1 - d1 / d2 (nearest and second-nearest
        centre)."""
        if self.method == "kmeans":
            d = np.sort(pairwise_distances(x, self.centers), axis=1)
            return 1.0 - d[:, 0] / np.maximum(d[:, 1], 1e-12)
        log_joint = self._log_joint(x)
        log_joint -= log_joint.max(1, keepdims=True)
        joint = np.exp(log_joint)
        return joint.max(1) / joint.sum(1)

    def _log_joint(self, x: np.ndarray) -> np.ndarray:
        """log w_k + log N(x | mu_k, Sigma_k) of a mixture, per point and component, the common
        constant dropped."""
        log_prob = np.empty((len(x), len(self.centers)))
        for k, (mu, cov) in enumerate(zip(self.centers, self.covariances)):
            diff = x - mu
            if cov.ndim == 1:  # diagonal
                log_prob[:, k] = -0.5 * ((diff ** 2 / cov).sum(1) + np.log(cov).sum())
            else:  # full: through the Cholesky factor, log|Sigma| = 2 sum log diag(L)
                chol = np.linalg.cholesky(cov)
                solved = np.linalg.solve(chol, diff.T)
                log_prob[:, k] = -0.5 * ((solved ** 2).sum(0) + 2 * np.log(np.diag(chol)).sum())
        return log_prob + np.log(self.weights)

    def to_frame(self) -> pd.DataFrame:
        k = len(self.centers)
        frame = pd.DataFrame({
            "cluster": np.arange(k),
            "method": self.method,
            "center": list(self.centers.astype(np.float64)),
            **({"inertia": self.inertia} if self.method == "kmeans" else {"lower_bound": self.lower_bound}),
            "n_iter": self.n_iter,
            "config": json.dumps(asdict(self.config)) if self.config else "",
        })
        if self.method == "gmm":  # a full covariance is stored flattened, d x d
            frame["variance"] = list(self.covariances.reshape(k, -1).astype(np.float64))
            frame["weight"] = self.weights
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ClusterModel:
        frame = frame.sort_values("cluster")
        method = str(frame["method"].iloc[0])
        centers = np.stack(frame["center"].to_numpy()).astype(np.float64)
        stored = frame["config"].iloc[0] if "config" in frame else ""
        config = ClusterConfig(**json.loads(stored)) if stored else None
        covariances = None
        if method == "gmm":
            covariances = np.stack(frame["variance"].to_numpy()).astype(np.float64)
            if config and config.covariance_type == "full":
                covariances = covariances.reshape(*centers.shape, centers.shape[1])
        return cls(
            method=method,
            centers=centers,
            covariances=covariances,
            weights=frame["weight"].to_numpy(np.float64) if method == "gmm" else None,
            inertia=float(frame["inertia"].iloc[0]) if "inertia" in frame else float("nan"),
            lower_bound=float(frame["lower_bound"].iloc[0]) if "lower_bound" in frame else float("nan"),
            n_iter=int(frame["n_iter"].iloc[0]),
            config=config,
        )


def fit_clusters(x: np.ndarray, config: ClusterConfig) -> ClusterModel:
    if not np.isfinite(x).all():
        raise DataError("cannot cluster: the representation contains NaN or Inf")
    if len(x) < config.n_clusters:
        raise DataError(f"cannot make {config.n_clusters} clusters from {len(x)} points")
    if config.method == "kmeans":
        km = KMeans(n_clusters=config.n_clusters, init="k-means++", n_init=config.n_init,
                    max_iter=config.max_iter, random_state=config.seed).fit(x)
        return ClusterModel("kmeans", km.cluster_centers_.astype(np.float64),
                            inertia=float(km.inertia_), n_iter=int(km.n_iter_), config=config)
    gm = GaussianMixture(n_components=config.n_clusters, covariance_type=config.covariance_type,
                         n_init=config.n_init, max_iter=config.max_iter,
                         random_state=config.seed, reg_covar=config.reg_covar).fit(x)
    return ClusterModel("gmm", gm.means_, covariances=gm.covariances_, weights=gm.weights_,
                        lower_bound=float(gm.lower_bound_), n_iter=int(gm.n_iter_), config=config)
