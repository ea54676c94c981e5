"""IO managers, one per kind of file: array and table assets as parquet, trained models (the
autoencoder, the refined classifier) as Keras weights files, figures as PNG, and the default
``io_manager`` of plain ``@dg.asset`` functions (parquet or JSON).

The first two are :class:`dagster.UPathIOManager` subclasses, so the base path may be a local
folder or an object-store URL; each writes where :meth:`AssetStorage.path` says (the shared
storage resource, not a copy of it). Every write goes to a temporary file that is renamed into
place, so a crash never leaves a half-written file where a later run would trust it. The cache
key comes with the output (its ``cache_key`` metadata, set by :mod:`clustering_dag.defs.cached`)
and is written into the file; a file that already holds that key is not written again (unless the
run forces it). A value written is then kept by its key (:meth:`AssetStorage.keep`).
"""

import json
from typing import TYPE_CHECKING

from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)

from clustering_dag.defs.assets.common import png_markdown, table_metadata
from clustering_dag.defs.storage import (
    KEY_FIELD,
    AssetStorage,
    atomic_write,
    file_key,
    write_bytes,
    write_parquet,
)
from clustering_dag.settings import cache_secret, code_commit

if TYPE_CHECKING:
    from upath import UPath


def output_key(context: OutputContext) -> str | None:
    """The cache key the step gave its output, if any."""
    value = context.output_metadata.get("cache_key")
    return (getattr(value, "value", value) or None) if value is not None else None


def made_record(context: OutputContext) -> dict:
    """What a kept value's record says made it: the run, the code's commit and the cache key of
    each input."""
    made_from = context.output_metadata.get("made_from")
    return {"run_id": context.run_id, "commit": code_commit(),
            "made_from": getattr(made_from, "value", made_from) or {}}


def rewrite(context: OutputContext, storage: AssetStorage, path: "UPath", kind: str) -> bool:
    """Whether a step's output must be written: it was computed (not reused: a file that holds its
    key may still be damaged), or it has no cache key, or the file holds another value."""
    key, reused = output_key(context), context.output_metadata.get("reused")
    return not key or not getattr(reused, "value", reused) or file_key(path, kind) != key


class _StoredIOManager(UPathIOManager):
    kind = ""
    extension = ""  # the storage's path has it

    def __init__(self, storage: AssetStorage):
        super().__init__(base_path=storage.root())
        self.storage = storage

    def get_path_for_partition(self, context, path: "UPath", partition: str) -> "UPath":
        return self.storage.path(context.asset_key, partition, self.kind)

    def dump_to_path(self, context: OutputContext, obj, path: "UPath") -> None:
        key = output_key(context)
        if not rewrite(context, self.storage, path, self.kind):
            context.log.debug(f"{path} already holds this value (same cache key); not rewritten")
            return
        self.write(obj, path, key)
        if key:
            self.storage.keep(context.asset_key, context.partition_key, self.kind, key, made_record(context),
                              log=context.log.warning)

    def load_from_path(self, context: InputContext, path: "UPath"):
        if not path.exists():
            partition = context.asset_partition_key if context.has_asset_partitions else None
            raise self.storage.not_stored(context.asset_key, partition, path)
        return self.storage.read(path, self.kind)

    def write(self, obj, path: "UPath", key: str | None) -> None:
        raise NotImplementedError

    def get_metadata(self, context: OutputContext, obj) -> dict:
        """Besides the path (which Dagster adds): the file's size, and what the value holds."""
        path = self.storage.path(context.asset_key, context.partition_key, self.kind)
        return {"size_bytes": MetadataValue.int(path.stat().st_size), **self.describe(obj, path)}

    def describe(self, obj, path: "UPath") -> dict:
        return {}


class ParquetIOManager(_StoredIOManager):
    """Stores :class:`Splits`, pandas DataFrames and Arrow tables as one parquet file each."""

    kind = "parquet"

    def write(self, obj, path: "UPath", key: str | None) -> None:
        write_parquet(path, self._to_table(obj), key)

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

    def describe(self, obj, path: "UPath") -> dict:
        import pandas as pd
        import pyarrow.parquet as pq

        from clustering_dag.core.arrays import LazySplits, Splits

        meta = {}
        if isinstance(obj, LazySplits) and not obj.loaded:  # reused: count rows from the footer
            with path.open("rb") as fh:
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


class KerasWeightsIOManager(_StoredIOManager):
    """Stores a trained model as one Keras HDF5 weights file with its config and history attached.
    Nothing is pickled: weights are Keras' own format, config, history and cache key are
    attributes of the same file."""

    kind = "model"

    def write(self, obj, path: "UPath", key: str | None) -> None:
        from clustering_dag.core.trained import save_trained

        atomic_write(path, lambda tmp: save_trained(obj, tmp, key or "", secret=cache_secret()))


class FigureIOManager(IOManager):
    """Stores a figure asset's figures (``{name: matplotlib Figure}``, or the PNG bytes of a reused
    value) as one PNG each, with the cache key in a text chunk; the UI shows each file's path and
    the image itself. Figures are leaves: nothing loads them as an input."""

    def __init__(self, storage: AssetStorage):
        self.storage = storage

    def handle_output(self, context: OutputContext, obj: dict) -> None:
        from clustering_dag.core.figures import to_png

        key, partition = output_key(context), context.partition_key
        metadata, written = {}, []
        for i, (name, figure) in enumerate(obj.items()):
            path = self.storage.path(context.asset_key, partition, "png", name)
            png = figure if isinstance(figure, bytes) else to_png(figure, {KEY_FIELD: key} if key else None)
            if rewrite(context, self.storage, path, "png"):
                write_bytes(path, png)
                written.append(name)
            prefix = "" if i == 0 else f"{name}_"
            metadata.update({f"{prefix}path": MetadataValue.path(str(path)),
                             f"{prefix}figure": png_markdown(png, name)})
        if key and written:  # every figure of the value kept together
            self.storage.keep(context.asset_key, partition, "png", key, made_record(context), tuple(obj),
                              log=context.log.warning)
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext):
        raise TypeError(f"{context.asset_key.to_user_string()} is a figure: nothing reads it as an input")


class ValueIOManager(IOManager):
    """The code location's default ``io_manager``: what an asset declared with a plain
    ``@dg.asset`` (as ``dg scaffold defs dagster.asset`` writes it) returns, stored without pickle:
    a DataFrame, an Arrow table or :class:`Splits` as parquet, anything JSON can hold as JSON
    (``<cache>/<asset>/<partition or "all">.parquet|.json``). A value of another type fails with
    what to return instead. Such an asset is not cached: it runs whenever it is materialized."""

    def __init__(self, storage: AssetStorage):
        self.storage = storage

    def handle_output(self, context: OutputContext, obj) -> None:
        import pandas as pd
        import pyarrow as pa

        from clustering_dag.core.arrays import Splits

        partition = context.partition_key if context.has_partition_key else UNPARTITIONED
        tabular = isinstance(obj, pd.DataFrame | pa.Table | Splits)
        if tabular:
            path = self.storage.path(context.asset_key, partition, "parquet")
            write_parquet(path, ParquetIOManager._to_table(obj), output_key(context))
        else:
            try:
                text = json.dumps(obj, sort_keys=True)
            except TypeError:
                raise TypeError(
                    f"{context.asset_key.to_user_string()} returned a {type(obj).__name__}, which the "
                    "default IO manager stores only as parquet (a pandas DataFrame, an Arrow table) or "
                    "JSON (dicts, lists, strings, numbers): return one of those, or declare the asset "
                    "with clustering_dag.defs.cached.cached_asset (docs/development.md).") from None
            path = self.storage.path(context.asset_key, partition, "json")
            write_bytes(path, text.encode())
        other = self.storage.path(context.asset_key, partition, "json" if tabular else "parquet")
        if other.exists():  # the asset returned the other kind before: that value is gone
            other.unlink()
        context.add_output_metadata({"path": MetadataValue.path(str(path))})

    def load_input(self, context: InputContext):
        partition = context.asset_partition_key if context.has_asset_partitions else UNPARTITIONED
        for kind in ("parquet", "json"):
            if (path := self.storage.path(context.asset_key, partition, kind)).exists():
                return self.storage.read(path, kind)
        raise self.storage.not_stored(context.asset_key, partition, path)


UNPARTITIONED = "all"  # the file name of an unpartitioned asset's value


# One IO manager per file format, each under the shared storage resource.
IO_MANAGER_CLASSES = {"parquet": ParquetIOManager, "model": KerasWeightsIOManager,
                      "png": FigureIOManager, "value": ValueIOManager}


class StoredIOManagerFactory(ConfigurableIOManagerFactory):
    """The IO manager of one kind of file (``kind``), under the shared :class:`AssetStorage`."""

    # A nested resource: the top-level `asset_storage` itself, so its run config
    # (`resources.asset_storage.config.base_path`) moves the cache of every IO manager at once.
    # (Dagster reads this annotation at class creation: no `from __future__ import annotations` here.)
    storage: AssetStorage
    kind: str = "parquet"

    def create_io_manager(self, context):
        return IO_MANAGER_CLASSES[self.kind](self.storage)
