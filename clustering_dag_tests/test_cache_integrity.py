"""A stored value is bound to its content: a damaged page under an intact footer, a file planted
without the cache's secret, a file replaced between its check and its read, damaged weights or a
damaged figure are each refused, never served; an object-store write is one request."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from clustering_dag.core.arrays import Splits, splits_to_table
from clustering_dag.core.errors import DataError
from clustering_dag.defs import storage
from clustering_dag.defs.storage import AssetStorage, file_key, read_parquet, write_parquet


def _splits(value: float, rows: int = 50) -> pa.Table:
    x = np.full((rows, 784), value, np.float32)
    return splits_to_table(Splits(x, None, x[:5], None))


def test_a_damaged_page_under_an_intact_footer_is_refused(tmp_path):
    path = UPath(tmp_path / "a.parquet")
    write_parquet(path, _splits(0.5), "k1")
    assert read_parquet(path, lazy=False).train_x.shape == (50, 784)
    data = bytearray((tmp_path / "a.parquet").read_bytes())
    data[200] ^= 0xFF  # inside the first data page
    (tmp_path / "a.parquet").write_bytes(bytes(data))
    assert pq.read_metadata(tmp_path / "a.parquet").num_rows == 55  # the footer is intact
    assert file_key(path, "parquet") == "k1"  # and still names the key
    with pytest.raises(DataError, match="its content does not match its digest"):
        read_parquet(path, lazy=False)


def test_a_planted_file_or_one_without_the_secret_is_refused(tmp_path, monkeypatch):
    planted = tmp_path / "planted.parquet"
    table = _splits(0.1)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata,
                                                  storage.KEY_FIELD.encode(): b"k1"}), planted)
    with pytest.raises(DataError, match="its content does not match its digest"):
        read_parquet(UPath(planted), lazy=False)

    monkeypatch.setenv("CLUSTERING_DAG_CACHE_SECRET", "writer-secret")
    shared = UPath(tmp_path / "shared.parquet")
    write_parquet(shared, _splits(0.2), "k2")
    assert read_parquet(shared, lazy=False).train_x[0, 0] == pytest.approx(0.2)
    monkeypatch.setenv("CLUSTERING_DAG_CACHE_SECRET", "another-secret")
    with pytest.raises(DataError, match="without this cache's secret"):
        read_parquet(shared, lazy=False)
    monkeypatch.delenv("CLUSTERING_DAG_CACHE_SECRET")
    with pytest.raises(DataError, match="its content does not match"):
        read_parquet(shared, lazy=False)


def test_a_file_replaced_between_its_check_and_its_read_is_not_served(tmp_path):
    """The key is checked when the file is opened and again by the read that loads its arrays: a
    run that replaced the file meanwhile cannot make its content pass for the first key's."""
    store = AssetStorage(base_path=str(tmp_path))
    from dagster import AssetKey

    key = AssetKey(["paper", "latent_representation"])
    path = store.path(key, "mnist", "parquet")
    write_parquet(path, _splits(0.3), "first")
    assert store.holds(key, "mnist", "parquet", "first")
    lazy = store.load(key, "mnist", "parquet", expect_key="first")
    write_parquet(path, _splits(0.9), "second")  # another config's value, written meanwhile
    with pytest.raises(DataError, match="was replaced since it was opened"):
        _ = lazy.train_x
    with pytest.raises(DataError, match="holds the value of key second, not first"):
        store.load(key, "mnist", "parquet", expect_key="first")


def test_damaged_weights_and_figures_are_refused(tmp_path):
    import h5py

    from clustering_dag.core.refine import config_for, train_classifier
    from clustering_dag.core.trained import load_trained, save_trained

    x = np.random.default_rng(0).random((40, 784), dtype=np.float32)
    cfg = config_for(Splits(x, None, x[:5], None, meta={"image_shape": [28, 28]}), 2, rounds=1, epochs=1,
                     hidden=(8,))
    trained = train_classifier(cfg, x, np.arange(40), np.arange(40) % 2)
    path = str(tmp_path / "m.weights.h5")
    save_trained(trained, path, "k")
    assert load_trained(path).key == "k"
    with h5py.File(path, "a") as fh:
        name = []
        fh.visititems(lambda n, o: name.append(n) if isinstance(o, h5py.Dataset) else None)
        fh[name[0]][...] = fh[name[0]][()] + 1  # one array changed, the attributes intact
    with pytest.raises(DataError, match="its weights do not match their digest"):
        load_trained(path)

    from clustering_dag.core.figures import image_rows, to_png

    png = to_png(image_rows([x[:3]], ["x"], [28, 28]), {storage.KEY_FIELD: "fig-key"})
    assert storage.png_intact(png) and storage.png_key(png) == "fig-key"
    figure = UPath(tmp_path / "f.png")
    figure.write_bytes(png[:200] + bytes([png[200] ^ 0xFF]) + png[201:])
    with pytest.raises(DataError, match="is damaged or holds another value"):
        AssetStorage._read_png(figure, "fig-key")


def test_an_object_store_write_is_one_request_of_the_finished_file(monkeypatch):
    """On an object store the finished file goes up in one `pipe_file` (a single PUT on S3-like
    stores), never as a streamed write; a write that fails leaves the old object whole."""
    path = UPath("memory://cache/paper/x/mnist.parquet")
    write_parquet(path, _splits(0.4), "old")
    fs, calls = path.fs, []
    opened, piped = type(path.fs).open, type(path.fs).pipe_file

    def no_streaming(self, name, mode="rb", *args, **kwargs):
        if "w" in mode and "data" not in kwargs:  # the memory store's pipe_file sets data at once
            raise AssertionError("a streamed write to the object store")
        return opened(self, name, mode, *args, **kwargs)

    def pipe(self, name, value, *args, **kwargs):
        calls.append((name, len(value)))
        return piped(self, name, value, *args, **kwargs)

    monkeypatch.setattr(type(fs), "open", no_streaming)
    monkeypatch.setattr(type(fs), "pipe_file", pipe)
    with monkeypatch.context() as m:
        def full(*args, **kwargs):
            raise OSError("disk full")

        m.setattr(pq.ParquetWriter, "write_table", full)
        with pytest.raises(OSError, match="disk full"):
            write_parquet(path, _splits(0.8), "new")
    assert calls == []  # the failed write sent nothing
    write_parquet(path, _splits(0.6), "newer")
    assert len(calls) == 1 and calls[0][1] > 1000  # the whole file, in one request
    monkeypatch.undo()
    value = read_parquet(path, lazy=False)
    assert value.train_x[0, 0] == pytest.approx(0.6) and file_key(path, "parquet") == "newer"


def test_a_local_write_is_flushed_to_disk_before_and_after_its_rename(tmp_path, monkeypatch):
    """fsync of the finished temp file (before the rename publishes it), then of its folder (so
    the new name survives a power cut)."""
    import os

    synced, replaced = [], []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def replace(src, dst):
        replaced.append(len(synced))
        return real_replace(src, dst)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage.os, "replace", replace)
    target = tmp_path / "asset" / "mnist.parquet"
    write_parquet(UPath(target), _splits(0.7), "k")
    assert len(synced) == 2 and replaced == [1]
    assert os.path.basename(synced[0]).startswith(".tmp-") and synced[1] == str(target.parent)
