"""A real materialization recorded in a PostgreSQL-backed Dagster instance (dagster-postgres),
against a server this test starts on 127.0.0.1 (Debian's postgresql package)."""

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from clustering_dag.definitions import resources
from clustering_dag.defs.assets.datasets import noisy_test_set, raw_dataset

pytestmark = pytest.mark.slow


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
