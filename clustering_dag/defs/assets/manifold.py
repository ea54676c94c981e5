"""The manifold stage of each variant (beyond the paper): UMAP of the latent code, fitted on the
training split and applied to the noisy test split (the N2D recipe); ``kmeans_manifold`` then fits
a Gaussian mixture in that space (clustering.py), and its rows join the metric tables."""

from dagster import AssetExecutionContext, AssetIn, AssetKey, Config, Output
from pydantic import Field

from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.assets.common import compute_or_reuse, keyed_output
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.defs.versioning import asset_from_source


class ManifoldConfig(Config):
    """UMAP of the latent code (umap-learn): N2D's settings by default."""

    n_components: int = Field(default=10, ge=1, description="Dimensions of the embedding.")
    n_neighbors: int = Field(default=20, ge=2)
    min_dist: float = Field(default=0.0, ge=0.0)
    fit_rows: int | None = Field(
        default=20_000, ge=3,
        description="UMAP is fitted on a seeded sample of this many training codes (its cost grows "
                    "faster than the rows; seeded UMAP runs on one thread); None = every row.")
    n_epochs: int | None = Field(default=None, ge=1,
                                 description="UMAP's optimisation epochs; None = its default "
                                             "(500 below 10,000 rows, else 200).")
    seed: int = 1234


def build_manifold_asset(variant: str):
    @asset_from_source(
        key=AssetKey([variant, "manifold_representation"]),
        partitions_def=dataset_partitions,
        ins={"latent_representation": AssetIn(AssetKey([variant, "latent_representation"]))},
        io_manager_key="parquet_io_manager",
        group_name=f"clustering_{variant}",
        kinds={"umap", "parquet"},
        description="UMAP of the latent code (N2D): fitted on a seeded sample of the training codes, "
                    "applied to every noisy test code. Beyond the paper.",
    )
    def manifold_representation(context: AssetExecutionContext, config: ManifoldConfig,
                                latent_representation, asset_storage: AssetStorage) -> Output:
        def fit():
            import time

            from clustering_dag.core.manifold import ManifoldConfig as Settings
            from clustering_dag.core.manifold import embed

            start = time.perf_counter()
            embedded = embed(latent_representation, Settings(**config.model_dump()))
            context.log.info(f"UMAP {latent_representation.dim} -> {config.n_components} dimensions, "
                             f"fitted on {embedded.meta['fit_rows']:,} of "
                             f"{embedded.meta['of_train_rows']:,} training codes, "
                             f"in {time.perf_counter() - start:.1f} s")
            return embedded

        value, reused = compute_or_reuse(context, asset_storage, fit, config=config,
                                         inputs=[latent_representation])
        return keyed_output(value, reused, dim=value.dim, fit_rows=value.meta.get("fit_rows"),
                            of_train_rows=value.meta.get("of_train_rows"))

    return manifold_representation


manifold_assets = [build_manifold_asset(v) for v in VARIANTS]
