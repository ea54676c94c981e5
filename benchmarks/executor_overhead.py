"""Benchmark: what Dagster's multiprocess executor costs per step, against the in-process one.

    CLUSTERING_DAG_DATA_DIR=../shared/data .venv/bin/python benchmarks/executor_overhead.py

On the quick profile (mnist): a cold in-process run fills a temporary cache, then `quick_run`
(in-process) and `parallel_quick_run` (multiprocess, 2 at a time) with each start method
(`spawn`: a new interpreter per step, Dagster's default; `forkserver`: steps forked from a process
that imported the code location once, the project's setting) run warm, in turn, so all do the
same work (every step reuses its cached value). Per-step overhead is read from Dagster's event
log: from the executor launching a step's process to that step starting. Prints JSON.
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


def execute(job: str, config: Path, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run([DAGSTER, "job", "execute", "-m", "clustering_dag.definitions", "-j", job,
                           "--tags", '{"dagster/partition": "mnist"}', "-c", str(config)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
    return time.perf_counter() - start


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
    from clustering_dag.defs.jobs import MULTIPROCESS
    from clustering_dag.profiles import quick

    with tempfile.TemporaryDirectory() as folder:
        home, cache = Path(folder) / "home", Path(folder) / "cache"
        home.mkdir()
        (home / "dagster.yaml").touch()
        configs = {}
        spawn = {**MULTIPROCESS, "start_method": {"spawn": {}}}
        for name, execution in (("in_process", None), ("spawn", spawn), ("forkserver", MULTIPROCESS)):
            configs[name] = Path(folder) / f"{name}.yaml"
            configs[name].write_text(yaml.safe_dump(
                {**quick(), **({"execution": {"config": execution}} if execution else {})}))
        env = {**os.environ, "DAGSTER_HOME": str(home), "CLUSTERING_DAG_CACHE_DIR": str(cache)}
        cold = execute("quick_run", configs["in_process"], env)
        times: dict[str, list[float]] = {name: [] for name in configs}
        overheads: dict[str, list[float]] = {"spawn": [], "forkserver": []}
        for _ in range(args.repeats):
            for name, config in configs.items():
                times[name].append(execute("quick_run" if name == "in_process" else "parallel_quick_run",
                                           config, env))
                if name in overheads:
                    overheads[name] += step_overheads(home)
        median = {name: statistics.median(t) for name, t in times.items()}
        print(json.dumps({
            "profile": "quick", "dataset": "mnist", "cores": os.cpu_count(), "max_concurrent": 2,
            "cold_in_process_s": round(cold, 1),
            "warm_run_s": {name: round(t, 1) for name, t in median.items()},
            "warm_over_in_process": {name: round(t / median["in_process"], 2) for name, t in median.items()},
            "steps": len(overheads["spawn"]) // args.repeats,
            "step_start_overhead_median_s": {k: round(statistics.median(v), 2) for k, v in overheads.items()},
            "step_start_overhead_max_s": {k: round(max(v), 2) for k, v in overheads.items()},
            "repeats": args.repeats,
        }, indent=2))


if __name__ == "__main__":
    main()
