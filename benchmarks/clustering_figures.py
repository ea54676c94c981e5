"""Benchmark: the clustering, metric and figure steps of one dataset and variant, as the pipeline
runs them (its assets, its configs, its sampling), on a cache whose VAE and representations exist.

    CLUSTERING_DAG_CACHE_DIR=data .venv/bin/python benchmarks/clustering_figures.py \\
        --dataset mnist --variant paper [-c clustering_dag/profiles/quick.yaml]

Copies the asset cache, removes the stored values of the steps it times (so they run, while
everything above them is reused), materializes them with the code location's own assets, and
prints JSON: each step's seconds (from the run's event log) and their sum. Target on a 2-core CPU:
all of them at most 120 s for one dataset and variant at the paper's settings.
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import yaml

TARGET_SECONDS = 120
TIMED = ("clusters_reconstructed", "clusters_latent", "manifold_representation", "clusters_manifold",
         "cluster_assignments", "clustering_metrics", "tsne_embeddings", "figure_reconstructions",
         "figure_tsne", "figure_manifold", "figure_voronoi", "figure_latent_centroids", "figure_loss_curve",
         "figure_k_sweep")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--variant", default="paper")
    parser.add_argument("-c", "--config", default=None, help="the run-config profile the cache was made with")
    args = parser.parse_args()
    from dagster import AssetSelection, DagsterEventType, DagsterInstance, materialize

    from clustering_dag.definitions import all_assets, resources
    from clustering_dag.defs.cached import asset_key
    from clustering_dag.settings import cache_root

    source = Path(cache_root())
    keys = [asset_key(name, args.variant) for name in (*TIMED, "clusters_original", "tsne_original")]
    if not (source / args.variant / "latent_representation" / f"{args.dataset}.parquet").is_file():
        raise SystemExit(f"{source} has no {args.variant} representations of {args.dataset}: "
                         "materialize the graph first (README, the run command)")
    work = Path(tempfile.mkdtemp(prefix="clustering_figures_"))
    cache = work / "cache"
    shutil.copytree(source, cache, ignore=shutil.ignore_patterns("raw"))
    for key in keys:  # what is timed must run: its stored value goes
        (cache.joinpath(*key.path) / f"{args.dataset}.parquet").unlink(missing_ok=True)
    shutil.rmtree(cache / "figures" / args.variant, ignore_errors=True)
    profile = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    steps_run = {"__".join(k.path) for k in keys}  # the profile's config of the steps that run
    config = {"ops": {op: v for op, v in (profile.get("ops") or {}).items() if op in steps_run}}
    config["resources"] = {"asset_storage": {"config": {"base_path": str(cache)}}}
    start = time.perf_counter()
    with DagsterInstance.ephemeral() as instance:
        result = materialize(all_assets, selection=AssetSelection.assets(*keys), partition_key=args.dataset,
                             run_config=config, resources=resources, instance=instance)
        starts, steps = {}, {}
        for entry in instance.all_logs(result.run_id, of_type={DagsterEventType.STEP_START,
                                                                DagsterEventType.STEP_SUCCESS}):
            if entry.dagster_event.event_type == DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
            else:
                steps[entry.step_key] = round(entry.timestamp - starts[entry.step_key], 2)
    shutil.rmtree(work)
    total = round(sum(steps.values()), 1)
    met = total <= TARGET_SECONDS if not args.config else None  # the target is at the paper's settings
    print(json.dumps({"dataset": args.dataset, "variant": args.variant, "profile": args.config or "full",
                      "wall_seconds": round(time.perf_counter() - start, 1), "steps_seconds": total,
                      "target_seconds": TARGET_SECONDS, "met": met,
                      "steps": dict(sorted(steps.items(), key=lambda kv: -kv[1]))}, indent=1))


if __name__ == "__main__":
    main()
