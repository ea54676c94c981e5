"""Seeds and spread: one variant's whole chain (autoencoder training, its two representations,
the manifold stage, the clusters of every space, the refined classifier, their metrics) run again
under another seed, and the mean and standard deviation of every metric over the seeds.

A seed replaces every seed of the chain: the autoencoder's initialisation, batch order and
sampled code, UMAP's, the cluster initialisations and the classifier's. The data stay as they
are, the noise of the test set included. Run under the pipeline's own seeds (1234 throughout by
default), the chain gives the pipeline's ``clustering_metrics`` row for row: it is the same code
path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from clustering_dag.core.arrays import Splits
from clustering_dag.core.clustering import ClusterConfig, fit_clusters
from clustering_dag.core.configs import RefineConfig
from clustering_dag.core.manifold import ManifoldConfig
from clustering_dag.core.metrics import space_row
from clustering_dag.core.variants import SPACES, VAEConfig

# The metrics summarised over seeds (internal, then label metrics where there are labels).
SPREAD_METRICS = ("dbi", "silhouette", "chs", "accuracy", "nmi", "ari", "purity")


@dataclass(frozen=True)
class Chain:
    """What one run of a variant used: the autoencoder's config, each clustered space's config,
    the manifold stage's, the refined classifier's and the silhouette sample (None: every test
    row)."""

    vae: VAEConfig
    clusters: dict[str, ClusterConfig]
    manifold: ManifoldConfig
    refine: RefineConfig
    silhouette_sample: int | None = None

    def __post_init__(self):
        missing = [s for s in SPACES if s != "refined" and s not in self.clusters]
        if missing:
            raise ValueError(f"no clustering config for {missing}")


def run_chain(raw: Splits, noisy: Splits, chain: Chain, seed: int, device: str = "/CPU:0",
              log=None) -> pd.DataFrame:
    """The metrics table of one seed: a row per space, with ``seed``, the VAE's training seconds
    and its active latent dimensions."""
    from clustering_dag.core.manifold import embed, fit_sample
    from clustering_dag.core.refine import refine, refined_representation
    from clustering_dag.core.vae import representations, train_vae

    say = log or (lambda _: None)
    start = time.perf_counter()
    vae = replace(chain.vae, seed=seed)
    trained = train_vae(vae, vae.training_data(raw, noisy).train_x, device=device,
                        targets=vae.training_targets(raw, noisy).train_x)
    recon, latent = representations(trained, raw, noisy)
    say(f"seed {seed}: autoencoder trained in {trained.seconds:.1f} s, "
        f"{trained.diagnostics['active_dims']} of {vae.latent_dim} latent dimensions active")
    manifold_cfg = replace(chain.manifold, seed=seed)
    spaces = {"original": noisy, "reconstructed": recon, "latent": latent,
              "manifold": embed(latent, manifold_cfg)}
    rows, mixture = [], None
    for name in SPACES:
        if name == "refined":
            manifold = spaces["manifold"]
            classifier = refine(replace(chain.refine, seed=seed), noisy,
                                fit_sample(len(noisy.train_x), manifold_cfg),
                                mixture.predict(manifold.train_x), mixture.confidence(manifold.train_x),
                                log=say, device=device)
            data = refined_representation(classifier, noisy)
            clusters, k = data.test_x.argmax(1), chain.refine.n_clusters
        else:
            data, cfg = spaces[name], replace(chain.clusters[name], seed=seed)
            model = fit_clusters(data.train_x, cfg)
            mixture = model if name == "manifold" else mixture
            clusters, k = model.predict(data.test_x), cfg.n_clusters
        row = {"seed": seed, **space_row(name, data, clusters, k, chain.silhouette_sample)}
        say(f"seed {seed}, {name}: " + ", ".join(f"{m} {row[m]:.3f}" for m in SPREAD_METRICS if m in row))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["vae_seconds"] = round(trained.seconds, 2)
    frame["active_latent_dims"] = trained.diagnostics["active_dims"]
    frame["seconds"] = round(time.perf_counter() - start, 2)
    return frame


def spread(runs: pd.DataFrame) -> pd.DataFrame:
    """Per space (in pipeline order): ``n_seeds`` and, for every metric present, its mean and
    standard deviation over the seeds (``<metric>_mean``, ``<metric>_sd``; sd NaN for one seed)."""
    metrics = [m for m in SPREAD_METRICS if m in runs]
    grouped = runs.groupby("representation", sort=False)
    out = grouped[["dim"]].first()
    out["n_seeds"] = grouped["seed"].nunique()
    for m in metrics:
        out[f"{m}_mean"] = grouped[m].mean()
        out[f"{m}_sd"] = grouped[m].std(ddof=1)
    order = [s for s in SPACES if s in out.index] + [s for s in out.index if s not in SPACES]
    return out.loc[order].reset_index()


def mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """``0.912 ± 0.014``; the mean alone when there is no spread to show (one seed)."""
    if not np.isfinite(mean):
        return "nan"
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")
