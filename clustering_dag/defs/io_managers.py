"""IO managers: array and table assets as parquet, the VAE as a Keras weights file.

Both are :class:`dagster.UPathIOManager` subclasses over the :class:`AssetStorage` layout, so the
base path may be a local folder or an object-store URL. Every write goes to a temporary file that
is renamed into place, so a crash never leaves a half-written file where a later run would trust
it. A value whose cache key equals the stored file's is not written again.
"""

from typing import TYPE_CHECKING

from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)

from clustering_dag.defs.assets.common import table_metadata
from clustering_dag.defs.storage import AssetStorage, atomic_write, key_of, read_parquet, write_parquet

if TYPE_CHECKING:
    from upath import UPath


def output_path(manager: UPathIOManager, context: OutputContext) -> "UPath":
    """The file an output was written to (partitioned or not)."""
    if context.has_asset_partitions:
        return next(iter(manager._get_paths_for_partitions(context).values()))
    return manager._get_path(context)


class _KeyedIOManager(UPathIOManager):
    kind = ""

    def __init__(self, base_path: "UPath"):
        super().__init__(base_path=base_path)
        self._storage = AssetStorage(base_path=str(base_path))

    def dump_to_path(self, context: OutputContext, obj, path: "UPath") -> None:
        key = key_of(obj)
        if key and self._storage.stored_key(path, self.kind) == key:
            context.log.debug(f"{path} already holds this value (same cache key); not rewritten")
            return
        self._write(obj, path)

    def _write(self, obj, path: "UPath") -> None:
        raise NotImplementedError

    def get_metadata(self, context: OutputContext, obj) -> dict:
        path = output_path(self, context)
        return {"size_bytes": MetadataValue.int(path.stat().st_size),
                "cache_key": MetadataValue.text(key_of(obj) or "")}


class ParquetIOManager(_KeyedIOManager):
    """Stores :class:`Splits`, pandas DataFrames and Arrow tables as one parquet file each.

    Layout: ``<base>/<asset key path>/<partition>.parquet``.
    """

    extension = ".parquet"
    kind = "parquet"

    def _write(self, obj, path: "UPath") -> None:
        write_parquet(path, self._to_table(obj), key_of(obj))

    def load_from_path(self, context: InputContext, path: "UPath"):
        return read_parquet(path)

    @staticmethod
    def _to_table(obj):
        import pandas as pd
        import pyarrow as pa

        from clustering_dag.core.arrays import Splits, splits_to_table

        if isinstance(obj, Splits):
            return splits_to_table(obj)
        if isinstance(obj, pd.DataFrame):
            return pa.Table.from_pandas(obj, preserve_index=False)
        if isinstance(obj, pa.Table):
            return obj
        raise TypeError(f"ParquetIOManager cannot store {type(obj).__name__}")

    def get_metadata(self, context: OutputContext, obj) -> dict:
        import pandas as pd
        import pyarrow.parquet as pq

        from clustering_dag.core.arrays import LazySplits, Splits

        meta = super().get_metadata(context, obj)
        if isinstance(obj, LazySplits) and not obj.loaded:  # reused: count rows from the footer
            with output_path(self, context).open("rb") as fh:
                meta["dagster/row_count"] = MetadataValue.int(pq.read_metadata(fh).num_rows)
        elif isinstance(obj, Splits):
            for name, value in obj.summary().items():
                is_flag = isinstance(value, bool)
                meta[name] = MetadataValue.bool(value) if is_flag else MetadataValue.int(value)
            meta["dagster/row_count"] = MetadataValue.int(len(obj.train_x) + len(obj.test_x))
        elif isinstance(obj, pd.DataFrame):
            meta["dagster/row_count"] = MetadataValue.int(len(obj))
            meta["preview"] = table_metadata(obj.head(20))
        return meta


class KerasWeightsIOManager(_KeyedIOManager):
    """Stores a trained VAE as one Keras HDF5 weights file with its config and history attached.

    Layout: ``<base>/<asset key path>/<partition>.weights.h5``. Nothing is pickled: weights are
    Keras' own format, config, history and cache key are attributes of the same file.
    """

    extension = ".weights.h5"
    kind = "model"

    def _write(self, obj, path: "UPath") -> None:
        from clustering_dag.core.trained import save_trained

        atomic_write(path, lambda tmp: save_trained(obj, tmp))

    def load_from_path(self, context: InputContext, path: "UPath"):
        return self._storage.load(path, "model")


class ParquetIOManagerFactory(ConfigurableIOManagerFactory):
    """Parquet storage for array and table assets, under the shared :class:`AssetStorage`."""

    # A nested resource: the top-level `asset_storage` itself, so its run config
    # (`resources.asset_storage.config.base_path`) moves the cache of every IO manager at once.
    # (Dagster reads this annotation at class creation: no `from __future__ import annotations` here.)
    storage: AssetStorage

    def create_io_manager(self, context) -> "ParquetIOManager":
        return ParquetIOManager(base_path=self.storage.root())


class KerasWeightsIOManagerFactory(ConfigurableIOManagerFactory):
    """Keras weight-file storage for the trained VAE, under the shared :class:`AssetStorage`."""

    storage: AssetStorage

    def create_io_manager(self, context) -> "KerasWeightsIOManager":
        return KerasWeightsIOManager(base_path=self.storage.root())
