"""Seeds and spread, once per variant: ``<variant>/seed_spread`` holds the variant's metric table
for every seed (the run's own, plus ``extra_seeds``), each extra seed a whole new chain: VAE
training, representations, UMAP, clusters and metrics. Its metadata shows mean ± sd per row; the
paper comparison and the report read it.

With no extra seeds (the default, and the main command) it only restates ``clustering_metrics``
and costs nothing; the ``seeds`` profile adds two seeds.
"""

from dagster import AssetExecutionContext, AssetIn, AssetKey, Config, MetadataValue, Output
from pydantic import Field

from clustering_dag.core.variants import SPACES, VARIANTS
from clustering_dag.defs.assets.clustering import kmeans_key, representation_key
from clustering_dag.defs.assets.common import compute_or_reuse, keyed_output, table_metadata
from clustering_dag.defs.executors import QUEUE_TAG, VAE_QUEUE
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.resources import Accelerator
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.defs.versioning import asset_from_source, unversioned


class SeedsConfig(Config):
    extra_seeds: list[int] = Field(
        default=[], description="Run the variant's whole chain (VAE training, representations, UMAP, "
                                "clusters, metrics) again under each of these seeds; the table gets "
                                "mean ± sd over them and the run's own seed. [] = the run's seed only.")


@unversioned
def _spread_metadata(runs) -> dict:
    from clustering_dag.core.seeds import SPREAD_METRICS, mean_sd, spread

    table = spread(runs)
    shown = table[["representation", "dim", "n_seeds"]].copy()
    for m in SPREAD_METRICS:
        if f"{m}_mean" in table:
            digits = 1 if m == "chs" else 3
            shown[m] = [mean_sd(a, b, digits) for a, b in zip(table[f"{m}_mean"], table[f"{m}_sd"])]
    return {"spread": table_metadata(shown), "seeds": MetadataValue.json(sorted(set(runs["seed"].tolist()))),
            "n_seeds": int(runs["seed"].nunique())}


def build_seed_asset(variant: str):
    kmeans_ins = {f"kmeans_{s}": AssetIn(kmeans_key(variant, s)) for s in SPACES}

    @asset_from_source(
        key=AssetKey([variant, "seed_spread"]),
        partitions_def=dataset_partitions,
        ins={"raw_dataset": AssetIn(AssetKey("raw_dataset")),
             "noisy_test_set": AssetIn(AssetKey("noisy_test_set")),
             "trained_vae": AssetIn(AssetKey([variant, "trained_vae"])),
             "clustering_metrics": AssetIn(AssetKey([variant, "clustering_metrics"])),
             "manifold_representation": AssetIn(representation_key(variant, "manifold")),
             **kmeans_ins},
        io_manager_key="parquet_io_manager",
        group_name=f"clustering_{variant}",
        kinds={"tensorflow", "parquet"},
        runs=(Accelerator.select,),
        pool="vae_training",
        op_tags={QUEUE_TAG: VAE_QUEUE},  # it trains VAEs: GPU workers on the Celery executor
        description="The metric table under several seeds (config `extra_seeds`; the `seeds` profile "
                    "adds two): every row's mean ± sd. Each seed retrains the VAE and refits UMAP "
                    "and every clustering with the run's settings.",
    )
    def seed_spread(context: AssetExecutionContext, config: SeedsConfig, accelerator: Accelerator,
                    asset_storage: AssetStorage, raw_dataset, noisy_test_set, trained_vae,
                    clustering_metrics, manifold_representation, **kmeans) -> Output:
        main_seed = trained_vae.config.seed
        extra = [s for s in dict.fromkeys(config.extra_seeds) if s != main_seed]

        def run():
            import pandas as pd

            from clustering_dag.core.clustering import ClusterModel
            from clustering_dag.core.manifold import ManifoldConfig
            from clustering_dag.core.seeds import Chain, run_chain

            main = clustering_metrics.assign(
                seed=main_seed, vae_seconds=round(trained_vae.seconds, 2),
                active_latent_dims=trained_vae.diagnostics.get("active_dims", -1))
            if not extra:
                return main
            first = clustering_metrics.iloc[0]
            chain = Chain(
                vae=trained_vae.config,
                clusters={s: ClusterModel.from_frame(kmeans[f"kmeans_{s}"]).config for s in SPACES},
                manifold=ManifoldConfig(**manifold_representation.meta["umap"]),
                silhouette_sample=(int(first["silhouette_rows"])
                                   if first["silhouette_rows"] < first["test_rows"] else None))
            device = accelerator.select(context.log)
            runs = [run_chain(raw_dataset, noisy_test_set, chain, seed, device, context.log.info)
                    for seed in extra]
            return pd.concat([main, *runs], ignore_index=True)

        frame, reused = compute_or_reuse(
            context, asset_storage, run, config=config,
            inputs=[raw_dataset, noisy_test_set, trained_vae, clustering_metrics, manifold_representation,
                    *(kmeans[k] for k in sorted(kmeans))])
        return keyed_output(frame, reused, **_spread_metadata(frame))

    return seed_spread


seed_assets = [build_seed_asset(v) for v in VARIANTS]
