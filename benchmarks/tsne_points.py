"""Benchmark: what the t-SNE figures' sample size costs, and what it keeps.

    CLUSTERING_DAG_DATA_DIR=../shared/data .venv/bin/python benchmarks/tsne_points.py

Embeds a seeded, label-stratified sample of the MNIST test images (the rows ``tsne_rows`` picks)
as the t-SNE assets do (PCA to 50 dimensions, 3-D Barnes-Hut, perplexity 50, 500 iterations), at
several sample sizes, twice each, and prints JSON: the median seconds of each size, its ratio to
5,000 points, and how well the picture keeps the classes apart (the share of points whose 10
nearest neighbours in the embedding mostly share their label: the figure's readability, scored
with the labels as the figure is coloured by them). Target: the chosen size at most 0.6 of
5,000 points' time with at least 0.95 of its neighbour agreement.
"""

import json
import statistics
import time

import numpy as np

SIZES = (5000, 3000, 2500, 2000)
TARGET_RATIO, KEEP = 0.6, 0.95


def neighbour_agreement(coords: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords, return_distance=False)[:, 1:]
    return float(((labels[idx] == labels[:, None]).mean(1) > 0.5).mean())


def main() -> None:
    from clustering_dag.core.arrays import sample_rows
    from clustering_dag.core.figures import tsne_embeddings
    from clustering_dag.core.idx import read_image_label_pair
    from clustering_dag.settings import data_dir

    folder = data_dir() / "mnist"
    x, y = read_image_label_pair(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
    x = x.reshape(len(x), -1).astype(np.float32) / 255.0
    out = {"perplexity": 50, "n_components": 3, "max_iter": 500, "sizes": {}}
    for n in SIZES:
        rows = sample_rows(len(x), n, y, 1234)
        seconds, agreement = [], None
        for _ in range(2):
            start = time.perf_counter()
            coords = tsne_embeddings({"original": x[rows]}, perplexity=50.0, seed=1234)["original"]
            seconds.append(time.perf_counter() - start)
            agreement = neighbour_agreement(coords, y[rows])
        out["sizes"][n] = {"seconds": round(statistics.median(seconds), 2),
                           "neighbour_agreement": round(agreement, 4)}
    base = out["sizes"][5000]
    for row in out["sizes"].values():
        row["time_ratio"] = round(row["seconds"] / base["seconds"], 3)
        row["agreement_ratio"] = round(row["neighbour_agreement"] / base["neighbour_agreement"], 3)
        row["meets_target"] = row["time_ratio"] <= TARGET_RATIO and row["agreement_ratio"] >= KEEP
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
