import io

import matplotlib.image as mpimg
import numpy as np
import pytest

from clustering_dag.core import figures


def decode_png(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    return mpimg.imread(io.BytesIO(png))


@pytest.fixture(scope="module")
def spaces():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    centers = rng.normal(size=(10, 8)) * 20
    latent = (centers[labels] + rng.normal(size=(200, 8))).astype(np.float32)
    return {"original": rng.random((200, 784), dtype=np.float32),
            "reconstructed": rng.random((200, 784), dtype=np.float32),
            "latent": latent}, labels


def test_image_rows_has_one_panel_per_image():
    imgs = np.random.default_rng(0).random((10, 784))
    fig = figures.image_rows([imgs, imgs], ["noisy", "reconstructed"], (28, 28))
    assert len(fig.axes) == 20 and fig.axes[0].get_title(loc="left") == "noisy"
    assert decode_png(figures.to_png(fig)).ndim == 3


def test_loss_curve_panels():
    history = [{"epoch": e, "loss": 1 / e, "reconstruction": 1 / e, "kl": e} for e in range(1, 6)]
    fig = figures.loss_curve(history)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    decode_png(figures.to_png(fig))


def test_tsne_figures(spaces):
    data, labels = spaces
    emb = figures.tsne_embeddings(data, perplexity=10, n_components=3, max_iter=250)
    assert {k: v.shape for k, v in emb.items()} == {k: (200, 3) for k in data}
    fig3 = figures.tsne_figure(emb, labels, three_d=True)
    assert [ax.name for ax in fig3.axes] == ["3d"] * 3
    fig2 = figures.tsne_figure(emb, labels, three_d=False)
    assert len(fig2.axes) == 4  # three panels and the colour bar
    assert "latent" in fig2.axes[2].get_title()
    decode_png(figures.to_png(fig2))


def test_voronoi_has_regions_and_centroids(spaces):
    data, _ = spaces
    fig = figures.voronoi_figure(data)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert len(np.unique(ax.images[0].get_array())) >= 5  # decision regions on the mesh
        assert ax.collections[0].get_offsets().shape == (10, 2)  # the ten centroids
    decode_png(figures.to_png(fig))


def test_k_sweep(spaces):
    data, _ = spaces
    rows = figures.k_sweep(data["latent"], ks=range(2, 13), n_init=2)
    assert [r["k"] for r in rows] == list(range(2, 13))
    inertia = [r["inertia"] for r in rows]
    assert inertia[0] > inertia[-1]
    assert max(rows, key=lambda r: r["silhouette"])["k"] == 10  # ten well-separated blobs
    assert len(figures.k_sweep_figure(rows).axes) == 2
