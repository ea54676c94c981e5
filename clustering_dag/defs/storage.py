"""Where assets live on disk (or an object store), atomic writes, and the cache keys that make
re-runs incremental.

Every stored asset value carries a *cache key*: a hash of the asset's code version, its config,
its partition and the cache keys of its inputs. The key is written into the file itself (parquet
schema metadata, an HDF5 attribute, a PNG text chunk) and is the materialization's Dagster data
version. A run whose key matches the stored one reuses the file instead of recomputing, and the
IO managers skip rewriting it.

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
from clustering_dag.settings import cache_root

if TYPE_CHECKING:
    from upath import UPath

KEY_FIELD = "clustering_dag_cache_key"
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


# --- cache keys carried by values -------------------------------------------------------------

def _key_dict(value) -> dict | None:
    """Where a value keeps its key: a Splits' ``meta``, a DataFrame's ``attrs``; else None."""
    for name in ("meta", "attrs"):
        found = getattr(value, name, None)
        if isinstance(found, dict):
            return found
    return None


def key_of(value) -> str | None:
    held = _key_dict(value)
    return held.get("cache_key") if held is not None else getattr(value, "cache_key", None) or None


def with_key(value, key: str | None):
    if key is None:
        return value
    held = _key_dict(value)
    if held is not None:
        held["cache_key"] = key
    else:
        value.cache_key = key
    return value


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
    """A stored :class:`Splits` or DataFrame, with its cache key; a clear error if unreadable.

    Array tables come back as :class:`LazySplits`: the footer is read (and checked) now, the arrays
    on first use. Tables (DataFrames) are small and read at once.
    """
    from clustering_dag.core.arrays import LazySplits, Splits, table_to_splits

    meta = _read(path, schema_only=True).metadata or {}
    key = meta.get(KEY_FIELD.encode(), b"").decode() or None
    if b"clustering_dag" in meta:
        def load() -> Splits:
            return table_to_splits(_read(path), where=str(path))

        value = LazySplits(load, json.loads(meta[b"clustering_dag"])) if lazy else load()
    else:
        value = _read(path).to_pandas()
    return with_key(value, key)


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


# --- the resource -----------------------------------------------------------------------------

class AssetStorage(ConfigurableResource):
    """The asset cache: ``<base>/<asset key path>/<partition><extension>``.

    ``base_path`` is a folder or any fsspec URL (``s3://bucket/prefix``); empty means
    ``$CLUSTERING_DAG_CACHE_DIR`` or the project's ``data/``.
    """

    base_path: str = Field(default="", description="Folder or URL of the asset cache (default: data/).")

    def root(self) -> UPath:
        from upath import UPath

        return UPath(self.base_path or cache_root())

    def path(self, asset_key: AssetKey, partition: str, kind: str) -> UPath:
        return self.root().joinpath(*asset_key.path, f"{partition}{EXTENSIONS[kind]}")

    def stored_key(self, path: UPath, kind: str) -> str | None:
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

    def load(self, path: UPath, kind: str):
        if kind == "parquet":
            return read_parquet(path)
        if kind == "model":
            if is_local(path):  # the weights (and TensorFlow) load when the model is first used
                return self._load_model(path.path, lazy=True)
            with tempfile.TemporaryDirectory() as folder:
                return self._load_model(local_copy(path, folder), lazy=False)
        with path.open("rb") as fh:
            return fh.read()

    @staticmethod
    def _load_model(local: str, lazy: bool):
        from clustering_dag.core.trained import load_trained

        try:
            return load_trained(local, lazy=lazy)
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"trained model {local} is unreadable ({exc}); "
                            "re-materialize trained_vae.") from None
