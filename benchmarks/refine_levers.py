"""Benchmark: the refined classifier's settings on a stored run's manifold clusters, on 2 CPU cores.

    .venv/bin/python benchmarks/refine_levers.py <cache folder> mnist dae mlp cnn-digits ...

Reads ``<cache>/noisy_dataset/<dataset>.parquet`` and the variant's ``manifold_representation`` and
``clusters_manifold`` (a run of the pipeline, whatever its profile), trains the classifier of each
named setting under three seeds (1234-1236) and prints a JSON line per setting: accuracy on the
noisy test images per seed, mean, sd, and seconds per training. Settings: ``mlp`` (the default),
``mlp-<kind>`` (the default with the augmentations of ``kind``), ``cnn`` and ``cnn-<kind>`` (a
32-64 filter convolutional network, 128 units). The manifold stage's own accuracy is printed
first.
"""
import json
import sys
import time
from pathlib import Path


def main():
    import numpy as np
    from upath import UPath

    from clustering_dag.core.chain import assign
    from clustering_dag.core.metrics import clustering_accuracy
    from clustering_dag.core.refine import config_for, refined_representation
    from clustering_dag.core.spaces import SPACES, train_refined
    from clustering_dag.defs.storage import read_parquet

    cache, dataset, variant, *settings = sys.argv[1:]
    read = lambda *parts: read_parquet(UPath(str(Path(cache, *parts))), lazy=False)  # noqa: E731
    noisy = read("noisy_dataset", f"{dataset}.parquet")
    rep = read(variant, "manifold_representation", f"{dataset}.parquet")
    clusters = read(variant, "clusters_manifold", f"{dataset}.parquet")
    base = assign(SPACES["manifold"], rep, clusters)
    print(json.dumps({"manifold": round(clustering_accuracy(noisy.test_y, base), 4)}), flush=True)
    for setting in settings:
        arch, _, kind = setting.partition("-")
        extra = {"conv": (32, 64), "hidden": (128,)} if arch == "cnn" else {}
        accs, secs = [], []
        for seed in (1234, 1235, 1236):
            config = config_for(noisy, len(clusters), seed=seed, augment=kind or "none", **extra)
            t = time.perf_counter()
            trained = train_refined(noisy, rep, clusters, config)
            secs.append(time.perf_counter() - t)
            pred = refined_representation(trained, noisy).test_x.argmax(1)
            accs.append(clustering_accuracy(noisy.test_y, pred))
        print(json.dumps({"setting": setting, "dataset": dataset, "variant": variant,
                          "accuracy": [round(a, 4) for a in accs], "mean": round(float(np.mean(accs)), 4),
                          "sd": round(float(np.std(accs, ddof=1)), 4),
                          "seconds": [round(s, 1) for s in secs]}), flush=True)


if __name__ == "__main__":
    main()
