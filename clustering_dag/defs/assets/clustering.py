"""The clusters of every space of the registry (``clusters_<space>``: k-means or a Gaussian
mixture, as the space says), each test row's cluster in every space, the metric tables and their
checks, and the comparison with the paper. A shared space's clusters (``clusters_original``) are
shared; the rest exist once per training variant."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    MetadataValue,
    Output,
)
from pydantic import Field

from clustering_dag.core import configs
from clustering_dag.core.spaces import SPACES, Space
from clustering_dag.defs.assets.common import table_metadata
from clustering_dag.defs.cached import cached_asset, check_per_variant, flat, variant_of
from clustering_dag.defs.config import core_config, dagster_config
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


# The Dagster config of each way of clustering a space.
CLUSTERING_CONFIGS = {"kmeans": ClusteringConfig, "mixture": MixtureConfig}


def clusters_asset(space: Space):
    """The asset of ``space``'s clusters, fitted on its training split; stored as centroids (and a
    mixture's covariances and weights), no pickle."""
    @cached_asset(name=space.clustering, per_variant=not space.shared,
                  group="data" if space.shared else "clustering", reads=(space.representation,),
                  kinds={"scikit-learn"},
                  description=f"{'A Gaussian mixture' if space.clusters == 'mixture' else 'k-means'} "
                              f"of the {space.name} space ({space.about}), fitted on the training split.")
    def clusters(context: AssetExecutionContext, config: CLUSTERING_CONFIGS[space.clusters], **inputs):
        from clustering_dag.core.chain import fit_space

        representation = inputs[space.representation]
        k = config.n_clusters or representation.n_clusters
        cfg = core_config(configs.ClusterConfig, config, n_clusters=k)
        fitted = fit_space(representation, cfg)
        score = "inertia" if cfg.method == "kmeans" else "lower_bound"
        value = fitted.inertia if cfg.method == "kmeans" else fitted.lower_bound
        context.log.info(f"{cfg.method} on {representation.train_x.shape}: {score} {value:.4g} after "
                         f"{fitted.n_iter} iterations")
        return Output(fitted.to_frame(), metadata={
            "method": cfg.method, "n_clusters": cfg.n_clusters, score: value,
            "n_iter": fitted.n_iter, "fit_rows": len(representation.train_x)})

    return clusters


CLUSTERED = [space for space in SPACES.values() if space.clustering]
clusters_assets = [a for space in CLUSTERED for a in flat(clusters_asset(space))]


def space_assets(spaces: list[Space]) -> tuple[str, ...]:
    """The assets holding ``spaces``' rows and clusters."""
    return tuple(n for s in spaces for n in (s.representation, s.clustering) if n)


def assignments_asset(spaces: list[Space]):
    reads = space_assets(spaces)
    shared = {s.name for s in spaces if s.shared}

    @cached_asset(per_variant=True, group="clustering", reads=reads)
    def cluster_assignments(context: AssetExecutionContext, **inputs):
        """Cluster of each noisy test point in each space (predicted from the fitted clusters; a
        classifier's space, its most probable class)."""
        import numpy as np
        import pandas as pd

        from clustering_dag.core.chain import assign, space_k

        first = inputs[spaces[0].representation]
        frame = pd.DataFrame({"row": np.arange(len(first.test_x))})
        if first.test_y is not None:
            frame["label"] = first.test_y
        for space in spaces:
            frame[space.name] = assign(space, inputs[space.representation], inputs.get(space.clustering))
        ks = {s.name: space_k(s, inputs) for s in spaces}
        sizes = {s.name: np.bincount(frame[s.name], minlength=ks[s.name]).tolist() for s in spaces}
        used = {s: sum(1 for n in counts if n) for s, counts in sizes.items()}
        for space, n in used.items():
            k = ks[space]
            if n < k:
                hint = (f"; see {variant_of(context)}/trained_vae's check latent_code_used and its "
                        "active_latent_dims" if space not in shared else "")
                context.log.warning(f"{space}: the {len(frame)} test rows fall into {n} of {k} "
                                    f"clusters{hint}")
        return Output(frame, metadata={"cluster_sizes": MetadataValue.json(sizes),
                                       "clusters_used": MetadataValue.json(used)})

    return cluster_assignments


def metrics_asset(spaces: list[Space]):
    reads = space_assets(spaces)

    @cached_asset(per_variant=True, group="clustering", reads=reads)
    def clustering_metrics(context: AssetExecutionContext, config: MetricsConfig, cluster_assignments,
                           trained_vae, **inputs):
        """DBI, Silhouette, Calinski-Harabasz on the noisy test set (the paper's table), plus
        accuracy, NMI, ARI and purity against the true labels, a row per space. A classifier's
        space (refined) is measured on its cluster probabilities. Its `settings` say which run
        settings (profile, rows, epochs) the table comes from."""
        import pandas as pd

        from clustering_dag.core.chain import metric_rows
        from clustering_dag.core.paper import describe_settings

        rows = metric_rows(spaces, inputs, cluster_assignments, config.silhouette_sample)
        for row in rows:
            context.log.info(f"{row['representation']}: {row}")
        frame = pd.DataFrame(rows)
        settings = run_settings(context, frame, trained_vae, inputs["original_representation"],
                                ks=len(inputs[CLUSTERED[0].clustering]))
        metadata = {"settings": describe_settings(settings, None), **_metrics_summary(frame)}
        return Output(frame, metadata=metadata)

    return clustering_metrics


cluster_assignments = assignments_asset(list(SPACES.values()))
clustering_metrics = metrics_asset(list(SPACES.values()))


# The metrics that are also a number of their own in the metadata (``<space>_<metric>``, e.g.
# ``manifold_accuracy``): Dagster plots each over the runs of the asset. The label metrics exist
# where the dataset has labels.
PLOTTED = ("dbi", "silhouette", "chs", "accuracy", "nmi", "ari")


@unversioned
def _metrics_summary(frame) -> dict:
    import numpy as np

    return {"table": table_metadata(frame),
            **{f"{r['representation']}_{m}": MetadataValue.float(float(r[m]))
               for r in frame.to_dict("records") for m in PLOTTED
               if m in r and r[m] is not None and np.isfinite(r[m])}}


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
           if rep in SPACES and not SPACES[rep].shared
           else " (the input itself has fewer distinct groups: lower `n_clusters`)")
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


def _metric_check(name: str, blocking: bool, description: str) -> list:
    def check(clustering_metrics, **clusters) -> AssetCheckResult:
        k = len(next(iter(clusters.values())))  # the number of clusters asked for
        return next(c for c in metric_checks(clustering_metrics, k) if c.check_name == name)

    check.__doc__ = description
    return check_per_variant(check, asset="clustering_metrics", reads=(CLUSTERED[0].clustering,),
                             name=name, blocking=blocking)


metric_table_checks = [c for name, (blocking, about) in METRIC_CHECKS.items()
                       for c in _metric_check(name, blocking, about)]


def run_settings(context: AssetExecutionContext, table, trained_vae, original_representation, ks: int,
                 n_seeds: int = 1) -> dict:
    """The settings a metric table (``table``: its rows say how many were fitted and scored) was
    made under, and the profile they match."""
    from clustering_dag.profiles import matching_profile

    first, vae = table.iloc[0], trained_vae.config  # the config: no TensorFlow
    source_rows = original_representation.meta.get("source_rows")
    rows = [int(first["train_rows"]), int(first["test_rows"])]
    settings = {"train_rows": rows[0], "test_rows": rows[1], "all_rows": source_rows in (None, rows),
                "epochs": vae.epochs, "batch_size": vae.batch_size, "hidden": list(vae.hidden),
                "latent_dim": vae.latent_dim, "n_clusters": ks,
                "sigma": original_representation.meta.get("noise", {}).get("sigma"), "n_seeds": n_seeds}
    return {**settings, "profile": matching_profile(settings, variant_of(context))}


@cached_asset(per_variant=True, group="clustering")
def paper_comparison(context: AssetExecutionContext, seed_spread, trained_vae, original_representation,
                     clusters_latent):
    """Our internal metrics (mean and sd over the seeds of seed_spread) beside the paper's, with the
    run's settings (profile, rows, epochs); at the paper's settings, relative differences and
    whether its ranking (latent best on all three) holds; otherwise marked not comparable. The
    manifold row has no paper value."""
    from clustering_dag.core.paper import compare_with_paper, describe_settings, ranking_summary

    settings = run_settings(context, seed_spread, trained_vae, original_representation,
                            len(clusters_latent), n_seeds=int(seed_spread["seed"].nunique()))
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
