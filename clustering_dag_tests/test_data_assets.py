"""The dataset assets materialized with Dagster on the real data, for both partitions."""

import numpy as np
import pytest
from dagster import materialize

from clustering_dag.core.errors import DataError
from clustering_dag.definitions import resources
from clustering_dag.defs.assets.datasets import noisy_dataset, raw_dataset
from clustering_dag.defs.resources import DatasetSource


@pytest.mark.parametrize("partition", ["mnist", "fashion_mnist"])
def test_materialize_raw_and_noisy(env_data_dir, cache_dir, partition):
    result = materialize([raw_dataset, noisy_dataset], partition_key=partition, resources=resources)
    assert result.success
    raw = result.output_for_node("raw_dataset")
    noisy = result.output_for_node("noisy_dataset")
    assert raw.train_x.shape == (60_000, 784) and raw.test_x.shape == (10_000, 784)
    np.testing.assert_array_equal(noisy.test_y, raw.test_y)
    delta = noisy.test_x - raw.test_x
    assert abs(delta.mean()) < 1e-3 and abs(delta.std() - 0.05) < 1e-3
    assert (cache_dir / "raw_dataset" / f"{partition}.parquet").is_file()
    assert (cache_dir / "noisy_dataset" / f"{partition}.parquet").is_file()
    meta = result.asset_materializations_for_node("raw_dataset")[0].metadata
    assert meta["train_shape"].value == "(60000, 28, 28)"
    assert meta["dagster/row_count"].value == 70_000


def test_noise_config_from_run_config(env_data_dir, cache_dir):
    result = materialize(
        [raw_dataset, noisy_dataset], partition_key="mnist", resources=resources,
        run_config={"ops": {"raw_dataset": {"config": {"train_rows": 100, "test_rows": 2000}},
                            "noisy_dataset": {"config": {"sigma": 0.2, "clip": True}}}})
    noisy = result.output_for_node("noisy_dataset")
    assert noisy.train_x.shape == (100, 784) and noisy.test_x.shape == (2000, 784)
    assert noisy.test_x.min() >= 0 and noisy.test_x.max() <= 1
    meta = result.asset_materializations_for_node("noisy_dataset")[0].metadata
    assert meta["sigma"].value == 0.2 and meta["clipped"].value is True


def test_missing_data_fails_clearly_and_caches_nothing(tmp_path, cache_dir, monkeypatch):
    monkeypatch.delenv("CLUSTERING_DAG_DATA_DIR", raising=False)
    source = DatasetSource(data_dir=str(tmp_path / "empty"), cache_dir=str(tmp_path / "raw"),
                           allow_download=False)
    result = materialize([raw_dataset], partition_key="mnist", raise_on_error=False,
                         resources={**resources, "dataset_source": source})
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "DataError" in failure.cls_name or "DataError" in failure.to_string()
    assert "dataset 'mnist' not found" in failure.to_string()
    assert not (cache_dir / "raw_dataset").exists()


def test_unknown_dataset_is_an_error():
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        DatasetSource().load("cifar")


def test_asset_storage_run_config_moves_every_io_manager(env_data_dir, cache_dir, tmp_path):
    """`resources.asset_storage.config.base_path` (what the README and the Celery workers use) is
    where the IO managers write, not only what steps that take the resource see."""
    elsewhere = tmp_path / "elsewhere"
    result = materialize(
        [raw_dataset, noisy_dataset], partition_key="mnist", resources=resources,
        run_config={"ops": {"raw_dataset": {"config": {"train_rows": 100, "test_rows": 50}}},
                    "resources": {"asset_storage": {"config": {"base_path": str(elsewhere)}}}})
    assert result.success
    stored = sorted(p.relative_to(elsewhere).as_posix() for p in elsewhere.rglob("*.parquet"))
    assert [p for p in stored if ".versions" not in p] == [
        "noisy_dataset/mnist.parquet", "raw_dataset/mnist.parquet"]
    assert [p.rsplit("/", 1)[0] for p in stored if ".versions" in p] == [  # each kept by its key
        "noisy_dataset/.versions/mnist", "raw_dataset/.versions/mnist"]
    assert not cache_dir.exists()
