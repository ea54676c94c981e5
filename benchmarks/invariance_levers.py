"""Benchmark: one seed (1234) of the invariance encoder and the augmented autoencoder, outside the
pipeline but with its functions (same data, noise, UMAP stage and mixture), on 2 CPU cores.

    .venv/bin/python benchmarks/invariance_levers.py mnist:dae-digits-60 mnist:dae-none-60 \
        fashion_mnist:inv-40 mnist:inv-40

``<dataset>:dae-<augment>[-<epochs>]`` trains the `dae` autoencoder with that augmentation;
``<dataset>:inv-<epochs>`` the invariance encoder with the dataset's kind of augmentations. Prints a
JSON line per job: training seconds, accuracy of k-means on the code and of the manifold stage
(UMAP + full GMM) on the noisy test images. Its output of 2026-12-05:
docs/measurements/2026-12-05-invariance-levers.jsonl. Reads CLUSTERING_DAG_DATA_DIR.
"""
import json
import os
import sys
import time
from pathlib import Path


def main():
    from clustering_dag.core import invariance
    from clustering_dag.core.augment import resolve
    from clustering_dag.core.clustering import fit_clusters
    from clustering_dag.core.configs import ClusterConfig, InvarianceConfig, ManifoldConfig
    from clustering_dag.core.datasets import DATASETS
    from clustering_dag.core.idx import load_image_dataset
    from clustering_dag.core.manifold import embed
    from clustering_dag.core.metrics import clustering_accuracy
    from clustering_dag.core.noise import add_gaussian_noise
    from clustering_dag.core.spaces import latent, train_autoencoder
    from clustering_dag.core.variants import variant_config

    def data(name):
        root = Path(os.environ.get("CLUSTERING_DAG_DATA_DIR", "data/raw"))
        raw = load_image_dataset(DATASETS[name], root / DATASETS[name].folder)
        noisy = raw.with_x(add_gaussian_noise(raw.train_x, 0.05, 1234),
                           add_gaussian_noise(raw.test_x, 0.05, 1235))
        return raw, noisy

    def score(rep, method="kmeans"):
        cfg = ClusterConfig(method=method, covariance_type="full", n_init=10)
        m = fit_clusters(rep.train_x, cfg)
        return round(clustering_accuracy(rep.test_y, m.predict(rep.test_x)), 4)

    def manifold_acc(rep):
        t = time.perf_counter()
        emb = embed(rep, ManifoldConfig())
        return score(emb, "gmm"), round(time.perf_counter() - t, 1)

    for job in sys.argv[1:]:
        name, what = job.split(":")
        raw, noisy = data(name)
        if what.startswith("dae"):
            parts = what.split("-")
            aug = parts[1] if len(parts) > 1 else "none"
            cfg = variant_config("dae", augment=aug, **({"epochs": int(parts[2])} if len(parts) > 2 else {}))
            trained = train_autoencoder(raw, noisy, cfg)
            rep = latent(trained, raw, noisy)
            res = {"train_s": round(trained.seconds, 1), "latent_kmeans": score(rep)}
        else:
            epochs = int(what.split("-")[1])
            cfg = InvarianceConfig(epochs=epochs, image_shape=(28, 28))
            kind = resolve("auto", raw)
            trained = invariance.train_encoder(cfg, noisy.train_x, kind)
            rep = invariance.invariant_representation(trained, noisy)
            res = {"kind": kind, "train_s": round(trained.seconds, 1), "kmeans": score(rep),
                   "s_per_epoch": round(trained.seconds / epochs, 2),
                   "final_loss": round(trained.final["loss"], 4)}
        res["manifold_gmm"], res["manifold_s"] = manifold_acc(rep)
        print(json.dumps({job: res}), flush=True)


if __name__ == "__main__":
    main()
