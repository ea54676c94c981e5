"""The graph on Dagster's Celery executor, for real: a Redis broker, Dagster's storage in
PostgreSQL, two `dagster-celery` workers (one consuming the `vae` queue, one the default queue)
on 127.0.0.1 — the set-up that spans machines when the addresses change. The quick profile's
whole graph runs through them (the `dae` and `elbo` values reused from the shared cold run, the
datasets and the `paper` variant computed); a worker is SIGKILLed mid-run, the run fails in
bounded time with a message saying so, and re-executing it from failure reuses every finished
step. (CI's run of the README's scale-out block computes the whole graph through two workers.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from clustering_dag.core.variants import VARIANTS
from clustering_dag.definitions import all_assets
from clustering_dag.defs.executors import DEFAULT_QUEUE, VAE_QUEUE
from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests.conftest import graph_config
from clustering_dag_tests.services import PG_URL_VARIABLE, postgres_dagster_home, redis_server

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent
HOST = socket.gethostname()
VAE_WORKER, DEFAULT_WORKER = f"vae@{HOST}", f"default@{HOST}"
DATA_VERSION = "dagster/data_version"


@dataclass
class CeleryCluster:
    """A broker, a PostgreSQL-backed DAGSTER_HOME, an asset cache and the workers of one test."""

    folder: Path
    broker: str
    env: dict
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    def write_config(self, worker_lost_after: float) -> tuple[Path, Path]:
        """The Celery YAML the workers and the run share (as clustering_dag/deploy/celery.yaml,
        with this test's broker), and the run's own: the quick profile, the shared cache path,
        how long a lost worker is waited for."""
        celery_yaml = self.folder / "celery.yaml"  # as shipped: the broker's URL is in self.env
        celery_yaml.write_text((PROJECT_ROOT / "clustering_dag/deploy/celery.yaml").read_text())
        run = {**graph_config(),
               "resources": {"asset_storage": {"config": {"base_path": str(self.cache)}}},
               "execution": {"config": {"worker_lost_after": worker_lost_after}}}
        run_yaml = self.folder / "run.yaml"
        run_yaml.write_text(yaml.safe_dump(run))
        return celery_yaml, run_yaml

    def seed_cache(self, graph, folders: list[str]) -> None:
        """The shared cold run's values in ``folders`` of its cache (``"dae"``, ``"figures/dae"``,
        ``"paper/trained_vae"``) put in this cluster's cache: a run at the same settings reuses
        them (on the workers, under the same cache keys) and computes the rest for real."""
        for folder in folders:
            shutil.copytree(graph.cache / folder, self.cache / folder)

    def start_worker(self, name: str, queue: str) -> None:
        log = open(self.folder / f"worker-{name}.log", "a")  # noqa: SIM115 (the worker's lifetime)
        self.workers[name] = subprocess.Popen(
            [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
             "-y", str(self.folder / "celery.yaml"), "-q", queue, "-n", name, "--", "--concurrency=1"],
            cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_for_workers(self, *names: str, seconds: float = 300) -> None:
        from dagster_celery.make_app import make_app

        app = make_app({"broker": f"{self.broker}/0", "backend": f"{self.broker}/1"})
        deadline = time.monotonic() + seconds
        while True:
            answered = {name for reply in app.control.ping(timeout=1.0) for name in reply}
            if {f"{n}@{HOST}" for n in names} <= answered:
                return
            assert time.monotonic() < deadline, f"workers did not start: {self.tail_logs()}"

    def kill_worker(self, name: str) -> None:
        """SIGKILL to the worker and its pool processes: a machine lost, as the run sees it."""
        proc = self.workers.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.workers):
            self.kill_worker(name)

    def run_command(self, celery_yaml: Path, run_yaml: Path, job: str = "celery_run") -> list[str]:
        return [str(BIN / "dagster"), "job", "execute", "-m", "clustering_dag.definitions",
                "-j", job, "-c", str(celery_yaml), "-c", str(run_yaml),
                "--tags", json.dumps({"dagster/partition": "mnist"})]

    def tail_logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.folder.glob("worker-*.log")))


@pytest.fixture
def cluster(tmp_path, data_dir, postgres_url, monkeypatch):
    """Redis and PostgreSQL on 127.0.0.1 (a database of this test's own), and the environment
    every process of the test gets. The workers start in the test."""
    import psycopg2

    database = f"celery_{tmp_path.name.lower().replace('-', '_')}"[:60]
    conn = psycopg2.connect(postgres_url.replace("postgresql+psycopg2", "postgresql"))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{database}"')
    conn.close()
    monkeypatch.setenv(PG_URL_VARIABLE, postgres_url.rsplit("/", 1)[0] + f"/{database}")
    home = postgres_dagster_home(tmp_path / "home")
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:  # tables made once, before the workers
        instance.get_runs(limit=1)
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLUSTERING_DAG_DATA_DIR": str(data_dir),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("CLUSTERING_DAG_CACHE_DIR", None)  # the run config names the cache every worker uses
    with redis_server() as broker:
        env.update(CLUSTERING_DAG_BROKER_URL=f"{broker}/0", CLUSTERING_DAG_RESULT_BACKEND=f"{broker}/1")
        created = CeleryCluster(tmp_path, broker, env)
        try:
            yield created
        finally:
            created.stop()


def run_events(home: Path, run_id: str | None = None):
    """The run (the newest, or ``run_id``) and its event records."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id) if run_id else instance.get_runs(limit=1)[0]
        return run, list(instance.all_logs(run.run_id))


def workers_of(records) -> dict[str, str]:
    """Which Celery worker executed each step (the worker's engine event at the task's start)."""
    return {r.step_key: r.dagster_event.engine_event_data.metadata["Celery worker"].value
            for r in records if r.is_dagster_event and r.dagster_event.is_engine_event
            and r.message.endswith(" in celery worker")}


def events(records, event_type: str) -> list:
    return [r for r in records if r.is_dagster_event and r.dagster_event.event_type_value == event_type]


def steps(records, event_type: str) -> set[str]:
    return {r.step_key for r in events(records, event_type)}


def keyed(materializations) -> dict[tuple, str]:
    """Each materialized asset partition's data version: its cache key."""
    return {(tuple(e.asset_key.path), e.partition):
            e.step_materialization_data.materialization.tags[DATA_VERSION] for e in materializations}


def data_versions(records) -> dict[tuple, str]:
    return keyed(r.dagster_event for r in events(records, "ASSET_MATERIALIZATION"))


def in_process_versions(shared_graph) -> dict[tuple, str]:
    return keyed(shared_graph.result.get_asset_materialization_events())


def test_workers_run_the_graph_a_lost_worker_fails_it_and_reexecution_finishes_it(cluster, shared_graph):
    """The whole graph through the workers: a SIGKILLed worker fails the run in bounded time with a
    message saying so, re-execution from failure runs only what had not finished, and both runs
    together ran every step on its queue and made every asset with the in-process run's cache key."""
    from dagster import DagsterInstance

    cluster.seed_cache(shared_graph, ["dae", "elbo", "figures/dae", "figures/elbo"])  # `paper` computes
    celery_yaml, run_yaml = cluster.write_config(worker_lost_after=10)
    cluster.start_worker("vae", VAE_QUEUE)
    cluster.start_worker("default", DEFAULT_QUEUE)
    cluster.wait_for_workers("vae", "default")
    start = time.perf_counter()
    run = subprocess.Popen(cluster.run_command(celery_yaml, run_yaml), cwd=PROJECT_ROOT, env=cluster.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # Kill the default worker while it runs a step that takes several seconds: the `paper`
    # variant's UMAP stage (the other variants' are reused from the cache in a moment).
    victim, deadline = "paper__manifold_representation", time.monotonic() + 900
    with DagsterInstance.from_config(str(cluster.home)) as instance:
        while True:
            assert run.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            runs = instance.get_runs(limit=1)
            records = list(instance.all_logs(runs[0].run_id)) if runs else []
            if workers_of(records).get(victim) == DEFAULT_WORKER:
                break
            time.sleep(0.2)
    time.sleep(0.5)
    cluster.kill_worker("default")
    killed_at = time.monotonic()
    out, _ = run.communicate(timeout=300)
    waited = time.monotonic() - killed_at

    first, records = run_events(cluster.home)
    assert run.returncode != 0 and first.is_failure, out[-3000:]
    assert waited < 90, f"the run took {waited:.0f} s to give up on the lost worker"
    failures = {r.step_key: r.dagster_event.step_failure_data.error.message
                for r in events(records, "STEP_FAILURE")}
    assert victim in failures, f"{victim} finished before the kill; failures: {failures}"
    lost = f'Celery worker "{DEFAULT_WORKER}" started step "{victim}" and stopped running it'
    assert lost in failures[victim]
    assert "re-execute this run from failure" in failures[victim]
    finished = steps(records, "STEP_SUCCESS")
    assert {"raw_dataset", "paper__trained_vae", "elbo__trained_vae"} <= finished

    cluster.start_worker("default", DEFAULT_QUEUE)
    cluster.wait_for_workers("default")
    rerun_start = time.perf_counter()
    rerun = subprocess.run([sys.executable, "-m", "clustering_dag.rerun", first.run_id], cwd=PROJECT_ROOT,
                           env=cluster.env, capture_output=True, text=True, timeout=1500)
    rerun_seconds = time.perf_counter() - rerun_start
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:] + cluster.tail_logs()
    second, records2 = run_events(cluster.home)
    assert second.parent_run_id == first.run_id and second.is_success
    executed = set(workers_of(records2))
    assert victim in executed and not executed & finished  # nothing that had finished ran again
    assert finished | executed == set(in_process_steps(shared_graph))

    # Every step ran in a worker, on its queue: training on the `vae` worker, the rest on the other.
    where = {**workers_of(records), **workers_of(records2)}
    assert set(where) == finished | steps(records2, "STEP_SUCCESS") and len(where) == len(all_assets)
    training = {f"{v}__{a}" for v in VARIANTS for a in ("trained_vae", "seed_spread", "refined_classifier")}
    training |= {"trained_encoder", "shared_seed_spread"}  # the shared part's training
    assert {s for s, w in where.items() if w == VAE_WORKER} == training
    assert {w for s, w in where.items() if s not in training} == {DEFAULT_WORKER}
    # Both runs together made every asset, with the cache keys of the in-process run.
    assert {**data_versions(records), **data_versions(records2)} == in_process_versions(shared_graph)
    assert (cluster.cache / "paper" / "paper_comparison" / "mnist.parquet").is_file()
    print(json.dumps({"killed_during": victim, "seconds_from_kill_to_run_failure": round(waited, 1),
                      "failed": {s: m[:100] for s, m in failures.items()},
                      "finished_before_kill": len(finished), "reexecuted": sorted(executed),
                      "reexecution_seconds": round(rerun_seconds, 1),
                      "celery_seconds_both_runs": round(time.perf_counter() - start, 1),
                      "in_process_run_seconds": round(run_seconds(shared_graph), 1),
                      "workers": {w: sorted(s for s in where if where[s] == w)
                                  for w in set(where.values())}}))


def run_seconds(shared_graph) -> float:
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(shared_graph.home)) as instance:
        stats = instance.get_run_stats(shared_graph.result.run_id)
    return stats.end_time - stats.launch_time if stats.launch_time else stats.end_time - stats.start_time


def in_process_steps(shared_graph) -> list[str]:
    return [e.step_key for e in shared_graph.result.all_events if e.event_type_value == "STEP_SUCCESS"]
