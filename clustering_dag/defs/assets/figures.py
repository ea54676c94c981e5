"""Figures: the paper's (reconstructions, t-SNE, Voronoi) and a few a careful reader wants.

Each figure is a PNG under ``<cache>/figures/<variant>/<name>/<partition>.png`` and is shown
inline in the asset's metadata. A figure whose inputs did not change is not drawn again.
"""

from dagster import AssetExecutionContext, AssetIn, AssetKey, Config, MaterializeResult, Output
from pydantic import Field

from clustering_dag.core.variants import REPRESENTATIONS, VARIANTS
from clustering_dag.defs.assets.clustering import kmeans_key, representation_key
from clustering_dag.defs.assets.common import compute_or_reuse, figures_output, keyed_output
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.defs.versioning import asset_from_source


class TsneConfig(Config):
    """The paper's t-SNE: 3 components, perplexity 50, on the clean test images."""

    perplexity: float = Field(default=50.0, gt=0)
    n_components: int = Field(default=3, ge=2, le=3)
    max_iter: int = Field(default=500, ge=250)
    pca_dims: int = Field(default=50, ge=2, description="PCA before t-SNE for wide spaces.")
    max_points: int | None = Field(
        default=5000, ge=100, description="Embed a seeded sample of N test points, stratified by label, "
                                          "when there are more (None = every test point).")
    seed: int = 1234


class SweepConfig(Config):
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=20, ge=3)
    seed: int = 1234


def tsne_rows(test, config: TsneConfig):
    """The test rows the embeddings show: the same sample for every space and variant."""
    from clustering_dag.core.arrays import sample_rows

    return sample_rows(len(test.test_x), config.max_points, test.test_y, config.seed)


def embed_frame(spaces: dict, labels, config: TsneConfig, rows, of_rows: int):
    """t-SNE of each space as one long table: representation, row (index in the test split), label
    (-1 when the dataset has none), c0, c1, c2, and of_rows (the test split's size)."""
    import numpy as np
    import pandas as pd

    from clustering_dag.core import figures

    n = len(next(iter(spaces.values())))
    labels = np.full(n, -1) if labels is None else labels
    emb = figures.tsne_embeddings(spaces, perplexity=min(config.perplexity, (n - 1) / 3),
                                  n_components=config.n_components, seed=config.seed,
                                  pca_dims=config.pca_dims, max_iter=config.max_iter)
    frames = []
    for rep, coords in emb.items():
        frame = pd.DataFrame({"representation": rep, "row": rows, "label": labels, "of_rows": of_rows})
        for i in range(3):
            frame[f"c{i}"] = coords[:, i] if i < coords.shape[1] else 0.0
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@asset_from_source(
    partitions_def=dataset_partitions,
    io_manager_key="parquet_io_manager",
    group_name="data",
    kinds={"scikit-learn", "parquet"},
    description="t-SNE of the clean test images' pixels; shared by the variants' t-SNE figures.",
)
def tsne_original(context: AssetExecutionContext, config: TsneConfig, raw_dataset,
                  asset_storage: AssetStorage) -> Output:
    def embed():
        rows = tsne_rows(raw_dataset, config)
        y = None if raw_dataset.test_y is None else raw_dataset.test_y[rows]
        return embed_frame({"original": raw_dataset.test_x[rows]}, y, config, rows,
                           len(raw_dataset.test_x))

    frame, reused = compute_or_reuse(context, asset_storage, embed, config=config, inputs=[raw_dataset])
    return keyed_output(frame, reused, points=len(frame), of_rows=len(raw_dataset.test_x))


def build_figure_assets(variant: str) -> list:
    group = f"figures_{variant}"
    vae_key = AssetKey([variant, "trained_vae"])

    def figure_asset(name: str, ins: dict, description: str):
        return asset_from_source(
            key=AssetKey([variant, f"figure_{name}"]),
            partitions_def=dataset_partitions,
            ins=ins,
            group_name=group,
            kinds={"matplotlib"},
            description=description,
        )

    def result(context, storage, renders: dict, inputs: list, config=None) -> MaterializeResult:
        return figures_output(context, storage, [variant], renders, config=config, inputs=inputs)

    @figure_asset("reconstructions",
                  {"noisy_test_set": AssetIn(AssetKey("noisy_test_set")),
                   "reconstructed": AssetIn(representation_key(variant, "reconstructed"))},
                  "Noisy test images (top) above their reconstructions (bottom), as Figures 1-2.")
    def figure_reconstructions(context: AssetExecutionContext, asset_storage: AssetStorage,
                               noisy_test_set, reconstructed) -> MaterializeResult:
        def render():
            from clustering_dag.core import figures

            return figures.image_rows([noisy_test_set.test_x[:10], reconstructed.test_x[:10]],
                                      ["noisy test samples", "reconstructions"], noisy_test_set.image_shape)

        return result(context, asset_storage, {"reconstructions": render},
                      [noisy_test_set, reconstructed])

    @asset_from_source(
        key=AssetKey([variant, "tsne_embeddings"]),
        partitions_def=dataset_partitions,
        ins={"raw_dataset": AssetIn(AssetKey("raw_dataset")), "trained_vae": AssetIn(vae_key)},
        io_manager_key="parquet_io_manager",
        group_name=group,
        kinds={"scikit-learn", "parquet"},
        description="t-SNE of the clean test images' reconstructions and latent codes.",
    )
    def tsne_embeddings(context: AssetExecutionContext, config: TsneConfig, asset_storage: AssetStorage,
                        raw_dataset, trained_vae) -> Output:
        def embed():
            from clustering_dag.core.vae import represent

            rows = tsne_rows(raw_dataset, config)
            y = None if raw_dataset.test_y is None else raw_dataset.test_y[rows]
            latent, recon = represent(trained_vae, raw_dataset.test_x[rows], seed=trained_vae.config.seed + 2)
            return embed_frame({"reconstructed": recon, "latent": latent}, y, config, rows,
                               len(raw_dataset.test_x))

        frame, reused = compute_or_reuse(context, asset_storage, embed, config=config,
                                         inputs=[raw_dataset, trained_vae])
        return keyed_output(frame, reused, points=len(frame) // 2, of_rows=len(raw_dataset.test_x))

    @figure_asset("tsne",
                  {"tsne_original": AssetIn(AssetKey("tsne_original")),
                   "tsne_embeddings": AssetIn(AssetKey([variant, "tsne_embeddings"]))},
                  "t-SNE (3 components, perplexity 50) of the clean test images in the original, "
                  "reconstructed and latent spaces, coloured by true label: 3-D and components 0-1.")
    def figure_tsne(context: AssetExecutionContext, asset_storage: AssetStorage,
                    tsne_original, tsne_embeddings) -> MaterializeResult:
        def render(three_d: bool):
            import pandas as pd

            from clustering_dag.core import figures

            frame = pd.concat([tsne_original, tsne_embeddings])
            emb = {rep: frame.loc[frame["representation"] == rep, ["c0", "c1", "c2"]].to_numpy()
                   for rep in REPRESENTATIONS}
            shown, of_rows = len(tsne_original), int(tsne_original["of_rows"].iloc[0])
            note = f"{shown:,} of {of_rows:,} test points" if shown < of_rows else ""
            return figures.tsne_figure(emb, tsne_original["label"].to_numpy(), three_d=three_d, note=note)

        return result(context, asset_storage,
                      {"tsne": lambda: render(True), "tsne_2d": lambda: render(False)},
                      [tsne_original, tsne_embeddings])

    @figure_asset("manifold",
                  {"manifold": AssetIn(representation_key(variant, "manifold")),
                   "cluster_assignments": AssetIn(AssetKey([variant, "cluster_assignments"]))},
                  "The manifold stage's space (UMAP of the latent code) of the noisy test set, its first "
                  "three components: coloured by true label, and by the Gaussian mixture's cluster.")
    def figure_manifold(context: AssetExecutionContext, asset_storage: AssetStorage, manifold,
                        cluster_assignments) -> MaterializeResult:
        def render(three_d: bool):
            import numpy as np

            from clustering_dag.core import figures

            coords = manifold.test_x
            if coords.shape[1] < 3:
                coords = np.pad(coords, ((0, 0), (0, 3 - coords.shape[1])))
            labels = manifold.test_y if manifold.test_y is not None else np.full(len(coords), -1)
            return figures.tsne_figure(
                {"by true label": coords, "by cluster": coords},
                {"by true label": labels, "by cluster": cluster_assignments["manifold"].to_numpy()},
                three_d=three_d, method="UMAP",
                note=f"{len(coords):,} noisy test codes; {manifold.dim} dimensions")

        return result(context, asset_storage,
                      {"manifold": lambda: render(True), "manifold_2d": lambda: render(False)},
                      [manifold, cluster_assignments])

    @figure_asset("voronoi",
                  {rep: AssetIn(representation_key(variant, rep)) for rep in REPRESENTATIONS},
                  "Voronoi diagrams (Figures 5-6): PCA to 2-D, k-means on the 2-D points, decision "
                  "regions on a mesh, per representation of the noisy test set.")
    def figure_voronoi(context: AssetExecutionContext, asset_storage: AssetStorage, original,
                       reconstructed, latent) -> MaterializeResult:
        def render():
            from clustering_dag.core import figures

            spaces = {"original": original.test_x, "reconstructed": reconstructed.test_x,
                      "latent": latent.test_x}
            return figures.voronoi_figure(spaces, original.n_clusters, seed=1234)

        return result(context, asset_storage, {"voronoi": render}, [original, reconstructed, latent])

    @figure_asset("latent_centroids",
                  {"kmeans_latent": AssetIn(kmeans_key(variant, "latent")), "trained_vae": AssetIn(vae_key),
                   "raw_dataset": AssetIn(AssetKey("raw_dataset"))},
                  "The latent k-means centroids decoded back to images: what each cluster 'is'.")
    def figure_latent_centroids(context: AssetExecutionContext, asset_storage: AssetStorage,
                                kmeans_latent, trained_vae, raw_dataset) -> MaterializeResult:
        def render():
            from clustering_dag.core import figures
            from clustering_dag.core.clustering import ClusterModel
            from clustering_dag.core.vae import decode

            images = decode(trained_vae, ClusterModel.from_frame(kmeans_latent).centers)
            return figures.image_rows([images], ["decoded latent centroids"], raw_dataset.image_shape)

        return result(context, asset_storage, {"latent_centroids": render},
                      [kmeans_latent, trained_vae, raw_dataset])

    @figure_asset("loss_curve", {"trained_vae": AssetIn(vae_key)},
                  "Training loss, reconstruction term and KL per epoch.")
    def figure_loss_curve(context: AssetExecutionContext, asset_storage: AssetStorage,
                          trained_vae) -> MaterializeResult:
        def render():
            from clustering_dag.core import figures

            return figures.loss_curve(trained_vae.history)

        return result(context, asset_storage, {"loss_curve": render}, [trained_vae])

    @figure_asset("k_sweep", {"latent": AssetIn(representation_key(variant, "latent"))},
                  "k-means inertia and silhouette for k = 2..20 on the latent test codes: is the "
                  "chosen k (10 for the paper's datasets) natural?")
    def figure_k_sweep(context: AssetExecutionContext, config: SweepConfig, asset_storage: AssetStorage,
                       latent) -> MaterializeResult:
        def render():
            from clustering_dag.core import figures

            k_max = min(config.k_max, len(latent.test_x) - 1)  # silhouette needs k < points
            rows = figures.k_sweep(latent.test_x, range(config.k_min, k_max + 1), seed=config.seed)
            best = max(rows, key=lambda r: r["silhouette"])["k"]
            context.log.info(f"k-sweep: best k by silhouette = {best}; {rows}")
            return figures.k_sweep_figure(rows, chosen=latent.n_clusters)

        return result(context, asset_storage, {"k_sweep": render}, [latent], config)

    return [figure_reconstructions, tsne_embeddings, figure_tsne, figure_manifold, figure_voronoi,
            figure_latent_centroids, figure_loss_curve, figure_k_sweep]


figure_assets = [tsne_original, *(a for variant in VARIANTS for a in build_figure_assets(variant))]
