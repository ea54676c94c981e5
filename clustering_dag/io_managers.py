"""IO managers: array and table assets as parquet, the VAE as a Keras weights file.

Both are :class:`dagster.UPathIOManager` subclasses, so the base path may be a local folder or an
object-store URL. Every write goes to a temporary file first and is renamed into place, so a crash
never leaves a half-written file where a later run would trust it.
"""


import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from upath import UPath

from clustering_dag.core.arrays import Splits, splits_to_table, table_to_splits
from clustering_dag.core.errors import DataError
from clustering_dag.settings import cache_root


def _is_local(path: UPath) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def atomic_write(path: UPath, write: Callable[[str], None]) -> None:
    """Call ``write(local_file)`` and move the result to ``path`` in one step.

    Locally: a hidden temp file in the same folder, then ``os.replace`` (atomic on POSIX). On an
    object store: a local temp file uploaded with one PUT, which is atomic there.
    """
    if _is_local(path):
        target = Path(path.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            write(str(tmp))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        with tempfile.TemporaryDirectory() as folder:
            tmp = os.path.join(folder, path.name)
            write(tmp)
            with open(tmp, "rb") as src, path.open("wb") as dst:
                dst.write(src.read())


def output_path(manager: UPathIOManager, context: OutputContext) -> UPath:
    """The file an output was written to (partitioned or not)."""
    if context.has_asset_partitions:
        return next(iter(manager._get_paths_for_partitions(context).values()))
    return manager._get_path(context)


def _local_copy(path: UPath, folder: str) -> str:
    """A local file path for reading ``path`` with libraries that need one."""
    if _is_local(path):
        return path.path
    local = os.path.join(folder, path.name)
    with path.open("rb") as src, open(local, "wb") as dst:
        dst.write(src.read())
    return local


class ParquetIOManager(UPathIOManager):
    """Stores :class:`Splits`, pandas DataFrames and Arrow tables as one parquet file each.

    Layout: ``<base>/<asset key path>/<partition>.parquet``.
    """

    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj, path: UPath) -> None:
        table = self._to_table(obj)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))

    def load_from_path(self, context: InputContext, path: UPath):
        try:
            with path.open("rb") as fh:
                table = pq.read_table(fh)
        except FileNotFoundError:
            raise DataError(
                f"cached asset file {path} is missing; materialize the upstream asset first."
            ) from None
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"cached asset file {path} is unreadable ({exc}); it is damaged. "
                "Re-materialize that asset to rewrite it."
            ) from None
        if table.schema.metadata and b"clustering_dag" in table.schema.metadata:
            return table_to_splits(table, where=str(path))
        return table.to_pandas()

    @staticmethod
    def _to_table(obj) -> pa.Table:
        if isinstance(obj, Splits):
            return splits_to_table(obj)
        if isinstance(obj, pd.DataFrame):
            return pa.Table.from_pandas(obj, preserve_index=False)
        if isinstance(obj, pa.Table):
            return obj
        raise TypeError(f"ParquetIOManager cannot store {type(obj).__name__}")

    def get_metadata(self, context: OutputContext, obj) -> dict:
        path = output_path(self, context)
        meta = {"size_bytes": MetadataValue.int(path.stat().st_size)}
        if isinstance(obj, Splits):
            meta.update({k: MetadataValue.int(v) if isinstance(v, int) and not isinstance(v, bool)
                         else MetadataValue.bool(v) for k, v in obj.summary().items()})
            meta["dagster/row_count"] = MetadataValue.int(len(obj.train_x) + len(obj.test_x))
        elif isinstance(obj, pd.DataFrame):
            meta["dagster/row_count"] = MetadataValue.int(len(obj))
            meta["preview"] = MetadataValue.md(obj.head(20).to_markdown(index=False))
        return meta


class ParquetIOManagerFactory(ConfigurableIOManagerFactory):
    """Parquet storage for array and table assets. ``base_path`` may be a folder or a URL."""

    base_path: str = ""

    def create_io_manager(self, context) -> ParquetIOManager:
        return ParquetIOManager(base_path=UPath(self.base_path or cache_root()))


class KerasWeightsIOManager(UPathIOManager):
    """Stores a trained VAE as one Keras HDF5 weights file with its config and history attached.

    Layout: ``<base>/<asset key path>/<partition>.weights.h5``. Nothing is pickled: weights are
    Keras' own format, config and history are JSON attributes of the same file.
    """

    extension = ".weights.h5"

    def dump_to_path(self, context: OutputContext, obj, path: UPath) -> None:
        from clustering_dag.core.vae import save_trained

        atomic_write(path, lambda tmp: save_trained(obj, tmp))

    def load_from_path(self, context: InputContext, path: UPath):
        from clustering_dag.core.vae import load_trained

        if not path.exists():
            raise DataError(f"trained model {path} is missing; materialize trained_vae first.")
        with tempfile.TemporaryDirectory() as folder:
            local = _local_copy(path, folder)
            try:
                return load_trained(local)
            except (OSError, KeyError, ValueError) as exc:
                raise DataError(
                    f"trained model {path} is unreadable ({exc}); re-materialize trained_vae."
                ) from None

    def get_metadata(self, context: OutputContext, obj) -> dict:
        path = output_path(self, context)
        return {"size_bytes": MetadataValue.int(path.stat().st_size)}


class KerasWeightsIOManagerFactory(ConfigurableIOManagerFactory):
    """Keras weight-file storage for the trained VAE. ``base_path`` may be a folder or a URL."""

    base_path: str = ""

    def create_io_manager(self, context) -> KerasWeightsIOManager:
        return KerasWeightsIOManager(base_path=UPath(self.base_path or cache_root()))
