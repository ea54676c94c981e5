"""Dagster's local scale-out for real: two partitions materialized by two processes at once, and a
run on the multiprocess executor (over a copy of the shared cold run: every step runs in its own
process and reuses its cached value)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests.conftest import graph_config, initialized_dagster_home

DAGSTER = str(Path(sys.executable).with_name("dagster"))


pytestmark = pytest.mark.slow


def env_for(tmp_path, data_dir) -> dict:
    home = initialized_dagster_home(tmp_path / "home")
    return {**os.environ, "DAGSTER_HOME": str(home), "CLUSTERING_DAG_DATA_DIR": str(data_dir),
            "CLUSTERING_DAG_CACHE_DIR": str(tmp_path / "cache")}


def test_both_partitions_in_parallel_processes(tmp_path, data_dir):
    env = env_for(tmp_path, data_dir)
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({"ops": {"raw_dataset": {"config": {"train_rows": 3000}}}}))
    procs = {p: subprocess.Popen(
        [DAGSTER, "asset", "materialize", "-m", "clustering_dag.definitions", "--select",
         "raw_dataset,noisy_dataset", "--partition", p, "-c", str(config)],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for p in ("mnist", "fashion_mnist")}
    for partition, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        assert (tmp_path / "cache" / "noisy_dataset" / f"{partition}.parquet").stat().st_size > 0


@pytest.mark.services  # a process per step: minutes, with the scale-out tier
def test_multiprocess_executor_runs_the_shared_graph(graph_copy, tmp_path, data_dir):
    env = {**os.environ, "DAGSTER_HOME": str(graph_copy.home), "CLUSTERING_DAG_DATA_DIR": str(data_dir),
           "CLUSTERING_DAG_CACHE_DIR": str(graph_copy.cache)}
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(graph_config()))
    proc = subprocess.run(
        [DAGSTER, "job", "execute", "-m", "clustering_dag.definitions", "-j", "parallel_quick_run",
         "--tags", '{"dagster/partition": "mnist"}', "-c", str(config)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Executing steps using multiprocess executor" in log
    assert "RUN_SUCCESS" in log
    assert log.count("STEP_WORKER_STARTING") >= 30  # a process per step
    assert (graph_copy.cache / "paper" / "paper_comparison" / "mnist.parquet").is_file()
