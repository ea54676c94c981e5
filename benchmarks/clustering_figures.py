"""Benchmark: clustering, metrics and every figure for one dataset and variant, at full size.

Reads the representations and the trained VAE from the asset cache, so materialize the graph
first (the run command in README.md), then:

    CLUSTERING_DAG_CACHE_DIR=data .venv/bin/python benchmarks/clustering_figures.py --dataset mnist

Prints JSON with the seconds of each step. Target on a 2-core CPU: metrics plus all figures
<= 90 s for one dataset/variant.
"""

import argparse
import json
import time
from contextlib import contextmanager

from upath import UPath

from clustering_dag.core import figures
from clustering_dag.core.arrays import table_to_splits
from clustering_dag.core.clustering import ClusterConfig, fit_clusters
from clustering_dag.core.metrics import all_metrics
from clustering_dag.core.paper import REPRESENTATIONS
from clustering_dag.core.trained import load_trained
from clustering_dag.core.vae import decode, represent
from clustering_dag.settings import cache_root

timings: dict[str, float] = {}


@contextmanager
def timed(name: str):
    t0 = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - t0, 2)


def load_splits(*parts: str):
    import pyarrow.parquet as pq

    path = UPath(cache_root()).joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"{path} not found: materialize the graph first (see README.md)")
    return table_to_splits(pq.read_table(str(path)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--variant", default="paper")
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--tsne-max-iter", type=int, default=500)
    parser.add_argument("--tsne-points", type=int, default=None)
    args = parser.parse_args()
    ds, v = args.dataset, args.variant

    reps = {"original": load_splits("original_representation", f"{ds}.parquet")}
    for rep in ("reconstructed", "latent"):
        reps[rep] = load_splits(v, f"{rep}_representation", f"{ds}.parquet")
    raw = load_splits("raw_dataset", f"{ds}.parquet")
    trained = load_trained(str(UPath(cache_root()) / v / "trained_vae" / f"{ds}.weights.h5"))

    models, metrics = {}, {}
    for rep in REPRESENTATIONS:
        with timed(f"kmeans_fit_{rep}"):
            models[rep] = fit_clusters(reps[rep].train_x, ClusterConfig(n_init=args.n_init))
    for rep in REPRESENTATIONS:
        with timed(f"metrics_{rep}"):
            clusters = models[rep].predict(reps[rep].test_x)
            metrics[rep] = all_metrics(reps[rep].test_x, clusters, reps[rep].test_y, 10)

    shape = raw.meta["image_shape"]
    with timed("figure_reconstructions"):
        figures.to_png(figures.image_rows([reps["original"].test_x[:10], reps["reconstructed"].test_x[:10]],
                                          ["noisy", "reconstructed"], shape))
    with timed("figure_tsne"):
        x = raw.test_x[: args.tsne_points]
        latent, recon = represent(trained, x)
        emb = figures.tsne_embeddings({"original": x, "reconstructed": recon, "latent": latent},
                                      perplexity=50, n_components=3, max_iter=args.tsne_max_iter)
        figures.to_png(figures.tsne_figure(emb, raw.test_y[: len(x)], three_d=True))
        figures.to_png(figures.tsne_figure(emb, raw.test_y[: len(x)], three_d=False))
    with timed("figure_voronoi"):
        figures.to_png(figures.voronoi_figure({r: reps[r].test_x for r in REPRESENTATIONS}))
    with timed("figure_latent_centroids"):
        figures.to_png(figures.image_rows([decode(trained, models["latent"].centers)], ["centroids"], shape))
    with timed("figure_loss_curve"):
        figures.to_png(figures.loss_curve(trained.history))
    with timed("figure_k_sweep"):
        figures.to_png(figures.k_sweep_figure(figures.k_sweep(reps["latent"].test_x)))

    kmeans = sum(v for k, v in timings.items() if k.startswith("kmeans_fit"))
    rest = sum(v for k, v in timings.items() if not k.startswith("kmeans_fit"))
    print(json.dumps({
        "benchmark": "clustering_figures", "dataset": ds, "variant": v,
        "test_points": len(reps["original"].test_x), "tsne_points": len(raw.test_x[: args.tsne_points]),
        "steps_seconds": timings, "kmeans_fit_seconds": round(kmeans, 2),
        "metrics_and_figures_seconds": round(rest, 2), "target_seconds": 90,
        "metrics": metrics,
    }, indent=2, default=float))


if __name__ == "__main__":
    main()
