"""Benchmark: score a batch of 100,000 MNIST images with each variant's models, and print JSON.

    CLUSTERING_DAG_DATA_DIR=../shared/data .venv/bin/python benchmarks/score_batch.py [--rows 100000]

The models have the variants' real architectures (what sets the cost) but are trained briefly on
2,000 images: scoring does not depend on how well they learned. The batch is the 70,000 MNIST
images tiled to ``--rows``, written as a ``.npz`` of uint8 pixels, read with
:func:`clustering_dag.core.scoring.read_batch` and scored with
:func:`~clustering_dag.core.scoring.score_batch` (what the ``scored_batch`` asset and
``python -m clustering_dag.score`` run). Times are medians of ``--repeats`` after one warm-up call
(the warm-up, which traces the networks once per process, is reported apart); memory is the
process's peak resident size over the batch's own size.

Target on 2 CPU cores: <= 10 s to read and score 100,000 rows with one variant, beyond start-up.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_SECONDS = 10.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def models_for(variant: str, x: np.ndarray) -> dict:
    """A variant's stored values that scoring reads (by asset name), of the real shapes, fitted on
    ``x`` for one epoch."""
    from clustering_dag.core.arrays import Splits
    from clustering_dag.core.clustering import fit_clusters
    from clustering_dag.core.configs import ClusterConfig
    from clustering_dag.core.refine import config_for, train_classifier
    from clustering_dag.core.vae import represent, train_vae, variant_config

    vae = train_vae(variant_config(variant, epochs=1, input_dim=x.shape[1]), x)
    code, recon = represent(vae, x)
    kmeans = {space: fit_clusters(points, ClusterConfig(n_clusters=10, n_init=1))
              for space, points in (("original", x), ("reconstructed", recon), ("latent", code))}
    splits = Splits(x, None, x[:10], None, meta={"image_shape": [28, 28]})
    cfg = config_for(splits, 10, rounds=1, epochs=1)
    clusters = kmeans["latent"].predict(code)
    classifier = train_classifier(cfg, x, np.arange(len(x)), clusters)
    return {"trained_vae": vae, "refined_classifier": classifier,
            **{f"clusters_{space}": model.to_frame() for space, model in kmeans.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variant", action="append", help="default: every variant")
    args = parser.parse_args()

    started = time.perf_counter()
    from clustering_dag.core.scoring import BatchLayout, read_batch, score, score_batch
    from clustering_dag.core.spaces import scorable_spaces
    from clustering_dag.core.tf_env import tf
    from clustering_dag.core.variants import VARIANTS
    from clustering_dag.defs.resources import Accelerator, DatasetSource

    device = Accelerator(device="cpu").select()
    import_seconds = time.perf_counter() - started
    data = DatasetSource().load("mnist")
    pixels = np.concatenate([data.train_x, data.test_x])
    tiled = np.resize(np.round(pixels * 255).astype(np.uint8), (args.rows, 784))
    layout = BatchLayout("mnist", 784, (28, 28))
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "batch.npz"
        np.savez(path, x=tiled.reshape(-1, 28, 28))
        batch_mb = tiled.size * 4 / 2**20  # as float32, what is scored
        read = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            batch = read_batch(path, layout)
            read.append(time.perf_counter() - t0)
        for variant in args.variant or list(VARIANTS):
            models, spaces = models_for(variant, data.train_x[:2000]), scorable_spaces()
            reference = score(spaces, models, data.test_x[:1000])
            before = peak_rss_mb()
            t0 = time.perf_counter()
            score_batch(batch, spaces, models, reference)  # traces the networks once
            warm_up = time.perf_counter() - t0
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                score_batch(batch, spaces, models, reference)
                times.append(time.perf_counter() - t0)
            total = statistics.median(read) + statistics.median(times)
            results[variant] = {"score_seconds": round(statistics.median(times), 3),
                                "first_call_seconds": round(warm_up, 3),
                                "read_and_score_seconds": round(total, 3),
                                "rows_per_s": round(args.rows / statistics.median(times)),
                                "meets_target": total <= TARGET_SECONDS,
                                # what scoring added to the process's peak, over the batch's size
                                "extra_peak_mb": round(peak_rss_mb() - before),
                                "extra_peak_over_batch": round((peak_rss_mb() - before) / batch_mb, 2)}
    peak_mb = peak_rss_mb()
    print(json.dumps({
        "benchmark": "score_batch", "rows": args.rows, "repeats": args.repeats, "device": device,
        "read_seconds": round(statistics.median(read), 3), "variants": results,
        "target_seconds": TARGET_SECONDS, "import_seconds": round(import_seconds, 2),
        "batch_mb_float32": round(batch_mb, 1), "peak_rss_mb": round(peak_mb),
        "tensorflow": tf.__version__, "cpu_count": os.cpu_count(), "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
