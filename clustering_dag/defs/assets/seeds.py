"""Seeds and spread, once per variant: ``<variant>/seed_spread`` holds the variant's metric table
for every seed (the run's own, plus ``extra_seeds``), each extra seed a whole new chain: VAE
training, representations, UMAP, clusters and metrics. Its metadata shows mean ± sd per row; the
paper comparison and the report read it.

With no extra seeds (the default, and the main command) it only restates ``clustering_metrics``
and costs nothing; the ``seeds`` profile adds two.
"""

from dagster import AssetExecutionContext, Config, MetadataValue, Output
from pydantic import Field

from clustering_dag.defs.assets.common import table_metadata
from clustering_dag.defs.cached import cached_asset
from clustering_dag.defs.executors import QUEUE_TAG, VAE_QUEUE
from clustering_dag.defs.resources import Accelerator
from clustering_dag.defs.versioning import unversioned


class SeedsConfig(Config):
    extra_seeds: list[int] = Field(
        default=[], description="Run the variant's whole chain (autoencoder training, representations, "
                                "UMAP, clusters, refined classifier, metrics) again under each of these "
                                "seeds; the table gets mean ± sd over them and the run's own seed. [] = "
                                "the run's seed only.")


@cached_asset(per_variant=True, group="clustering", kinds={"tensorflow"}, runs=(Accelerator.select,),
              pool="vae_training", op_tags={QUEUE_TAG: VAE_QUEUE})  # it trains VAEs: the GPU workers
def seed_spread(context: AssetExecutionContext, config: SeedsConfig, accelerator: Accelerator, raw_dataset,
                noisy_test_set, trained_vae, clustering_metrics, manifold_representation, kmeans_original,
                kmeans_reconstructed, kmeans_latent, kmeans_manifold, refined_classifier):
    """The metric table under several seeds (config `extra_seeds`; the `seeds` profile adds two):
    every row's mean ± sd. Each seed retrains the autoencoder and the refined classifier and refits
    UMAP and every clustering with the run's settings, read from the upstream values."""
    import pandas as pd

    from clustering_dag.core.clustering import ClusterModel
    from clustering_dag.core.configs import ManifoldConfig
    from clustering_dag.core.seeds import Chain, run_chain

    main_seed = trained_vae.config.seed
    extra = [s for s in dict.fromkeys(config.extra_seeds) if s != main_seed]
    main = clustering_metrics.assign(seed=main_seed, vae_seconds=round(trained_vae.seconds, 2),
                                     active_latent_dims=trained_vae.diagnostics.get("active_dims", -1))
    if extra:
        models = {"original": kmeans_original, "reconstructed": kmeans_reconstructed,
                  "latent": kmeans_latent, "manifold": kmeans_manifold}
        first = clustering_metrics.iloc[0]
        chain = Chain(vae=trained_vae.config,
                      clusters={s: ClusterModel.from_frame(m).config for s, m in models.items()},
                      manifold=ManifoldConfig(**manifold_representation.meta["umap"]),
                      refine=refined_classifier.config,
                      silhouette_sample=(int(first["silhouette_rows"])
                                         if first["silhouette_rows"] < first["test_rows"] else None))
        device = accelerator.select(context.log)
        runs = [run_chain(raw_dataset, noisy_test_set, chain, s, device, context.log.info) for s in extra]
        main = pd.concat([main, *runs], ignore_index=True)
    return Output(main, metadata=_spread_metadata(main))


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
