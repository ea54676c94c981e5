"""The paper's figures (and a few more) as matplotlib figures; :func:`to_png` renders them."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402


def to_png(fig: Figure, metadata: dict[str, str] | None = None) -> bytes:
    """Render and close a figure; ``metadata`` goes into the PNG's text chunks."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata=metadata)
    plt.close(fig)
    return buf.getvalue()


def image_rows(rows: list[np.ndarray], titles: list[str], image_shape) -> Figure:
    """One row of images per array in ``rows`` (each n x pixels), titled per row. Without an
    ``image_shape`` (a feature table) each array is drawn as a heat map, samples x features."""
    if not image_shape:
        return feature_heatmaps(rows, titles)
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.0, len(rows) * 1.15), squeeze=False)
    for r, (images, title) in enumerate(zip(rows, titles)):
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(np.clip(images[c].reshape(image_shape), 0, 1), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_title(title, loc="left", fontsize=9)
    return fig


def feature_heatmaps(rows: list[np.ndarray], titles: list[str]) -> Figure:
    """Each array (samples x features, values in [0, 1]) as a heat map, stacked top to bottom."""
    width = min(12.0, 3.0 + 0.25 * max(r.shape[1] for r in rows))
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, 1.0 + 1.6 * len(rows)), squeeze=False,
                             layout="constrained")
    for ax, values, title in zip(axes[:, 0], rows, titles):
        shown = ax.imshow(np.clip(values, 0, 1), cmap="viridis", vmin=0, vmax=1, aspect="auto",
                          interpolation="nearest")
        ax.set_title(title, loc="left", fontsize=9)
        ax.set_ylabel("sample")
    axes[-1, 0].set_xlabel("feature")
    fig.colorbar(shown, ax=axes[:, 0].tolist(), shrink=0.8, label="scaled value")
    return fig


def loss_curve(history: list[dict]) -> Figure:
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(epochs, [h["reconstruction"] for h in history], label="reconstruction")
    a.plot(epochs, [h["loss"] for h in history], "--", label="total loss")
    a.set_xlabel("epoch")
    a.set_title("training loss")
    a.legend()
    b.plot(epochs, [h["kl"] for h in history], color="C2")
    b.set_xlabel("epoch")
    b.set_title("KL(q(z|x) || p(z))")
    return fig


def tsne_embeddings(spaces: dict[str, np.ndarray], perplexity: float = 50.0, n_components: int = 3,
                    seed: int = 0, pca_dims: int = 50, max_iter: int = 500) -> dict[str, np.ndarray]:
    """t-SNE of each space (Barnes-Hut), after PCA to ``pca_dims`` for wide spaces."""
    out = {}
    for name, x in spaces.items():
        if x.shape[1] > pca_dims:
            x = PCA(pca_dims, random_state=seed).fit_transform(x)
        out[name] = TSNE(n_components=n_components, perplexity=perplexity, init="pca",
                         random_state=seed, max_iter=max_iter, n_jobs=-1).fit_transform(x)
    return out


def tsne_figure(embeddings: dict[str, np.ndarray], labels, three_d: bool, note: str = "",
                method: str = "t-SNE") -> Figure:
    """Points of an embedding (``method``: t-SNE, UMAP) coloured by true label; all one colour when
    the dataset has no labels (-1). ``labels`` is one array for every panel or a dict of arrays
    by panel name (e.g. true labels beside cluster numbers). ``note`` (e.g. how many points of how
    many) goes into every panel's title."""
    colours_of = labels if isinstance(labels, dict) else {name: labels for name in embeddings}
    size = 1 if len(next(iter(embeddings.values()))) > 2000 else 8
    n = len(embeddings)
    fig = plt.figure(figsize=(4.2 * n, 4.0))
    for i, (name, emb) in enumerate(embeddings.items(), start=1):
        values = colours_of[name]
        labelled = values is not None and (np.asarray(values) >= 0).any()
        n_classes = int(np.max(values)) + 1 if labelled else 0
        colours = dict(color="C0")
        if labelled:  # one tab10 colour per class while there are at most 10
            colours = dict(c=values, cmap="tab10" if n_classes <= 10 else "viridis",
                           vmin=-0.5, vmax=max(n_classes, 10) - 0.5)
        if three_d and emb.shape[1] >= 3:
            ax = fig.add_subplot(1, n, i, projection="3d")
            ax.scatter(emb[:, 0], emb[:, 1], emb[:, 2], s=size, **colours)
        else:
            ax = fig.add_subplot(1, n, i)
            sc = ax.scatter(emb[:, 0], emb[:, 1], s=size, **colours)
            if labelled and not isinstance(labels, dict) and i == n:
                fig.colorbar(sc, ax=fig.axes, ticks=range(n_classes), label="true label", shrink=0.8)
        ax.set_title(f"{name} ({method} {'3-D' if three_d else 'components 0-1'})"
                     + (f"\n{note}" if note else ""), fontsize=9)
    return fig


def voronoi_figure(spaces: dict[str, np.ndarray], n_clusters: int = 10, seed: int = 0,
                   mesh: int = 300) -> Figure:
    """PCA to 2-D, k-means on the 2-D points, decision regions on a mesh (per space)."""
    n = len(spaces)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.0), squeeze=False)
    for ax, (name, x) in zip(axes[0], spaces.items()):
        pts = PCA(2, random_state=seed).fit_transform(x)
        km = KMeans(n_clusters=n_clusters, init="k-means++", n_init=10, random_state=seed).fit(pts)
        lo, hi = pts.min(0) - 1e-3 - 0.05 * np.ptp(pts, 0), pts.max(0) + 0.05 * np.ptp(pts, 0)
        xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], mesh), np.linspace(lo[1], hi[1], mesh))
        regions = km.predict(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
        ax.imshow(regions, extent=(lo[0], hi[0], lo[1], hi[1]), origin="lower", cmap="Pastel1",
                  aspect="auto", interpolation="nearest")
        ax.plot(pts[:, 0], pts[:, 1], "k.", markersize=1)
        c = km.cluster_centers_
        ax.scatter(c[:, 0], c[:, 1], marker="x", s=120, linewidths=3, color="w", zorder=10)
        ax.set_title(f"{name}: k-means on PCA-2D", fontsize=9)
        ax.set_xticks(())
        ax.set_yticks(())
    return fig


def k_sweep(x: np.ndarray, ks=range(2, 21), seed: int = 0, n_init: int = 3,
            silhouette_sample: int | None = 5000) -> list[dict]:
    rows = []
    for k in ks:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
        sil = silhouette_score(x, km.labels_, sample_size=silhouette_sample, random_state=seed)
        rows.append({"k": k, "inertia": float(km.inertia_), "silhouette": float(sil)})
    return rows


def k_sweep_figure(rows: list[dict], chosen: int = 10) -> Figure:
    ks = [r["k"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(ks, [r["inertia"] for r in rows], "o-")
    a.set_title("k-means inertia")
    b.plot(ks, [r["silhouette"] for r in rows], "o-", color="C1")
    b.set_title("silhouette")
    for ax in (a, b):
        ax.axvline(chosen, color="gray", ls=":")
        ax.set_xlabel("k")
    return fig


def comparison_figure(spreads: dict, title: str = "") -> Figure:
    """Every variant and space side by side: accuracy (left) and NMI (right) on the noisy test
    set, a bar per variant in each space's group, the seeds' standard deviation as error bars.
    ``spreads``: per variant, :func:`clustering_dag.core.seeds.spread`'s table."""
    spaces = list(dict.fromkeys(rep for table in spreads.values() for rep in table["representation"]))
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.6 * len(spaces) + 2.5) * 1.6, 3.6), sharey=True)
    width = 0.8 / max(1, len(spreads))
    for ax, metric, name in zip(axes, ("accuracy", "nmi"), ("accuracy", "NMI")):
        if not any(f"{metric}_mean" in table for table in spreads.values()):
            ax.text(0.5, 0.5, "no labels: the dataset has none to score against", ha="center",
                    va="center", transform=ax.transAxes, color="gray")
        for i, (variant, table) in enumerate(spreads.items()):
            rows = table.set_index("representation").reindex(spaces)
            if f"{metric}_mean" not in rows:
                continue
            sd = rows[f"{metric}_sd"].fillna(0.0).to_numpy()
            x = np.arange(len(spaces)) + (i - (len(spreads) - 1) / 2) * width
            ax.bar(x, rows[f"{metric}_mean"].to_numpy(), width, yerr=sd, capsize=3, label=variant,
                   color=f"C{i}")
        ax.set_xticks(np.arange(len(spaces)), spaces)
        ax.set_ylim(0, 1)
        ax.set_title(name)
        ax.grid(axis="y", alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(title="variant", loc="upper left", fontsize="small")
    from clustering_dag.core.seeds import seeds_note

    spread_note = seeds_note(t["n_seeds"].max() for t in spreads.values())
    fig.suptitle(f"{title} ({spread_note}; noisy test set)" if title else spread_note)
    fig.tight_layout()
    return fig
