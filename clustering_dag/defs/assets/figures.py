"""Figures: the paper's (reconstructions, t-SNE, Voronoi) and a few a careful reader wants.

Each figure asset returns ``{figure name: Figure}``; each figure is a PNG under
``<cache>/figures/<variant>/<name>/<partition>.png``, shown inline in the asset's metadata, and
not drawn again while its inputs do not change. The t-SNE embeddings are assets of their own.
"""

from dagster import AssetExecutionContext, Config, Output
from pydantic import Field

from clustering_dag.core.configs import DEFAULT_SEED
from clustering_dag.core.spaces import SPACES, Space
from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.cached import cached_asset

FIGURE = {"per_variant": True, "group": "figures", "kind": "png", "kinds": {"matplotlib"}}


class TsneConfig(Config):
    """The paper's t-SNE: 3 components, perplexity 50, on the clean test images."""

    perplexity: float = Field(default=50.0, gt=0)
    n_components: int = Field(default=3, ge=2, le=3)
    max_iter: int = Field(default=500, ge=250)
    pca_dims: int = Field(default=50, ge=2, description="PCA before t-SNE for wide spaces.")
    max_points: int | None = Field(
        default=3000, ge=100, description="Embed a seeded sample of N test points, stratified by label, "
                                          "when there are more (None = every test point).")
    seed: int = DEFAULT_SEED


class SweepConfig(Config):
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=20, ge=3)
    seed: int = DEFAULT_SEED


class VoronoiConfig(Config):
    seed: int = Field(default=DEFAULT_SEED, description="Seed of the k-means on the 2-D points.")


def embed_frame(spaces: dict, test, rows, config: TsneConfig):
    """t-SNE of each space (arrays of the test ``rows`` of ``test``) as one long table:
    representation, row (index in the test split), label (-1 when the dataset has none), c0, c1,
    c2, and of_rows (the test split's size)."""
    import numpy as np
    import pandas as pd

    from clustering_dag.core import figures

    n = len(rows)
    labels = np.full(n, -1) if test.test_y is None else test.test_y[rows]
    emb = figures.tsne_embeddings(spaces, perplexity=min(config.perplexity, (n - 1) / 3),
                                  n_components=config.n_components, seed=config.seed,
                                  pca_dims=config.pca_dims, max_iter=config.max_iter)
    frames = []
    for rep, coords in emb.items():
        frame = pd.DataFrame({"representation": rep, "row": rows, "label": labels,
                              "of_rows": len(test.test_x)})
        for i in range(3):
            frame[f"c{i}"] = coords[:, i] if i < coords.shape[1] else 0.0
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def tsne_rows(test, config: TsneConfig):
    """The test rows the embeddings show: the same sample for every space and variant."""
    from clustering_dag.core.arrays import sample_rows

    return sample_rows(len(test.test_x), config.max_points, test.test_y, config.seed)


@cached_asset(kinds={"scikit-learn"})
def tsne_original(context: AssetExecutionContext, config: TsneConfig, raw_dataset):
    """t-SNE of the clean test images' pixels; shared by the variants' t-SNE figures."""
    rows = tsne_rows(raw_dataset, config)
    frame = embed_frame({"original": raw_dataset.test_x[rows]}, raw_dataset, rows, config)
    return Output(frame, metadata={"points": len(frame), "of_rows": len(raw_dataset.test_x)})


@cached_asset(per_variant=True, group="figures", kinds={"scikit-learn"})
def tsne_embeddings(context: AssetExecutionContext, config: TsneConfig, raw_dataset, trained_vae):
    """t-SNE of the clean test images' reconstructions and latent codes."""
    from clustering_dag.core.vae import represent

    rows = tsne_rows(raw_dataset, config)
    latent, recon = represent(trained_vae, raw_dataset.test_x[rows], seed=trained_vae.config.seed + 2)
    frame = embed_frame({"reconstructed": recon, "latent": latent}, raw_dataset, rows, config)
    return Output(frame, metadata={"points": len(frame) // 2, "of_rows": len(raw_dataset.test_x)})


@cached_asset(**FIGURE, figures=("reconstructions",))
def figure_reconstructions(context: AssetExecutionContext, noisy_dataset, reconstructed_representation):
    """Noisy test images (top) above their reconstructions (bottom), as Figures 1-2."""
    from clustering_dag.core import figures

    return {"reconstructions": figures.image_rows(
        [noisy_dataset.test_x[:10], reconstructed_representation.test_x[:10]],
        ["noisy test samples", "reconstructions"], noisy_dataset.image_shape)}


@cached_asset(**FIGURE, figures=("tsne", "tsne_2d"))
def figure_tsne(context: AssetExecutionContext, tsne_original, tsne_embeddings):
    """t-SNE (3 components, perplexity 50) of the clean test images in the original,
    reconstructed and latent spaces, coloured by true label: 3-D and components 0-1."""
    import pandas as pd

    from clustering_dag.core import figures

    frame = pd.concat([tsne_original, tsne_embeddings])
    emb = {rep: frame.loc[frame["representation"] == rep, ["c0", "c1", "c2"]].to_numpy()
           for rep in dict.fromkeys(frame["representation"])}
    shown, of_rows = len(tsne_original), int(tsne_original["of_rows"].iloc[0])
    note = f"{shown:,} of {of_rows:,} test points" if shown < of_rows else ""
    labels = tsne_original["label"].to_numpy()
    return {name: figures.tsne_figure(emb, labels, three_d=three_d, note=note)
            for name, three_d in (("tsne", True), ("tsne_2d", False))}


@cached_asset(**FIGURE, figures=("manifold", "manifold_2d"))
def figure_manifold(context: AssetExecutionContext, manifold_representation, cluster_assignments):
    """The manifold stage's space (UMAP of the latent code) of the noisy test set, its first three
    components: coloured by true label, by the Gaussian mixture's cluster, and by the refined
    classifier's."""
    import numpy as np

    from clustering_dag.core import figures

    manifold = manifold_representation
    coords = manifold.test_x
    if coords.shape[1] < 3:
        coords = np.pad(coords, ((0, 0), (0, 3 - coords.shape[1])))
    labels = manifold.test_y if manifold.test_y is not None else np.full(len(coords), -1)
    return {name: figures.tsne_figure(
        {"by true label": coords, "by cluster": coords, "by refined classifier": coords},
        {"by true label": labels, "by cluster": cluster_assignments["manifold"].to_numpy(),
         "by refined classifier": cluster_assignments["refined"].to_numpy()},
        three_d=three_d, method="UMAP", note=f"{len(coords):,} noisy test codes; {manifold.dim} dimensions")
        for name, three_d in (("manifold", True), ("manifold_2d", False))}


@cached_asset(**{**FIGURE, "per_variant": False}, figures=("invariant", "invariant_2d"))
def figure_invariant(context: AssetExecutionContext, invariant_representation, clusters_invariant,
                     invariant_manifold_representation, clusters_invariant_manifold):
    """The invariance code of the noisy test set, seen through its UMAP (first three components):
    coloured by true label, by the k-means clusters of the code itself, and by the UMAP stage's
    Gaussian mixture."""
    import numpy as np

    from clustering_dag.core import figures
    from clustering_dag.core.clustering import ClusterModel

    umap = invariant_manifold_representation
    coords = umap.test_x if umap.dim >= 3 else np.pad(umap.test_x, ((0, 0), (0, 3 - umap.dim)))
    labels = umap.test_y if umap.test_y is not None else np.full(len(coords), -1)
    kmeans, mixture = (ClusterModel.from_frame(c) for c in (clusters_invariant, clusters_invariant_manifold))
    clusters = {"by true label": labels,
                "by k-means of the code": kmeans.predict(invariant_representation.test_x),
                "by the UMAP stage's mixture": mixture.predict(umap.test_x)}
    return {name: figures.tsne_figure(
        {title: coords for title in clusters}, clusters, three_d=three_d, method="UMAP",
        note=f"{len(coords):,} noisy test images; a {invariant_representation.dim}-d code")
        for name, three_d in (("invariant", True), ("invariant_2d", False))}


def voronoi_asset(spaces: list[Space]):
    @cached_asset(**FIGURE, figures=("voronoi",), reads=tuple(s.representation for s in spaces))
    def figure_voronoi(context: AssetExecutionContext, config: VoronoiConfig, **inputs):
        """Voronoi diagrams (Figures 5-6): PCA to 2-D, k-means on the 2-D points, decision regions
        on a mesh, per space of the noisy test set."""
        from clustering_dag.core import figures

        points = {s.name: inputs[s.representation].test_x for s in spaces}
        k = inputs[spaces[0].representation].n_clusters
        return {"voronoi": figures.voronoi_figure(points, k, seed=config.seed)}

    return figure_voronoi


figure_voronoi = voronoi_asset([s for s in SPACES.values() if "voronoi" in s.drawn])


@cached_asset(**FIGURE, figures=("latent_centroids",))
def figure_latent_centroids(context: AssetExecutionContext, clusters_latent, trained_vae, raw_dataset):
    """The latent k-means centroids decoded back to images: what each cluster 'is'."""
    from clustering_dag.core import figures
    from clustering_dag.core.clustering import ClusterModel
    from clustering_dag.core.vae import decode

    images = decode(trained_vae, ClusterModel.from_frame(clusters_latent).centers)
    return {"latent_centroids": figures.image_rows([images], ["decoded latent centroids"],
                                                   raw_dataset.image_shape)}


@cached_asset(**FIGURE, figures=("loss_curve",))
def figure_loss_curve(context: AssetExecutionContext, trained_vae):
    """Training loss, reconstruction term and KL per epoch."""
    from clustering_dag.core import figures

    return {"loss_curve": figures.loss_curve(trained_vae.history)}


@cached_asset(**FIGURE, figures=("k_sweep",))
def figure_k_sweep(context: AssetExecutionContext, config: SweepConfig, latent_representation):
    """k-means inertia and silhouette for k = 2..20 on the latent test codes: is the chosen k (10
    for the paper's datasets) natural?"""
    from clustering_dag.core import figures

    latent = latent_representation
    k_max = min(config.k_max, len(latent.test_x) - 1)  # silhouette needs k < points
    rows = figures.k_sweep(latent.test_x, range(config.k_min, k_max + 1), seed=config.seed)
    best = max(rows, key=lambda r: r["silhouette"])["k"]
    context.log.info(f"k-sweep: best k by silhouette = {best}; {rows}")
    return {"k_sweep": figures.k_sweep_figure(rows, chosen=latent.n_clusters)}


@cached_asset(group="figures", kind="png", kinds={"matplotlib"}, figures=("comparison",),
              reads=tuple(f"{v}__seed_spread" for v in VARIANTS))
def figure_comparison(context: AssetExecutionContext, **inputs):
    """Every variant and space of a dataset side by side: accuracy and NMI on the noisy test set,
    the seeds' spread as error bars (the `seeds` profile runs three seeds)."""
    from clustering_dag.core import figures
    from clustering_dag.core.datasets import dataset_title
    from clustering_dag.core.seeds import spread

    spreads = {v: spread(inputs[f"{v}__seed_spread"]) for v in VARIANTS}
    return {"comparison": figures.comparison_figure(spreads, dataset_title(context.partition_key))}
