"""Where assets live on disk (or an object store), atomic writes, and the cache keys stored with
them.

Every stored value carries, in its own file, the *cache key* that made it (parquet schema
metadata, an HDF5 attribute, a PNG text chunk); :mod:`clustering_dag.defs.cached` decides what a
key is and when a stored value is reused. :meth:`AssetStorage.path` is the one place that says
where a value lives; the IO managers write and read there.

pyarrow and h5py are imported where a file is read or written, not with the code location.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from dagster import AssetKey, ConfigurableResource
from pydantic import Field

from clustering_dag.core.errors import DataError
from clustering_dag.core.trained import KEY_ATTRIBUTE
from clustering_dag.settings import cache_root

if TYPE_CHECKING:
    from upath import UPath

KEY_FIELD = KEY_ATTRIBUTE  # one name for the key in every kind of file
EXTENSIONS = {"parquet": ".parquet", "model": ".weights.h5", "png": ".png"}


def is_local(path: UPath) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def atomic_write(path: UPath, write: Callable[[str], None]) -> None:
    """Call ``write(local_file)`` and move the result to ``path`` in one step.

    Locally: a hidden temp file in the same folder, then ``os.replace`` (atomic on POSIX). On an
    object store: a local temp file uploaded with one PUT, which is atomic there.
    """
    from upath import UPath

    if is_local(path):
        target = UPath(path.path)
        os.makedirs(target.parent.path, exist_ok=True)
        tmp = os.path.join(target.parent.path, f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            write(tmp)
            os.replace(tmp, target.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        remove_stale_temp_files(target)
    else:
        with tempfile.TemporaryDirectory() as folder:
            tmp = os.path.join(folder, path.name)
            write(tmp)
            with open(tmp, "rb") as src, path.open("wb") as dst:
                dst.write(src.read())


def write_bytes(path: UPath, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write(path, write)


STALE_TEMP_SECONDS = 3600


def remove_stale_temp_files(target: UPath, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Delete the temp files of ``target`` that writers killed mid-write left behind.

    They are never read (only a finished rename publishes a file), so this only frees disk. A temp
    file younger than ``older_than`` seconds may belong to a writer still running and is kept.
    """
    folder, removed = target.parent.path, []
    now = time.time()
    for entry in os.scandir(folder):
        if entry.name.startswith(".tmp-") and entry.name.endswith(f"-{target.name}"):
            try:
                if now - entry.stat().st_mtime > older_than:
                    os.unlink(entry.path)
                    removed.append(entry.name)
            except FileNotFoundError:
                pass  # another writer cleaned it first
    return removed


def local_copy(path: UPath, folder: str) -> str:
    """A local file path for reading ``path`` with libraries that need one."""
    if is_local(path):
        return path.path
    local = os.path.join(folder, path.name)
    with path.open("rb") as src, open(local, "wb") as dst:
        dst.write(src.read())
    return local


# --- parquet ----------------------------------------------------------------------------------

def write_parquet(path: UPath, table, key: str | None) -> None:
    """Write an Arrow table, with ``key`` in its schema metadata."""
    import pyarrow.parquet as pq

    if key:
        meta = {**(table.schema.metadata or {}), KEY_FIELD.encode(): key.encode()}
        table = table.replace_schema_metadata(meta)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def _read(path: UPath, schema_only: bool = False):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with path.open("rb") as fh:
            return pq.read_schema(fh) if schema_only else pq.read_table(fh)
    except FileNotFoundError:
        raise DataError(f"cached asset file {path} is missing; "
                        "materialize the upstream asset first.") from None
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cached asset file {path} is unreadable ({exc}); it is damaged. "
                        "Re-materialize that asset to rewrite it.") from None


def read_parquet(path: UPath, lazy: bool = True):
    """A stored :class:`Splits` or DataFrame; a clear error if unreadable.

    Array tables come back as :class:`LazySplits`: the footer is read (and checked) now, the arrays
    on first use. Tables (DataFrames) are small and read at once.
    """
    from clustering_dag.core.arrays import LazySplits, Splits, table_to_splits

    meta = _read(path, schema_only=True).metadata or {}
    if b"clustering_dag" in meta:
        def load() -> Splits:
            return table_to_splits(_read(path), where=str(path))

        return LazySplits(load, json.loads(meta[b"clustering_dag"])) if lazy else load()
    return _read(path).to_pandas()


# --- PNG text chunks --------------------------------------------------------------------------

def png_with_key(png: bytes, key: str) -> bytes:
    """Insert a ``tEXt`` chunk holding the cache key right after the PNG header chunk."""
    data = KEY_FIELD.encode() + b"\x00" + key.encode()
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def png_key(png: bytes) -> str | None:
    pos = 8
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"tEXt":
            name, _, text = png[pos + 8:pos + 8 + length].partition(b"\x00")
            if name == KEY_FIELD.encode():
                return text.decode()
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


# --- what a file says made it --------------------------------------------------------------------

def file_key(path: UPath, kind: str) -> str | None:
    """The cache key written into a stored file, or None (missing or unreadable file)."""
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            with path.open("rb") as fh:
                meta = pq.read_schema(fh).metadata or {}
            return meta.get(KEY_FIELD.encode(), b"").decode() or None
        if kind == "model":
            import h5py

            with path.open("rb") as fh, h5py.File(fh, "r") as h5:
                return str(h5.attrs.get(KEY_FIELD, "")) or None
        with path.open("rb") as fh:
            return png_key(fh.read(4096))
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a cache hit
        return None


# --- the resource -----------------------------------------------------------------------------

class AssetStorage(ConfigurableResource):
    """The asset cache. ``base_path`` is a folder or any fsspec URL (``s3://bucket/prefix``); empty
    means ``$CLUSTERING_DAG_CACHE_DIR`` or the project's ``data/``. Layout (:meth:`path`):
    ``<base>/<asset key path>/<partition>.parquet`` (arrays, tables), ``….weights.h5`` (models),
    ``<base>/figures/<variant>/<figure>/<partition>.png`` (figures)."""

    base_path: str = Field(default="", description="Folder or URL of the asset cache (default: data/).")

    def root(self) -> UPath:
        from upath import UPath

        return UPath(self.base_path or cache_root())

    def path(self, asset_key: AssetKey, partition: str, kind: str, figure: str | None = None) -> UPath:
        """Where the value of ``asset_key`` for ``partition`` lives: the one place that says so.
        A figure asset holds one PNG per ``figure`` name. A partition of several dimensions
        (``mnist|batch.npz``) is a folder per dimension."""
        partition = str(partition).replace("|", "/")
        if kind == "png":
            return self.root().joinpath("figures", *asset_key.path[:-1], figure, f"{partition}.png")
        return self.root().joinpath(*asset_key.path, f"{partition}{EXTENSIONS[kind]}")

    def stored_key(self, asset_key: AssetKey, partition: str) -> str | None:
        """The cache key of the stored value of an asset that others read (arrays, tables,
        models), or None when there is none."""
        for kind in ("parquet", "model"):
            path = self.path(asset_key, partition, kind)
            if path.exists():
                return file_key(path, kind)
        return None

    def holds(self, asset_key: AssetKey, partition: str, kind: str, key: str,
              figures: tuple[str, ...] = ()) -> bool:
        """Whether the stored value (every PNG of a figure asset) was made with ``key``."""
        paths = [self.path(asset_key, partition, kind, f) for f in figures] or [
            self.path(asset_key, partition, kind)]
        return all(file_key(p, kind) == key for p in paths)

    def load(self, asset_key: AssetKey, partition: str, kind: str, figures: tuple[str, ...] = ()):
        """The stored value: lazily where that is cheaper (a model's weights, an array's columns);
        a figure asset's PNGs as ``{figure: bytes}``."""
        if kind == "png":
            return {f: self.path(asset_key, partition, kind, f).read_bytes() for f in figures}
        return self.read(self.path(asset_key, partition, kind), kind)

    def read(self, path: UPath, kind: str):
        if kind == "parquet":
            return read_parquet(path)
        if is_local(path):  # the weights (and TensorFlow) load when the model is first used
            return self._load_model(path.path, lazy=True)
        with tempfile.TemporaryDirectory() as folder:
            return self._load_model(local_copy(path, folder), lazy=False)

    @staticmethod
    def _load_model(local: str, lazy: bool):
        from clustering_dag.core.trained import load_trained

        try:
            return load_trained(local, lazy=lazy)
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"trained model {local} is unreadable ({exc}); "
                            "re-materialize trained_vae.") from None
