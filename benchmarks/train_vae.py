"""Benchmark: train the VAE at the paper's settings and print JSON timings.

    CLUSTERING_DAG_DATA_DIR=../shared/data .venv/bin/python benchmarks/train_vae.py
    ... --variant elbo --epochs 10 --dataset fashion_mnist --device cpu

Target on a 2-core CPU: <= 120 s for 60 epochs of the paper variant (the paper: 215 s on a K80).
"""

import argparse
import json
import os
import platform
import time

from clustering_dag.core.noise import add_gaussian_noise
from clustering_dag.core.tf_env import tf
from clustering_dag.core.vae import train_vae, variant_config
from clustering_dag.defs.resources import Accelerator, DatasetSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--variant", default="paper", choices=["paper", "elbo"])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--train-rows", type=int, default=None)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    args = parser.parse_args()

    device = Accelerator(device=args.device).select()
    t0 = time.perf_counter()
    data = DatasetSource().load(args.dataset)
    x = data.train_x[: args.train_rows]
    cfg = variant_config(args.variant, epochs=args.epochs, batch_size=args.batch_size)
    if cfg.train_on_noisy:
        x = add_gaussian_noise(x, 0.05, seed=1234)
    load_seconds = time.perf_counter() - t0

    trained = train_vae(cfg, x, device=device)
    epochs = [h["seconds"] for h in trained.history]
    steady = epochs[1:] or epochs
    print(json.dumps({
        "benchmark": "train_vae",
        "dataset": args.dataset,
        "variant": args.variant,
        "device": device,
        "train_rows": len(x),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "seconds": round(trained.seconds, 2),
        "seconds_per_epoch": round(trained.seconds / cfg.epochs, 3),
        "first_epoch_seconds": round(epochs[0], 3),
        "steady_seconds_per_epoch": round(sum(steady) / len(steady), 3),
        "samples_per_s": round(len(x) // cfg.batch_size * cfg.batch_size * cfg.epochs / trained.seconds),
        "final_loss": round(trained.final["loss"], 5),
        "target_seconds": 120 if (args.epochs, args.variant) == (60, "paper") else None,
        "data_load_seconds": round(load_seconds, 2),
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
