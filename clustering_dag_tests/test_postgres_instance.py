"""A real materialization recorded in a PostgreSQL-backed Dagster instance (dagster-postgres),
against a server this test starts on 127.0.0.1 (Debian's postgresql package)."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from clustering_dag.definitions import resources
from clustering_dag.defs.assets.datasets import noisy_test_set, raw_dataset

PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    PG_BIN is None or not shutil.which("runuser"),
    reason="needs Debian's postgresql package (apt-get install postgresql)")]


def as_postgres(*cmd: str) -> None:
    user = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    subprocess.run([*user, *cmd], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def postgres_url():
    # Not under pytest's tmp folder: the postgres user must be able to reach it.
    folder = Path(tempfile.mkdtemp(prefix="clustering_dag_pg_"))
    data, sockets = folder / "data", folder / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        for path in (folder, data, sockets):
            os.chown(path, pg.pw_uid, pg.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_postgres(f"{PG_BIN}/initdb", "-D", str(data), "--auth=trust", "-U", "postgres")
    as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(data), "-w", "-l", str(folder / "log"),
                "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "start")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_materialization_recorded_in_postgres(postgres_url, env_data_dir, cache_dir, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: {postgres_url}\n")
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = materialize(
            [raw_dataset, noisy_test_set], partition_key="fashion_mnist", instance=instance,
            resources=resources,
            run_config={"ops": {"raw_dataset": {"config": {"train_rows": 500, "test_rows": 200}}}})
        assert result.success
        event = instance.get_latest_materialization_event(AssetKey("noisy_test_set"))
        assert event.asset_materialization.partition == "fashion_mnist"
        assert event.asset_materialization.metadata["dagster/row_count"].value == 700
        assert instance.get_run_by_id(result.run_id).is_success
    with DagsterInstance.from_config(str(home)) as reopened:  # persisted in the server
        assert reopened.get_run_by_id(result.run_id) is not None
