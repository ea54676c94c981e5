"""Benchmark: the README's main command, cold, with the seconds of every step.

    .venv/bin/python benchmarks/main_command.py [--partitions mnist fashion_mnist] [--warm]
                                                [-c clustering_dag/profiles/quick.yaml]

Runs exactly what the README's main command runs — `dagster asset materialize --select '*'` for
each dataset, one after the other — against a new DAGSTER_HOME and asset cache (so nothing is
reused), then reads each step's duration from the run's event log. With ``--warm`` it runs the
same command again on the filled cache. Prints JSON: wall seconds per dataset and round, and
per-step seconds. Target (issue "Speed and scale"): both datasets cold, paper profile, on 2 cores,
in at most 15 minutes.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 15 * 60
ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def step_seconds(home: Path) -> dict[str, float]:
    """Seconds of each step of the newest run in ``home``, from its event log."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        starts, out = {}, {}
        for entry in instance.all_logs(
                run.run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}):
            if entry.dagster_event.event_type == DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
            else:
                out[entry.step_key] = round(entry.timestamp - starts[entry.step_key], 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", nargs="+", default=["mnist", "fashion_mnist"])
    parser.add_argument("-c", "--config", default=None, help="a run-config profile (default: full)")
    parser.add_argument("--warm", action="store_true", help="then run again on the filled cache")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="main_command_"))
    home = work / "home"
    home.mkdir()
    (home / "dagster.yaml").touch()
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLUSTERING_DAG_CACHE_DIR": str(work / "cache")}
    result = {"partitions": args.partitions, "profile": args.config or "full", "runs": [],
              "dagster_home": str(home), "cache_dir": str(work / "cache")}
    for round_ in ["cold", "warm"] if args.warm else ["cold"]:
        for partition in args.partitions:
            command = [DAGSTER, "asset", "materialize", "-m", "clustering_dag.definitions", "--select", "*",
                       "--partition", partition, *(["-c", args.config] if args.config else [])]
            start = time.perf_counter()
            proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            seconds = round(time.perf_counter() - start, 1)
            if proc.returncode != 0:
                sys.exit(f"{partition} ({round_}) failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
            result["runs"].append({"round": round_, "partition": partition, "seconds": seconds,
                                   "log_lines": (proc.stdout + proc.stderr).count("\n"),
                                   "steps": step_seconds(home)})
    cold = sum(r["seconds"] for r in result["runs"] if r["round"] == "cold")
    result.update(cold_seconds=round(cold, 1), target_seconds=TARGET_SECONDS,
                  met=cold <= TARGET_SECONDS if args.config is None else None)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
