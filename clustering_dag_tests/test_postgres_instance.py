"""A real materialization recorded in a PostgreSQL-backed Dagster instance (dagster-postgres),
against a server this test starts on 127.0.0.1 (Debian's postgresql package)."""

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from clustering_dag.definitions import resources
from clustering_dag.defs.assets.datasets import noisy_dataset, raw_dataset
from clustering_dag_tests.services import PG_URL_VARIABLE, postgres_dagster_home

pytestmark = pytest.mark.services


def test_materialization_recorded_in_postgres(postgres_url, env_data_dir, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(PG_URL_VARIABLE, postgres_url)
    home = postgres_dagster_home(tmp_path / "dagster_home")
    assert "postgresql" not in (home / "dagster.yaml").read_text()  # no credentials in the file
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = materialize(
            [raw_dataset, noisy_dataset], partition_key="fashion_mnist", instance=instance,
            resources=resources,
            run_config={"ops": {"raw_dataset": {"config": {"train_rows": 500, "test_rows": 200}}}})
        assert result.success
        event = instance.get_latest_materialization_event(AssetKey("noisy_dataset"))
        assert event.asset_materialization.partition == "fashion_mnist"
        assert event.asset_materialization.metadata["dagster/row_count"].value == 700
        assert instance.get_run_by_id(result.run_id).is_success
    with DagsterInstance.from_config(str(home)) as reopened:  # persisted in the server
        assert reopened.get_run_by_id(result.run_id) is not None


def test_the_server_refuses_a_client_without_the_password(postgres_url):
    import psycopg2

    plain = postgres_url.replace("postgresql+psycopg2", "postgresql")
    user, rest = plain.split("://", 1)[1].split("@", 1)
    with psycopg2.connect(plain) as conn:  # the role, with its password
        assert conn.info.user == "clustering_dag"
    for anonymous in (f"postgresql://{user.split(':')[0]}@{rest}", f"postgresql://postgres@{rest}"):
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(anonymous, connect_timeout=10)
