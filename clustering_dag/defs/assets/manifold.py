"""The manifold stage of each variant (beyond the paper): UMAP of the latent code, fitted on the
training split and applied to the noisy test split (the N2D recipe); ``kmeans_manifold`` then fits
a Gaussian mixture in that space (clustering.py), and its rows join the metric tables."""

import time

from dagster import AssetExecutionContext, Output

from clustering_dag.core import configs
from clustering_dag.defs.cached import cached_asset
from clustering_dag.defs.config import core_config, dagster_config

ManifoldConfig = dagster_config(configs.ManifoldConfig, "ManifoldConfig")


@cached_asset(per_variant=True, group="clustering", kinds={"umap"})
def manifold_representation(context: AssetExecutionContext, config: ManifoldConfig, latent_representation):
    """UMAP of the latent code (N2D): fitted on a seeded sample of the training codes, applied to
    every noisy test code. Beyond the paper."""
    from clustering_dag.core.manifold import embed

    start = time.perf_counter()
    embedded = embed(latent_representation, core_config(configs.ManifoldConfig, config), log=context.log.info)
    context.log.info(f"UMAP {latent_representation.dim} -> {config.n_components} dimensions, fitted on "
                     f"{embedded.meta['fit_rows']:,} of {embedded.meta['of_train_rows']:,} training codes, "
                     f"in {time.perf_counter() - start:.1f} s")
    return Output(embedded, metadata={"dim": embedded.dim, "fit_rows": embedded.meta["fit_rows"],
                                      "of_train_rows": embedded.meta["of_train_rows"]})
