"""Faults other than a killed worker, each on real services or a real disk: the broker restarted
with its data lost, PostgreSQL restarted, a worker that stops answering (with a YAML that lacks
the watch's settings), the disk full during a write, two runs of the same partition at once.

The Celery faults run ``celery_smoke_run`` at the quick profile's settings (the `paper` chain up to
``paper__manifold_representation``: the dataset, the `paper` VAE and its codes, reused from the
shared cold run, and the UMAP stage, whose first call in a worker compiles numba's kernels for
tens of seconds: the window the fault hits). Each prints what it saw as JSON, the numbers of
README "Failure modes"."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from clustering_dag.defs.executors import DEFAULT_QUEUE, VAE_QUEUE
from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests import test_celery
from clustering_dag_tests.conftest import graph_config
from clustering_dag_tests.services import restart_postgres, restart_redis
from clustering_dag_tests.test_celery import (
    BIN,
    DEFAULT_WORKER,
    CeleryCluster,
    events,
    run_events,
    steps,
    workers_of,
)

pytestmark = pytest.mark.services

cluster = test_celery.cluster  # the fixture: Redis, PostgreSQL, a DAGSTER_HOME, the workers

CHAIN_STEPS = {"raw_dataset", "noisy_dataset", "paper__trained_vae", "paper__latent_representation",
               "paper__manifold_representation"}
RUN_STEPS = CHAIN_STEPS | {"paper__trained_vae_latent_code_used"}  # and the VAE's asset check
VICTIM = "paper__manifold_representation"
# The victim's settings: UMAP on every training code for 1,000 epochs, so that the step is still
# running when a fault has had its effect (the shared graph's settings finish it in seconds).
VICTIM_CONFIG = {"fit_rows": None, "n_epochs": 1000, "restarts": 2}


def chain_config(cluster: CeleryCluster, lost_after: float, watched_worker_yaml: bool = True):
    """The shared Celery YAML (without the watch's settings when ``watched_worker_yaml`` is
    false: what the workers then read) and the run's: the shared graph's settings of the chain's
    steps (the victim's own: ``VICTIM_CONFIG``), the shared cache, ``worker_lost_after``."""
    celery_yaml, _ = cluster.write_config(worker_lost_after=lost_after)
    if not watched_worker_yaml:
        shipped = yaml.safe_load(celery_yaml.read_text())
        shipped["execution"]["config"].pop("config_source")
        celery_yaml.write_text(yaml.safe_dump(shipped))
    ops = {k: v for k, v in graph_config()["ops"].items() if k in CHAIN_STEPS}
    ops[VICTIM] = {"config": VICTIM_CONFIG}
    run = {"ops": ops, "resources": {"asset_storage": {"config": {"base_path": str(cluster.cache)}}},
           "execution": {"config": {"worker_lost_after": lost_after}}}
    run_yaml = cluster.folder / "chain.yaml"
    run_yaml.write_text(yaml.safe_dump(run))
    return celery_yaml, run_yaml


def start_chain(cluster: CeleryCluster, graph, lost_after: float, **how) -> subprocess.Popen:
    """The chain's run, its steps before the UMAP stage reused from the shared cold run (the same
    settings): the faults hit the UMAP stage, the steps before it are another test's."""
    cluster.seed_cache(graph, ["raw_dataset", "noisy_dataset", "paper/trained_vae",
                               "paper/latent_representation"])
    celery_yaml, run_yaml = chain_config(cluster, lost_after, **how)
    cluster.start_worker("vae", VAE_QUEUE)
    cluster.start_worker("default", DEFAULT_QUEUE)
    cluster.wait_for_workers("vae", "default")
    return subprocess.Popen(cluster.run_command(celery_yaml, run_yaml, job="celery_smoke_run"),
                            cwd=PROJECT_ROOT, env=cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_until_running(cluster: CeleryCluster, run: subprocess.Popen, step: str = VICTIM) -> None:
    """Until ``step`` has started in a worker and not finished."""
    from dagster import DagsterInstance

    deadline = time.monotonic() + 900
    with DagsterInstance.from_config(str(cluster.home)) as instance:
        while True:
            if run.poll() is not None:
                raise AssertionError("the run ended first:\n" + run.stdout.read()[-3000:])
            assert time.monotonic() < deadline, f"{step} did not start"
            runs = instance.get_runs(limit=1)
            records = list(instance.all_logs(runs[0].run_id)) if runs else []
            if step in workers_of(records) and step not in steps(records, "STEP_SUCCESS"):
                time.sleep(1.0)
                return
            time.sleep(0.2)


def finish(run: subprocess.Popen, seconds: float = 600) -> tuple[str, float]:
    start = time.monotonic()
    out, _ = run.communicate(timeout=seconds)
    return out, time.monotonic() - start


def rerun(cluster: CeleryCluster, run_id: str):
    proc = subprocess.run([sys.executable, "-m", "clustering_dag.rerun", run_id], cwd=PROJECT_ROOT,
                          env=cluster.env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:] + cluster.tail_logs()
    second, records = run_events(cluster.home)
    assert second.parent_run_id == run_id and second.is_success
    return set(workers_of(records))


def failures(records) -> dict[str, str]:
    """Each failed step's failure messages, joined (a terminated step may add its own later)."""
    told: dict[str, str] = {}
    for r in events(records, "STEP_FAILURE"):
        told[r.step_key] = told.get(r.step_key, "") + r.dagster_event.step_failure_data.error.message
    return told


def chain_is_whole(cluster: CeleryCluster) -> None:
    """Every asset of the chain is in the cache, its content matching its key."""
    from upath import UPath

    from clustering_dag.defs.storage import file_key, read_parquet

    for step in CHAIN_STEPS - {"paper__trained_vae"}:  # parquet files
        path = UPath(cluster.cache / step.replace("__", "/") / "mnist.parquet")
        read_parquet(path, lazy=False, expect_key=file_key(path, "parquet"))  # raises if not whole
    assert (cluster.cache / "paper" / "trained_vae" / "mnist.weights.h5").is_file()


def test_broker_restarted_with_its_data_lost_mid_run(cluster, shared_graph):
    """Redis stops for 3 s and comes back empty while the UMAP step runs: its state, the queued
    tasks and the results are gone. The run either goes on or fails in bounded time saying what
    happened; re-execution then completes."""
    run = start_chain(cluster, shared_graph, lost_after=15)
    wait_until_running(cluster, run)
    restarted = time.monotonic()
    restart_redis(cluster.broker, down_seconds=3)
    out, _ = finish(run)
    seconds = time.monotonic() - restarted
    first, records = run_events(cluster.home)
    assert seconds < 300, f"the run took {seconds:.0f} s after the broker's restart"
    seen = {"fault": "Redis restarted (3 s down, data lost) mid-step",
            "seconds_from_fault_to_run_end": round(seconds, 1), "run": first.status.value}
    if first.is_success:
        assert steps(records, "STEP_SUCCESS") == RUN_STEPS
    else:
        told = failures(records)
        assert told, out[-3000:]
        assert all(("broker" in m or "backend" in m or "stopped running" in m) and "re-execute" in m
                   for m in told.values()), told
        seen["failed"] = {s: m[:160] for s, m in told.items()}
        finished = steps(records, "STEP_SUCCESS")
        executed = rerun(cluster, first.run_id)
        assert not executed & finished and finished | executed == RUN_STEPS
        seen["reexecuted"] = sorted(executed)
    chain_is_whole(cluster)
    print(json.dumps(seen))


def test_postgres_restarted_mid_run(cluster, shared_graph, postgres_url):
    """PostgreSQL (runs, events) restarts while the UMAP step runs: every connection is cut. The
    run must end, never stay STARTED, and its assets be whole."""
    run = start_chain(cluster, shared_graph, lost_after=15)
    wait_until_running(cluster, run)
    restarted = time.monotonic()
    restart_postgres(postgres_url)
    out, _ = finish(run)
    seconds = time.monotonic() - restarted
    first, records = run_events(cluster.home)
    seen = {"fault": "PostgreSQL restarted mid-step", "run": first.status.value,
            "seconds_from_fault_to_run_end": round(seconds, 1)}
    assert first.status.value in ("SUCCESS", "FAILURE"), out[-3000:]
    if not first.is_success:
        seen["failed"] = {s: m[:160] for s, m in failures(records).items()}
        seen["reexecuted"] = sorted(rerun(cluster, first.run_id))
    chain_is_whole(cluster)
    print(json.dumps(seen))


def test_a_worker_that_stops_answering_is_lost_and_its_task_terminated(cluster, shared_graph):
    """The workers' YAML lacks the watch's settings (no `task_track_started`, prefetch on); the
    worker running the UMAP step freezes (SIGSTOP: a hung host, a network partition). The step
    fails as lost in bounded time; when the worker wakes it terminates the step instead of
    finishing it beside its re-execution; re-execution completes and reuses what had finished."""
    from dagster_celery.make_app import make_app

    run = start_chain(cluster, shared_graph, lost_after=10, watched_worker_yaml=False)
    wait_until_running(cluster, run)
    # `dagster-celery worker start` runs `celery worker` as its child: freeze that main process (it
    # answers the remote control); its pool process runs the step on.
    celery_main = int(subprocess.check_output(["pgrep", "-P", str(cluster.workers["default"].pid)],
                                              text=True).split()[0])
    os.kill(celery_main, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        out, _ = finish(run, seconds=300)
        seconds = time.monotonic() - frozen
    finally:
        os.kill(celery_main, signal.SIGCONT)
    first, records = run_events(cluster.home)
    assert first.is_failure, out[-3000:]
    told = failures(records)
    assert f'Celery worker "{DEFAULT_WORKER}" started step "{VICTIM}" and stopped running it' in told[VICTIM]
    assert seconds < 90, f"{seconds:.0f} s to give up on the frozen worker"

    # Woken, the worker hears the revoke: it terminates the step's process, which never succeeds.
    deadline = time.monotonic() + 120
    log = cluster.folder / "worker-default.log"
    while not (terminated := re.search(r"Terminating ([0-9a-f-]{36})", log.read_text())):
        assert time.monotonic() < deadline, "the lost step's task was not terminated" + cluster.tail_logs()
        time.sleep(1.0)
    task_id = terminated.group(1)
    app = make_app({"broker": cluster.env["CLUSTERING_DAG_BROKER_URL"],
                    "backend": cluster.env["CLUSTERING_DAG_RESULT_BACKEND"]})
    # Ended, not by success: REVOKED, or FAILURE when the step's process, interrupted by the
    # signal, reports its own end first.
    while (state := app.AsyncResult(task_id).state) not in ("REVOKED", "FAILURE"):
        assert state != "SUCCESS" and time.monotonic() < deadline, f"task {task_id} is {state}"
        time.sleep(1.0)
    finished = steps(run_events(cluster.home, first.run_id)[1], "STEP_SUCCESS")
    assert VICTIM not in finished

    executed = rerun(cluster, first.run_id)
    assert VICTIM in executed and not executed & finished
    chain_is_whole(cluster)
    print(json.dumps({"fault": "worker frozen (SIGSTOP) mid-step, worker YAML without the watch's "
                               "settings", "seconds_from_fault_to_run_failure": round(seconds, 1),
                      "terminated": task_id, "reexecuted": sorted(executed)}))


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs: a disk that fills up (needs root's `mount`; skipped where it is refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_keeps_the_old_file_whole_and_says_so(small_disk):
    import numpy as np
    import pyarrow as pa
    from upath import UPath

    from clustering_dag.defs.storage import CacheDiskFull, file_key, read_parquet, write_parquet

    path = UPath(small_disk / "paper" / "latent_representation" / "mnist.parquet")
    old = pa.table({"x": np.arange(1000, dtype="float64")})
    write_parquet(path, old, key="old-key")
    rng = np.random.default_rng(0)  # incompressible: 4 MB on a 2 MB disk
    big = pa.table({"x": rng.random(500_000)})
    with pytest.raises(CacheDiskFull, match=r"no space left on the disk of the asset cache while "
                                            r"writing .*mnist\.parquet.*asset_storage\.base_path"):
        write_parquet(path, big, key="new-key")
    assert file_key(path, "parquet") == "old-key"
    assert read_parquet(path, lazy=False, expect_key="old-key")["x"].tolist() == list(range(1000))
    assert [p.name for p in path.parent.iterdir()] == ["mnist.parquet"]  # no temp file left


def test_two_runs_of_the_same_partition_at_once_leave_each_file_matching_its_key(tmp_path, data_dir):
    """Two `dagster asset materialize` processes on one cache and one instance, the same
    partition, started together: every file ends whole, its content matching its key, and both
    runs report the same data versions."""
    from dagster import DagsterInstance
    from upath import UPath

    from clustering_dag.defs.storage import file_key, read_parquet

    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    with DagsterInstance.from_config(str(home)) as instance:  # the tables, before two processes
        instance.get_runs(limit=1)
    config = tmp_path / "run.yaml"
    selection = ["raw_dataset", "noisy_dataset", "original_representation", "clusters_original"]
    ops = {k: v for k, v in graph_config()["ops"].items() if k in selection}
    config.write_text(yaml.safe_dump({"ops": ops}))
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLUSTERING_DAG_CACHE_DIR": str(cache),
           "CLUSTERING_DAG_DATA_DIR": str(data_dir)}
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "clustering_dag.definitions",
               "--select", ",".join(selection), "--partition", "mnist", "-c", str(config)]
    runs = [subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-2000:] for o in outs)

    files = sorted(cache.rglob("*.parquet"))
    assert {f.relative_to(cache).parts[0] for f in files} == set(selection)
    keys = {f.relative_to(cache).parts[0]: file_key(UPath(f), "parquet") for f in files}
    for f in files:  # content digest and key checked together: raises if not whole
        read_parquet(UPath(f), lazy=False, expect_key=keys[f.relative_to(cache).parts[0]])
    assert not [p for p in cache.rglob(".tmp-*")]
    with DagsterInstance.from_config(str(home)) as instance:
        versions: dict[str, set] = {}
        for record in instance.get_runs():
            for event in instance.all_logs(record.run_id):
                if event.is_dagster_event and event.dagster_event.is_step_materialization:
                    m = event.dagster_event.step_materialization_data.materialization
                    versions.setdefault(m.asset_key.path[-1], set()).add(m.tags["dagster/data_version"])
    assert versions == {name: {keys[name]} for name in selection}
