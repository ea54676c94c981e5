"""Clustering of each representation, the metric tables, the comparison with the paper, and the
asset checks on them. Built once per training variant; ``kmeans_original`` is shared."""


from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Config,
    MetadataValue,
    Output,
)
from pydantic import Field

from clustering_dag.core.variants import REPRESENTATIONS, SPACES, VARIANTS
from clustering_dag.defs.assets.common import compute_or_reuse, keyed_output, table_metadata
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.defs.versioning import asset_from_source, unversioned


class ClusteringConfig(Config):
    """The paper's k-means by default; ``method: gmm`` fits a diagonal Gaussian mixture instead."""

    method: str = Field(default="kmeans", pattern="^(kmeans|gmm)$")
    n_clusters: int | None = Field(
        default=None, ge=2, description="None = the dataset's: 10 for the paper's, else its registry entry "
                                        "or number of label classes.")
    n_init: int = Field(default=10, ge=1)
    max_iter: int = Field(default=500, ge=1)
    seed: int = 1234
    covariance_type: str = Field(
        default="diag", pattern="^(diag|full)$",
        description="gmm only: per-cluster variances (diag) or full covariance matrices (full).")


class MixtureConfig(ClusteringConfig):
    """The manifold stage's clusters: a (diagonal) Gaussian mixture by default, as in N2D."""

    method: str = Field(default="gmm", pattern="^(kmeans|gmm)$")


class MetricsConfig(Config):
    silhouette_sample: int | None = Field(
        default=20_000, ge=2,
        description="Silhouette (quadratic in rows) on a seeded sample of N test points when there are "
                    "more; None = all, whatever the size. The paper's 10,000 test points are all used.")


def representation_key(variant: str, rep: str) -> AssetKey:
    """``original_representation`` is shared; the VAE's are per variant."""
    name = f"{rep}_representation"
    return AssetKey(name) if rep == "original" else AssetKey([variant, name])


def kmeans_key(variant: str, rep: str) -> AssetKey:
    return AssetKey("kmeans_original") if rep == "original" else AssetKey([variant, f"kmeans_{rep}"])


def build_kmeans_asset(key: AssetKey, rep_key: AssetKey, group: str, settings: type = ClusteringConfig):
    @asset_from_source(
        key=key,
        partitions_def=dataset_partitions,
        ins={"representation": AssetIn(rep_key)},
        io_manager_key="parquet_io_manager",
        group_name=group,
        kinds={"scikit-learn", "parquet"},
        description=f"Clusters fitted on the training split of {rep_key.to_user_string()}; "
                    "stored as centroids (no pickle).",
    )
    def kmeans(context: AssetExecutionContext, config: settings, representation,
               asset_storage: AssetStorage) -> Output:
        from clustering_dag.core.clustering import ClusterConfig, ClusterModel, fit_clusters

        # Resolved before hashing: an explicit 10 and the default 10 are the same fit.
        config = config.model_copy(update={"n_clusters": config.n_clusters or representation.n_clusters})
        cfg = ClusterConfig(**config.model_dump())

        def fit():
            fitted = fit_clusters(representation.train_x, cfg)
            context.log.info(f"{cfg.method} on {representation.train_x.shape}: "
                             f"inertia {fitted.inertia:.4g} after {fitted.n_iter} iterations")
            return fitted.to_frame()

        frame, reused = compute_or_reuse(context, asset_storage, fit, config=config,
                                         inputs=[representation])
        model = ClusterModel.from_frame(frame)
        return keyed_output(frame, reused, **{
            "method": cfg.method, "n_clusters": cfg.n_clusters, "inertia": model.inertia,
            "n_iter": model.n_iter, "fit_rows": len(representation.train_x)})

    return kmeans


@unversioned
def metric_checks(frame, k: int):
    """The asset checks of a metrics table: finite values, no empty cluster, the paper's claim."""
    import numpy as np

    from clustering_dag.core.paper import latent_beats_original

    numeric = frame.select_dtypes("number")
    bad = [f"{rep}.{col}" for col in numeric for rep, v in zip(frame["representation"], numeric[col])
           if not np.isfinite(v)]
    sizes = {rep: int(v) for rep, v in zip(frame["representation"], frame["min_cluster_size"])}
    short = {r["representation"]: int(r["n_clusters_used"]) for r in frame.to_dict("records")
             if r["n_clusters_used"] < k}
    # In words: which space lost clusters, and what to try.
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
                           description=why or None,
                           metadata={"smallest_cluster": MetadataValue.json(sizes)})
    wins = latent_beats_original(frame)
    yield AssetCheckResult(check_name="latent_beats_original", passed=all(wins.values()),
                           severity=AssetCheckSeverity.WARN,
                           metadata={m: MetadataValue.bool(v) for m, v in wins.items()})


@unversioned
def _metrics_summary(frame) -> dict:
    from clustering_dag.core.metrics import INTERNAL

    return {"table": table_metadata(frame),
            **{f"{r['representation']}_{m}": float(r[m]) for r in frame.to_dict("records") for m in INTERNAL}}


def build_cluster_assets(variant: str) -> list:
    group = f"clustering_{variant}"
    rep_ins = {f"{rep}_representation": AssetIn(representation_key(variant, rep)) for rep in REPRESENTATIONS}
    km_ins = {f"kmeans_{rep}": AssetIn(kmeans_key(variant, rep)) for rep in REPRESENTATIONS}
    space_ins = {**rep_ins, "manifold_representation": AssetIn(representation_key(variant, "manifold"))}
    space_km_ins = {**km_ins, "kmeans_manifold": AssetIn(kmeans_key(variant, "manifold"))}
    metrics_key = AssetKey([variant, "clustering_metrics"])

    @asset_from_source(
        key=AssetKey([variant, "cluster_assignments"]),
        partitions_def=dataset_partitions,
        ins={**space_ins, **space_km_ins},
        io_manager_key="parquet_io_manager",
        group_name=group,
        kinds={"parquet"},
        description="Cluster of each noisy test point in each space (predicted from the fitted models).",
    )
    def cluster_assignments(context: AssetExecutionContext, asset_storage: AssetStorage,
                            **inputs) -> Output:
        import numpy as np

        def predict():
            import pandas as pd

            from clustering_dag.core.clustering import ClusterModel

            test_y = inputs["original_representation"].test_y
            frame = pd.DataFrame({"row": np.arange(len(inputs["original_representation"].test_x))})
            if test_y is not None:
                frame["label"] = test_y
            for rep in SPACES:
                model = ClusterModel.from_frame(inputs[f"kmeans_{rep}"])
                frame[rep] = model.predict(inputs[f"{rep}_representation"].test_x)
            return frame

        frame, reused = compute_or_reuse(context, asset_storage, predict,
                                         inputs=[inputs[k] for k in sorted(inputs)])
        k = len(inputs["kmeans_latent"])
        sizes = {rep: np.bincount(frame[rep], minlength=k).tolist() for rep in SPACES}
        used = {rep: sum(1 for n in counts if n) for rep, counts in sizes.items()}
        for rep, n in used.items():
            if n < k:
                hint = (f"; see {variant}/trained_vae's check latent_code_used and its "
                        "active_latent_dims" if rep != "original" else "")
                context.log.warning(f"{rep}: the {len(frame)} test rows fall into {n} of {k} "
                                    f"clusters{hint}")
        return keyed_output(frame, reused, cluster_sizes=MetadataValue.json(sizes),
                            clusters_used=MetadataValue.json(used))

    @asset_from_source(
        key=metrics_key,
        partitions_def=dataset_partitions,
        ins={"cluster_assignments": AssetIn(AssetKey([variant, "cluster_assignments"])), **space_ins,
             "kmeans_latent": km_ins["kmeans_latent"]},
        io_manager_key="parquet_io_manager",
        group_name=group,
        kinds={"parquet"},
        description="DBI, Silhouette, Calinski-Harabasz on the noisy test set (the paper's table), "
                    "plus accuracy, NMI, ARI and purity against the true labels.",
        check_specs=[
            AssetCheckSpec("metrics_finite", asset=metrics_key, blocking=True,
                           description="Every metric is a finite number."),
            AssetCheckSpec("clusters_non_empty", asset=metrics_key, blocking=True,
                           description="No cluster is empty on the test set."),
            AssetCheckSpec("latent_beats_original", asset=metrics_key,
                           description="The paper's claim: the latent code beats the original "
                                       "pixels on DBI, SS and CHS (a warning, not a failure)."),
        ],
    )
    def clustering_metrics(context: AssetExecutionContext, config: MetricsConfig,
                           asset_storage: AssetStorage, cluster_assignments, **inputs):
        def score():
            import pandas as pd

            from clustering_dag.core.metrics import space_row

            k = len(inputs["kmeans_latent"])
            rows = []
            for rep in SPACES:
                row = space_row(rep, inputs[f"{rep}_representation"], cluster_assignments[rep].to_numpy(),
                                k, config.silhouette_sample)
                rows.append(row)
                context.log.info(f"{rep}: {row}")
            return pd.DataFrame(rows)

        frame, reused = compute_or_reuse(
            context, asset_storage, score, config=config,
            inputs=[cluster_assignments, *(inputs[k] for k in sorted(inputs))])
        yield keyed_output(frame, reused, **_metrics_summary(frame))
        yield from metric_checks(frame, len(inputs["kmeans_latent"]))

    @asset_from_source(
        key=AssetKey([variant, "paper_comparison"]),
        partitions_def=dataset_partitions,
        ins={"seed_spread": AssetIn(AssetKey([variant, "seed_spread"])),
             "trained_vae": AssetIn(AssetKey([variant, "trained_vae"])),
             "original_representation": rep_ins["original_representation"],
             "kmeans_latent": km_ins["kmeans_latent"]},
        io_manager_key="parquet_io_manager",
        group_name=group,
        kinds={"parquet"},
        description="Our internal metrics (mean and sd over the seeds of seed_spread) beside the paper's, "
                    "with the run's settings (profile, rows, epochs); at the paper's settings, relative "
                    "differences and whether its ranking (latent best on all three) holds; otherwise "
                    "marked not comparable. The manifold row has no paper value.",
    )
    def paper_comparison(context: AssetExecutionContext, asset_storage: AssetStorage, seed_spread,
                         trained_vae, original_representation, kmeans_latent) -> Output:
        from clustering_dag.profiles import matching_profile

        first = seed_spread.iloc[0]
        vae = trained_vae.config  # read from the weights file's attributes: no TensorFlow
        source_rows = original_representation.meta.get("source_rows")
        settings = {"train_rows": int(first["train_rows"]), "test_rows": int(first["test_rows"]),
                    "all_rows": source_rows in (None, [int(first["train_rows"]), int(first["test_rows"])]),
                    "epochs": vae.epochs, "batch_size": vae.batch_size, "hidden": list(vae.hidden),
                    "latent_dim": vae.latent_dim, "n_clusters": len(kmeans_latent),
                    "sigma": original_representation.meta.get("noise", {}).get("sigma")}
        settings["profile"] = matching_profile(settings)

        def compare():
            from clustering_dag.core.paper import compare_with_paper

            return compare_with_paper(seed_spread, context.partition_key, settings)

        table, reused = compute_or_reuse(
            context, asset_storage, compare,
            inputs=[seed_spread, trained_vae, original_representation, kmeans_latent])
        from clustering_dag.core.paper import describe_settings, ranking_summary

        summary = ranking_summary(table)
        described = describe_settings(settings, table["comparable"].all() if "paper" in table else None)
        context.log.info(described)
        if summary.get("ranking_matches_paper") is False:
            context.log.warning(f"ranking differs from the paper: ours {summary['ours_best']}, "
                                f"paper {summary['paper_best']}")
        return keyed_output(table, reused, **{
            "settings": described,
            "table": table_metadata(table),
            "summary": MetadataValue.json(summary),
            "n_seeds": int(table["n_seeds"].max()),
            "latent_best_on_all": summary["latent_best_on_all"],
            "ranking_matches_paper": summary.get("ranking_matches_paper", "n/a (no paper numbers)"),
        })

    kmeans_defs = [build_kmeans_asset(kmeans_key(variant, rep), representation_key(variant, rep), group,
                                      MixtureConfig if rep == "manifold" else ClusteringConfig)
                   for rep in SPACES if rep != "original"]
    return [*kmeans_defs, cluster_assignments, clustering_metrics, paper_comparison]


kmeans_original = build_kmeans_asset(AssetKey("kmeans_original"), AssetKey("original_representation"),
                                     "data")
cluster_assets = [kmeans_original, *(a for v in VARIANTS for a in build_cluster_assets(v))]
