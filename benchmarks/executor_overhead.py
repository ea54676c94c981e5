"""Benchmark: what Dagster's multiprocess executor costs per step, against the in-process one.

    CLUSTERING_DAG_DATA_DIR=../shared/data .venv/bin/python benchmarks/executor_overhead.py

On the quick profile (mnist): a cold in-process run fills a temporary cache, then `quick_run`
(in-process) and `parallel_quick_run` (multiprocess, 2 at a time) run warm, alternately, so both
do the same work (every step reuses its cached value). Per-step overhead is read from Dagster's
event log: from the executor launching a step's process to that step starting (a new interpreter
plus the import of the code location). Prints JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def execute(job: str, config: Path, env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([DAGSTER, "job", "execute", "-m", "clustering_dag.definitions", "-j", job,
                           "--tags", '{"dagster/partition": "mnist"}', "-c", str(config)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
    return time.perf_counter() - start, job


def step_overheads(home: Path) -> list[float]:
    """Seconds from STEP_WORKER_STARTING to STEP_START for each step of the latest multiprocess run."""
    from dagster import DagsterEventType, DagsterInstance, RunsFilter

    with DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(RunsFilter(job_name="parallel_quick_run"), limit=1)[0]
        launched, started = {}, {}
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None or not event.step_key:
                continue
            if event.event_type == DagsterEventType.STEP_WORKER_STARTING:
                launched[event.step_key] = record.timestamp
            elif event.event_type == DagsterEventType.STEP_START:
                started[event.step_key] = record.timestamp
    return [started[k] - launched[k] for k in launched if k in started]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from clustering_dag.profiles import quick

    with tempfile.TemporaryDirectory() as folder:
        home, cache = Path(folder) / "home", Path(folder) / "cache"
        home.mkdir()
        (home / "dagster.yaml").touch()
        config = Path(folder) / "quick.yaml"
        config.write_text(yaml.safe_dump(quick()))
        env = {**os.environ, "DAGSTER_HOME": str(home), "CLUSTERING_DAG_CACHE_DIR": str(cache)}
        cold, _ = execute("quick_run", config, env)
        times: dict[str, list[float]] = {"quick_run": [], "parallel_quick_run": []}
        overheads: list[float] = []
        for _ in range(args.repeats):
            for job in times:
                seconds, _ = execute(job, config, env)
                times[job].append(seconds)
            overheads += step_overheads(home)
        in_process, multiprocess = (statistics.median(times[j]) for j in times)
        print(json.dumps({
            "profile": "quick", "dataset": "mnist", "cores": os.cpu_count(),
            "cold_in_process_s": round(cold, 1),
            "warm_in_process_s": round(in_process, 1),
            "warm_multiprocess_s": round(multiprocess, 1),
            "multiprocess_over_in_process": round(multiprocess / in_process, 2),
            "steps": len(overheads) // args.repeats,
            "step_overhead_median_s": round(statistics.median(overheads), 2),
            "step_overhead_max_s": round(max(overheads), 2),
            "repeats": args.repeats,
        }, indent=2))


if __name__ == "__main__":
    main()
