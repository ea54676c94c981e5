import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import build_input_context, build_output_context
from upath import UPath

from clustering_dag.core.arrays import Splits, splits_to_table, table_to_splits
from clustering_dag.core.errors import DataError
from clustering_dag.defs.io_managers import ParquetIOManager
from clustering_dag.defs.storage import AssetStorage, atomic_write


def make_splits(dim=6, labels=True):
    rng = np.random.default_rng(0)
    return Splits(rng.random((7, dim), dtype=np.float32), rng.integers(0, 10, 7) if labels else None,
                  rng.random((3, dim), dtype=np.float32), rng.integers(0, 10, 3) if labels else None,
                  meta={"image_shape": [2, 3]})


@pytest.mark.parametrize("labels", [True, False])
def test_splits_table_round_trip(labels):
    s = make_splits(labels=labels)
    table = splits_to_table(s)
    assert table.column_names == ["split", "label", "x"]
    assert str(table.schema.field("x").type) == "fixed_size_list<item: float>[6]"
    back = table_to_splits(table)
    for split in ("train", "test"):
        np.testing.assert_array_equal(back.xy(split)[0], s.xy(split)[0])
        if labels:
            np.testing.assert_array_equal(back.xy(split)[1], s.xy(split)[1])
        else:
            assert back.xy(split)[1] is None
    assert back.meta == s.meta


def _contexts(asset_key="thing", partition="mnist"):
    from dagster import AssetKey, StaticPartitionsDefinition

    parts = StaticPartitionsDefinition(["mnist", "fashion_mnist"])
    out = build_output_context(asset_key=AssetKey(asset_key), partition_key=partition,
                               asset_partitions_def=parts)
    inp = build_input_context(asset_key=AssetKey(asset_key), partition_key=partition,
                              asset_partitions_def=parts, upstream_output=out)
    return out, inp


@pytest.mark.parametrize("value", [make_splits(), pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})])
def test_io_manager_round_trip_and_layout(tmp_path, value):
    manager = ParquetIOManager(AssetStorage(base_path=str(tmp_path)))
    out, inp = _contexts()
    manager.handle_output(out, value)
    path = tmp_path / "thing" / "mnist.parquet"
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["mnist.parquet"]  # no temp file left
    meta = out.get_logged_metadata()
    assert meta["path"].value == str(path)
    assert meta["size_bytes"].value == path.stat().st_size
    assert meta["dagster/row_count"].value == 10 if isinstance(value, Splits) else 2
    back = manager.load_input(inp)
    if isinstance(value, Splits):
        np.testing.assert_array_equal(back.train_x, value.train_x)
    else:
        pd.testing.assert_frame_equal(back, value)


def test_failing_write_leaves_no_file(tmp_path):
    target = UPath(tmp_path / "a" / "b.parquet")

    def broken(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert list((tmp_path / "a").iterdir()) == []


def test_failing_write_keeps_previous_version(tmp_path):
    manager = ParquetIOManager(AssetStorage(base_path=str(tmp_path)))
    out, inp = _contexts()
    manager.handle_output(out, pd.DataFrame({"v": [1]}))

    class Unstorable:
        pass

    with pytest.raises(TypeError):
        manager.handle_output(_contexts()[0], Unstorable())
    assert manager.load_input(inp)["v"].tolist() == [1]


def test_corrupted_parquet_is_reported(tmp_path):
    manager = ParquetIOManager(AssetStorage(base_path=str(tmp_path)))
    out, inp = _contexts()
    manager.handle_output(out, make_splits())
    path = tmp_path / "thing" / "mnist.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"mnist\.parquet is unreadable .* Re-materialize"):
        manager.load_input(inp)


def test_parquet_is_plain_parquet(tmp_path):
    """Files are readable by any parquet tool, without the project's code."""
    manager = ParquetIOManager(AssetStorage(base_path=str(tmp_path)))
    out, _ = _contexts()
    manager.handle_output(out, make_splits())
    table = pq.read_table(tmp_path / "thing" / "mnist.parquet")
    assert table.num_rows == 10 and table.column("split").to_pylist().count("test") == 3


def test_splits_validation():
    with pytest.raises(DataError, match="train has 7 rows but 2 labels"):
        Splits(np.zeros((7, 2), np.float32), np.zeros(2), np.zeros((1, 2), np.float32), np.zeros(1))
    with pytest.raises(DataError, match="train has 2 features but test has 3"):
        Splits(np.zeros((1, 2), np.float32), None, np.zeros((1, 3), np.float32), None)
