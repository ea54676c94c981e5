"""Benchmark: how the whole graph's cost grows with the rows of a user's table.

    .venv/bin/python benchmarks/scaling.py [--rows 10000 100000 1000000] [-c PROFILE]

For each size, a synthetic clustered table (ten Gaussian clusters in 50 features, labelled) is
written as parquet, registered as a users' dataset, and the README's command materializes the
whole graph on it (`dagster asset materialize --select '*'`, full profile unless ``-c``), cold, in
a new DAGSTER_HOME and cache. Prints JSON: wall seconds, seconds per row, peak resident memory of
the run's process, and per-step seconds. Targets on 2 cores: 1M rows in at most 30 minutes with a
peak RSS of at most 8 GB, and seconds per row growing at most 1.5x from 100k to 1M.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from main_command import DAGSTER, ROOT, step_seconds  # noqa: E402

TARGETS = {"seconds_1m": 30 * 60, "peak_rss_gb": 8.0, "per_row_growth": 1.5}


def clustered_table(rows: int, path: Path, seed: int = 0) -> None:
    import pandas as pd
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=rows, n_features=50, centers=10, cluster_std=2.5, random_state=seed)
    frame = pd.DataFrame(x.astype("float32"), columns=[f"f{i}" for i in range(50)]).assign(label=y)
    frame.to_parquet(path)


def run_size(rows: int, config: str | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"scaling_{rows}_"))
    name = f"rows_{rows}"
    clustered_table(rows, work / "table.parquet")
    (work / "datasets.yaml").write_text(
        f"datasets:\n  {name}: {{path: table.parquet, label_column: label, rows: {rows}}}\n")
    home = work / "home"
    home.mkdir()
    (home / "dagster.yaml").touch()
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLUSTERING_DAG_CACHE_DIR": str(work / "cache"),
           "CLUSTERING_DAG_DATASETS": str(work / "datasets.yaml")}
    command = [DAGSTER, "asset", "materialize", "-m", "clustering_dag.definitions", "--select", "*",
               "--partition", name, *(["-c", config] if config else [])]
    # Peak RSS of this size's run alone: the process runs in its own child of a fresh helper.
    helper = ("import resource, subprocess, sys, json; "
              "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
              "print(json.dumps({'rc': p.returncode, 'tail': (p.stdout + p.stderr)[-3000:], "
              "'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", helper, *command], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["rc"] != 0:
        sys.exit(f"{rows} rows failed:\n{out['tail']}")
    import pandas as pd

    metrics = {v: pd.read_parquet(work / "cache" / v / "clustering_metrics" / f"{name}.parquet")
               for v in ("paper", "elbo")}
    return {"rows": rows, "seconds": round(seconds, 1), "seconds_per_row": seconds / rows,
            "peak_rss_gb": round(out["maxrss_kb"] / 2**20, 2), "steps": step_seconds(home),
            "latent_accuracy": {v: round(float(m.loc[m["representation"] == "latent", "accuracy"].iloc[0]), 3)
                                for v, m in metrics.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("-c", "--config", default=None, help="a run-config profile (default: full)")
    args = parser.parse_args()
    sizes = [run_size(rows, args.config) for rows in args.rows]
    by_rows = {s["rows"]: s for s in sizes}
    result = {"profile": args.config or "full", "sizes": sizes, "targets": TARGETS}
    if 1_000_000 in by_rows:
        big = by_rows[1_000_000]
        result["met"] = {"seconds_1m": big["seconds"] <= TARGETS["seconds_1m"],
                         "peak_rss_gb": max(s["peak_rss_gb"] for s in sizes) <= TARGETS["peak_rss_gb"]}
        if 100_000 in by_rows:
            growth = big["seconds_per_row"] / by_rows[100_000]["seconds_per_row"]
            result["per_row_growth_100k_to_1m"] = round(growth, 2)
            result["met"]["per_row_growth"] = growth <= TARGETS["per_row_growth"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
