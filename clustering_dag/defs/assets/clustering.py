"""Clusters of every space, the metric tables and their checks, and the comparison with the paper.
``kmeans_original`` is shared; the rest exist once per training variant."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    Config,
    MetadataValue,
    Output,
    asset_check,
)
from pydantic import Field

from clustering_dag.core import configs
from clustering_dag.core.variants import SPACES, VARIANTS
from clustering_dag.defs.assets.common import table_metadata
from clustering_dag.defs.cached import asset_key, cached_asset, variant_of
from clustering_dag.defs.config import core_config, dagster_config
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.versioning import unversioned

NONE_IS_THE_DATASETS = {"n_clusters": "the dataset's: 10 for the paper's, else its registry entry or "
                                      "number of label classes"}
ClusteringConfig = dagster_config(configs.ClusterConfig, "ClusteringConfig", unset=NONE_IS_THE_DATASETS)
# The manifold stage's clusters: a full-covariance Gaussian mixture by default (N2D's is
# diagonal; full measured better on the UMAP spaces here), ten restarts.
MixtureConfig = dagster_config(configs.ClusterConfig, "MixtureConfig",
                               defaults={"method": "gmm", "covariance_type": "full"},
                               unset=NONE_IS_THE_DATASETS)


class MetricsConfig(Config):
    silhouette_sample: int | None = Field(
        default=20_000, ge=2,
        description="Silhouette (quadratic in rows) on a seeded sample of N test points when there are "
                    "more; None = all, whatever the size. The paper's 10,000 test points are all used.")


def fit(context: AssetExecutionContext, config, representation) -> Output:
    """Clusters fitted on the training split of ``representation``; stored as centroids (and a
    mixture's covariances and weights), no pickle."""
    from clustering_dag.core.clustering import fit_clusters

    k = config.n_clusters or representation.n_clusters
    cfg = core_config(configs.ClusterConfig, config, n_clusters=k)
    fitted = fit_clusters(representation.train_x, cfg)
    context.log.info(f"{cfg.method} on {representation.train_x.shape}: "
                     f"inertia {fitted.inertia:.4g} after {fitted.n_iter} iterations")
    return Output(fitted.to_frame(), metadata={
        "method": cfg.method, "n_clusters": cfg.n_clusters, "inertia": fitted.inertia,
        "n_iter": fitted.n_iter, "fit_rows": len(representation.train_x)})


@cached_asset(kinds={"scikit-learn"})
def kmeans_original(context: AssetExecutionContext, config: ClusteringConfig, original_representation):
    """k-means of the noisy pixels (the paper's 'original' row), fitted on the training split."""
    return fit(context, config, original_representation)


@cached_asset(per_variant=True, group="clustering", kinds={"scikit-learn"})
def kmeans_reconstructed(context: AssetExecutionContext, config: ClusteringConfig,
                         reconstructed_representation):
    """k-means of the VAE's reconstructions, fitted on the training split."""
    return fit(context, config, reconstructed_representation)


@cached_asset(per_variant=True, group="clustering", kinds={"scikit-learn"})
def kmeans_latent(context: AssetExecutionContext, config: ClusteringConfig, latent_representation):
    """k-means of the VAE's latent code, fitted on the training split."""
    return fit(context, config, latent_representation)


@cached_asset(per_variant=True, group="clustering", kinds={"scikit-learn"})
def kmeans_manifold(context: AssetExecutionContext, config: MixtureConfig, manifold_representation):
    """A Gaussian mixture in the manifold stage's space (UMAP of the latent code), fitted on the
    training codes UMAP was fitted on."""
    return fit(context, config, manifold_representation)


@cached_asset(per_variant=True, group="clustering")
def cluster_assignments(context: AssetExecutionContext, original_representation, reconstructed_representation,
                        latent_representation, manifold_representation, kmeans_original, kmeans_reconstructed,
                        kmeans_latent, kmeans_manifold, refined_representation):
    """Cluster of each noisy test point in each space (predicted from the fitted models; the
    refined classifier's most probable cluster)."""
    import numpy as np
    import pandas as pd

    from clustering_dag.core.clustering import ClusterModel

    spaces = {"original": (original_representation, kmeans_original),
              "reconstructed": (reconstructed_representation, kmeans_reconstructed),
              "latent": (latent_representation, kmeans_latent),
              "manifold": (manifold_representation, kmeans_manifold)}
    frame = pd.DataFrame({"row": np.arange(len(original_representation.test_x))})
    if original_representation.test_y is not None:
        frame["label"] = original_representation.test_y
    for space, (data, model) in spaces.items():
        frame[space] = ClusterModel.from_frame(model).predict(data.test_x)
    frame["refined"] = refined_representation.test_x.argmax(1)
    k = len(kmeans_latent)
    sizes = {s: np.bincount(frame[s], minlength=k).tolist() for s in SPACES}
    used = {s: sum(1 for n in counts if n) for s, counts in sizes.items()}
    for space, n in used.items():
        if n < k:
            hint = (f"; see {variant_of(context)}/trained_vae's check latent_code_used and its "
                    "active_latent_dims" if space != "original" else "")
            context.log.warning(f"{space}: the {len(frame)} test rows fall into {n} of {k} clusters{hint}")
    return Output(frame, metadata={"cluster_sizes": MetadataValue.json(sizes),
                                   "clusters_used": MetadataValue.json(used)})


@cached_asset(per_variant=True, group="clustering")
def clustering_metrics(context: AssetExecutionContext, config: MetricsConfig, cluster_assignments,
                       original_representation, reconstructed_representation, latent_representation,
                       manifold_representation, refined_representation, kmeans_latent):
    """DBI, Silhouette, Calinski-Harabasz on the noisy test set (the paper's table), plus
    accuracy, NMI, ARI and purity against the true labels. The refined row's internal metrics are
    computed on the classifier's cluster probabilities."""
    import pandas as pd

    from clustering_dag.core.metrics import space_row

    spaces = {"original": original_representation, "reconstructed": reconstructed_representation,
              "latent": latent_representation, "manifold": manifold_representation,
              "refined": refined_representation}
    rows = [space_row(space, data, cluster_assignments[space].to_numpy(), len(kmeans_latent),
                      config.silhouette_sample) for space, data in spaces.items()]
    for row in rows:
        context.log.info(f"{row['representation']}: {row}")
    frame = pd.DataFrame(rows)
    return Output(frame, metadata=_metrics_summary(frame))


@unversioned
def _metrics_summary(frame) -> dict:
    from clustering_dag.core.metrics import INTERNAL

    return {"table": table_metadata(frame),
            **{f"{r['representation']}_{m}": float(r[m]) for r in frame.to_dict("records") for m in INTERNAL}}


@unversioned
def metric_checks(frame, k: int):
    """The checks of a metric table: finite values, no empty cluster, the paper's claim; in words,
    which space lost clusters and what to try."""
    import numpy as np

    from clustering_dag.core.paper import latent_beats_original

    numeric = frame.select_dtypes("number")
    bad = [f"{rep}.{col}" for col in numeric for rep, v in zip(frame["representation"], numeric[col])
           if not np.isfinite(v)]
    sizes = {rep: int(v) for rep, v in zip(frame["representation"], frame["min_cluster_size"])}
    short = {r["representation"]: int(r["n_clusters_used"]) for r in frame.to_dict("records")
             if r["n_clusters_used"] < k}
    why = "; ".join(
        f"the {rep} space puts the test rows into {n} of {k} clusters"
        + (" (its VAE's code may have collapsed: see trained_vae's latent_code_used check and "
           "active_latent_dims; try `likelihood: gaussian` for tables, `kl_warmup`, `free_bits`)"
           if rep != "original" else " (the input itself has fewer distinct groups: lower `n_clusters`)")
        for rep, n in short.items())
    yield AssetCheckResult(check_name="metrics_finite", passed=not bad,
                           description=f"not finite: {', '.join(bad)}; {why}" if bad else None,
                           metadata={"non_finite": ", ".join(bad) or "none"})
    yield AssetCheckResult(check_name="clusters_non_empty", passed=all(v > 0 for v in sizes.values()),
                           description=why or None, metadata={"smallest_cluster": MetadataValue.json(sizes)})
    wins = latent_beats_original(frame)
    yield AssetCheckResult(check_name="latent_beats_original", passed=all(wins.values()),
                           severity=AssetCheckSeverity.WARN,
                           metadata={m: MetadataValue.bool(v) for m, v in wins.items()})


METRIC_CHECKS = {
    "metrics_finite": (True, "Every metric is a finite number."),
    "clusters_non_empty": (True, "No cluster is empty on the test set."),
    "latent_beats_original": (False, "The paper's claim: the latent code beats the original pixels on "
                                     "DBI, SS and CHS (a warning, not a failure)."),
}


def _metric_check(name: str, variant: str, blocking: bool, description: str):
    @asset_check(asset=asset_key("clustering_metrics", variant), name=name, blocking=blocking,
                 description=description, partitions_def=dataset_partitions,
                 additional_ins={"kmeans_latent": AssetIn(asset_key("kmeans_latent", variant))})
    def check(clustering_metrics, kmeans_latent) -> AssetCheckResult:
        return next(c for c in metric_checks(clustering_metrics, len(kmeans_latent)) if c.check_name == name)

    return check


metric_table_checks = [_metric_check(name, v, blocking, about)
                       for v in VARIANTS for name, (blocking, about) in METRIC_CHECKS.items()]


@cached_asset(per_variant=True, group="clustering")
def paper_comparison(context: AssetExecutionContext, seed_spread, trained_vae, original_representation,
                     kmeans_latent):
    """Our internal metrics (mean and sd over the seeds of seed_spread) beside the paper's, with the
    run's settings (profile, rows, epochs); at the paper's settings, relative differences and
    whether its ranking (latent best on all three) holds; otherwise marked not comparable. The
    manifold row has no paper value."""
    from clustering_dag.core.paper import compare_with_paper, describe_settings, ranking_summary
    from clustering_dag.profiles import matching_profile

    first, vae = seed_spread.iloc[0], trained_vae.config  # the config: no TensorFlow
    source_rows = original_representation.meta.get("source_rows")
    rows = [int(first["train_rows"]), int(first["test_rows"])]
    settings = {"train_rows": rows[0], "test_rows": rows[1], "all_rows": source_rows in (None, rows),
                "epochs": vae.epochs, "batch_size": vae.batch_size, "hidden": list(vae.hidden),
                "latent_dim": vae.latent_dim, "n_clusters": len(kmeans_latent),
                "sigma": original_representation.meta.get("noise", {}).get("sigma"),
                "n_seeds": int(seed_spread["seed"].nunique())}
    settings["profile"] = matching_profile(settings, variant_of(context))
    table = compare_with_paper(seed_spread, context.partition_key, settings)
    summary = ranking_summary(table)
    described = describe_settings(settings, table["comparable"].all() if "paper" in table else None)
    context.log.info(described)
    if summary.get("ranking_matches_paper") is False:
        context.log.warning(f"ranking differs from the paper: ours {summary['ours_best']}, "
                            f"paper {summary['paper_best']}")
    return Output(table, metadata={
        "settings": described, "table": table_metadata(table), "summary": MetadataValue.json(summary),
        "n_seeds": int(table["n_seeds"].max()), "latent_best_on_all": summary["latent_best_on_all"],
        "ranking_matches_paper": summary.get("ranking_matches_paper", "n/a (no paper numbers)")})
