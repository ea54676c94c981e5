"""Where assets live on disk (or an object store), atomic writes, and the cache keys stored with
them.

Every stored value carries, in its own file, the *cache key* that made it (parquet schema
metadata, an HDF5 attribute, a PNG text chunk); :mod:`clustering_dag.defs.cached` decides what a
key is and when a stored value is reused. :meth:`AssetStorage.path` is the one place that says
where a value lives; the IO managers write and read there.

pyarrow and h5py are imported where a file is read or written, not with the code location.

What is written here by hand, and why the libraries do not do it: fsspec and pyarrow write a
local file in place (a crash leaves half of it where a reader finds it), so :func:`atomic_write`
writes beside it, flushes and renames; parquet's optional page checksums catch a damaged page but
not a file written elsewhere or without a shared cache's secret, so every parquet file carries a
digest (HMAC under ``$CLUSTERING_DAG_CACHE_SECRET``) of its bytes in its footer. PNG text chunks
are matplotlib's and Pillow's, HDF5 attributes h5py's.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from dagster import AssetKey, ConfigurableResource
from pydantic import Field

from clustering_dag.core.errors import DataError
from clustering_dag.core.paths import check_name, confined, shown
from clustering_dag.core.trained import KEY_ATTRIBUTE
from clustering_dag.settings import cache_root, cache_secret

if TYPE_CHECKING:
    from upath import UPath

KEY_FIELD = KEY_ATTRIBUTE  # one name for the key in every kind of file
# Values kept per asset partition unless `asset_storage.keep_versions` says otherwise.
KEEP_VERSIONS = 5
EXTENSIONS = {"parquet": ".parquet", "model": ".weights.h5", "png": ".png", "json": ".json"}
# A JSON value (what a plain asset returns) is read whole: larger files are refused.
MAX_JSON_BYTES = 64 << 20


def is_local(path: UPath) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def atomic_write(path: UPath, write: Callable[[str], None]) -> None:
    """Call ``write(local_file)`` and move the result to ``path`` in one step.

    Locally: a hidden temp file in the same folder, flushed to disk (``fsync``), then
    ``os.replace`` (atomic on POSIX) and the folder flushed. On an object store: a local temp file
    uploaded whole in one request (``pipe_file``), which the store commits only once complete.
    """
    from upath import UPath

    if is_local(path):
        target = UPath(path.path)
        os.makedirs(target.parent.path, exist_ok=True)
        tmp = os.path.join(target.parent.path, f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            write(tmp)
            _fsync(tmp)  # the data on disk before the name points at it
            os.replace(tmp, target.path)
            _fsync(target.parent.path)  # and the new name itself
        except OSError as exc:
            if _disk_full(exc):
                raise CacheDiskFull(target.path) from exc
            raise
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        remove_stale_temp_files(target)
    else:
        with tempfile.TemporaryDirectory() as folder:
            tmp = os.path.join(folder, path.name)
            write(tmp)
            # The finished file in one request (`pipe_file`: a single PUT on S3-like stores), never a
            # streamed write that an interruption would leave as a partial object.
            with open(tmp, "rb") as fh:
                path.fs.pipe_file(path.path, fh.read())


class CacheDiskFull(OSError):
    """The disk under the asset cache filled up during a write; the previous file is untouched."""

    def __init__(self, path: str):
        folder = os.path.dirname(path)
        free = shutil.disk_usage(folder).free / 2**20
        super().__init__(
            errno.ENOSPC,
            f"no space left on the disk of the asset cache while writing {path} ({free:.1f} MB free "
            "now). Nothing was half-written: the previous file, if there was one, is whole. Free "
            "some space, or point the cache at a larger disk (asset_storage.base_path, or "
            "CLUSTERING_DAG_CACHE_DIR), then materialize again.")


def _disk_full(exc: OSError) -> bool:
    """ENOSPC/EDQUOT, whether raised by Python's own I/O or by pyarrow/HDF5 in their words."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

CONTENT_FIELD = "clustering_dag_content"


def content_digest():
    """The digest binding a stored file to its content: SHA-256, or, when
    ``$CLUSTERING_DAG_CACHE_SECRET`` is set, HMAC-SHA256 under that secret (a shared cache: a file
    written without it is refused)."""
    from clustering_dag.core.digests import content_digest as digest

    return digest(cache_secret())


class _Hashing(io.RawIOBase):
    """A writable file that hashes what passes through it."""

    def __init__(self, raw, digest):
        self.raw, self.digest = raw, digest

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        return self.raw.write(data)


def write_parquet(path: UPath, table, key: str | None) -> None:
    """Write an Arrow table, with ``key`` in its schema metadata and, in the file's footer, the
    digest of every byte before the footer (the data pages and their headers)."""
    import pyarrow.parquet as pq

    if key:
        meta = {**(table.schema.metadata or {}), KEY_FIELD.encode(): key.encode()}
        table = table.replace_schema_metadata(meta)

    def write(tmp: str) -> None:
        digest = content_digest()
        with open(tmp, "wb") as raw:
            with pq.ParquetWriter(_Hashing(raw, digest), table.schema, compression="zstd") as writer:
                writer.write_table(table)
                writer.add_key_value_metadata({CONTENT_FIELD: digest.hexdigest()})

    atomic_write(path, write)


def _footer(fh) -> tuple[int, dict]:
    """(where a parquet file's footer starts, its key-value metadata)."""
    import pyarrow.parquet as pq

    size = fh.seek(0, os.SEEK_END)
    fh.seek(size - 8)
    tail = fh.read(8)
    if len(tail) < 8 or tail[4:] != b"PAR1":
        raise ValueError("not a parquet file (no footer)")
    fh.seek(0)
    return size - 8 - int.from_bytes(tail[:4], "little"), pq.read_metadata(fh).metadata or {}


def _read_table(path: UPath, expect_key: str | None = None):
    """The table of a stored parquet file, read in one open: its key (when ``expect_key`` is given)
    and its content digest checked against the bytes read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with path.open("rb") as fh:
            start, meta = _footer(fh)
            key = meta.get(KEY_FIELD.encode(), b"").decode()
            if expect_key is not None and key != expect_key:
                raise DataError(f"cached asset file {path} was replaced since it was opened (it holds "
                                f"the value of key {key}, not {expect_key}); run again.")
            fh.seek(0)
            digest, left = content_digest(), start
            while left > 0:
                chunk = fh.read(min(left, 1 << 22))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
            if meta.get(CONTENT_FIELD.encode(), b"").decode() != digest.hexdigest():
                raise DataError(f"cached asset file {path}: its content does not match its digest (a "
                                "damaged page, a file written elsewhere, or without this cache's "
                                "secret); re-materialize that asset to rewrite it.")
            fh.seek(0)
            return pq.read_table(fh)
    except FileNotFoundError:
        raise DataError(f"cached asset file {path} is missing; "
                        "materialize the upstream asset first.") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cached asset file {path} is unreadable ({exc}); it is damaged. "
                        "Re-materialize that asset to rewrite it.") from None


def _read_schema(path: UPath):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with path.open("rb") as fh:
            return pq.read_schema(fh)
    except FileNotFoundError:
        raise DataError(f"cached asset file {path} is missing; "
                        "materialize the upstream asset first.") from None
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cached asset file {path} is unreadable ({exc}); it is damaged. "
                        "Re-materialize that asset to rewrite it.") from None


def read_parquet(path: UPath, lazy: bool = True, expect_key: str | None = None):
    """A stored :class:`Splits` or DataFrame; a clear error if unreadable, damaged, or (with
    ``expect_key``) holding another key's value.

    Array tables come back as :class:`LazySplits`: the footer is read (and checked) now, the arrays
    on first use, which checks that the file still holds the key it held when opened. Tables
    (DataFrames) are small and read at once.
    """
    from clustering_dag.core.arrays import LazySplits, Splits, table_to_splits

    meta = _read_schema(path).metadata or {}
    key = meta.get(KEY_FIELD.encode(), b"").decode()
    if expect_key is not None and key != expect_key:
        raise DataError(f"cached asset file {path} holds the value of key {key}, not {expect_key}.")
    if b"clustering_dag" in meta:
        def load() -> Splits:
            return table_to_splits(_read_table(path, expect_key=key), where=str(path))

        return LazySplits(load, json.loads(meta[b"clustering_dag"])) if lazy else load()
    return _read_table(path, expect_key=key).to_pandas()


def read_json(path: UPath, max_bytes: int = MAX_JSON_BYTES):
    """A stored JSON value, read whole once its size is known to be at most ``max_bytes``."""
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"stored value {path} has {size:,} bytes, more than the {max_bytes:,} a JSON "
                        "value may have: return a DataFrame (stored as parquet) instead.")
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise DataError(f"stored value {path} is not valid JSON ({exc}); re-materialize it.") from None


# --- PNG text chunks (Pillow, which matplotlib draws with) ---------------------------------------

def png_key(png: bytes) -> str | None:
    """The cache key in a PNG's text chunks (matplotlib writes it there: ``to_png(metadata=...)``);
    the chunks before the image data suffice."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as image:
            return image.info.get(KEY_FIELD)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def png_intact(png: bytes) -> bool:
    """Whether every chunk of a PNG is whole and its CRC matches, up to ``IEND`` (Pillow's
    ``verify``)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - whatever Pillow raises for a damaged file
        return False


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
    ``<base>/figures/<variant>/<figure>/<partition>.png`` (figures): the current values; every
    value kept beside them by cache key (:mod:`clustering_dag.defs.keep`)."""

    base_path: str = Field(default="", description="Folder or URL of the asset cache (default: data/).")
    keep_versions: int = Field(
        default=KEEP_VERSIONS, ge=1,
        description="Values kept per asset and partition, by cache key (the current one, then the most "
                    "recently made or used): a run under a config, profile or code seen before reuses "
                    "them. Older ones are removed when a new value is written "
                    "(docs/design.md#every-value-kept).")
    force: bool = Field(
        default=False,
        description="Recompute every asset the run selects, even when a value of its cache key is "
                    "kept; the new value replaces the kept one when its step succeeds "
                    "(`-c clustering_dag/profiles/force.yaml`).")

    def root(self) -> UPath:
        from upath import UPath

        return UPath(self.base_path or cache_root())

    def path(self, asset_key: AssetKey, partition: str, kind: str, figure: str | None = None) -> UPath:
        """Where the value of ``asset_key`` for ``partition`` lives: the one place that says so.
        A figure asset holds one PNG per ``figure`` name. A partition of several dimensions
        (``mnist|batch.npz``, or ``mnist/batch.npz`` as Dagster's UPathIOManager passes it) is a
        folder per dimension. Every part of a partition key is a plain name
        (:mod:`clustering_dag.core.paths`) and a local path stays inside the cache, its links
        resolved: a key a user chose never leads elsewhere."""
        root = self.root()
        folder = root.joinpath("figures", *asset_key.path[:-1], check_name(figure, "figure", root)) \
            if kind == "png" else root.joinpath(*asset_key.path)
        *dimensions, last = [check_name(part, f"partition key {shown(str(partition))}: part", folder)
                             for part in str(partition).replace("|", "/").split("/")]
        path = folder.joinpath(*dimensions, f"{last}{EXTENSIONS[kind]}")
        if is_local(root):
            confined(root.path, path.path, f"{asset_key.to_user_string()} partition {partition}")
        return path

    def version(self, asset_key: AssetKey, partition: str, kind: str, key: str,
                figure: str | None = None) -> UPath:
        """Where the value of cache key ``key`` is kept (:func:`clustering_dag.defs.keep.version_path`)."""
        from clustering_dag.defs.keep import version_path

        current = self.path(asset_key, partition, kind, figure)
        path = version_path(current, EXTENSIONS[kind], check_name(key, "cache key", current.parent))
        if is_local(current):
            confined(self.root().path, path.path, f"{asset_key.to_user_string()} partition {partition}")
        return path

    def _pairs(self, asset_key: AssetKey, partition: str, kind: str, key: str, figures: tuple[str, ...]):
        """(current file, kept version) of each file of the value (one PNG per figure)."""
        return [(self.path(asset_key, partition, kind, f), self.version(asset_key, partition, kind, key, f))
                for f in figures or (None,)]

    def reuse(self, asset_key: AssetKey, partition: str, kind: str, key: str,
              figures: tuple[str, ...] = (), record: dict | None = None, log=None) -> bool:
        """Whether the value of ``key`` is current now, without computing it: it already was (and
        is kept too: a cache made before values were kept gets its version, with ``record``), or a
        kept version of it, whole (its key and content digest checked), was made current again."""
        from clustering_dag.defs.keep import keep, publish, touch

        pairs = self._pairs(asset_key, partition, kind, key, figures)
        if self.holds(asset_key, partition, kind, key, figures):
            try:  # best effort: a read-only cache is still reused
                for current, version in pairs:
                    if version.exists():
                        touch(version)
                    else:
                        keep(current, version, key, kind, self._record(asset_key, partition, record or {}))
            except OSError as exc:
                (log or (lambda _: None))(f"the value is reused but could not be kept ({exc})")
            return True
        if not all(version.exists() and self.intact(version, kind, key) for _, version in pairs):
            return False
        return all([publish(version, current) for current, version in pairs])

    def intact(self, path: UPath, kind: str, key: str) -> bool:
        """Whether the file at ``path`` holds the value of ``key``, whole: its key, and its content
        digest over every byte (a model's weights, a PNG's chunks)."""
        try:
            if kind == "parquet":
                _read_table(path, expect_key=key)
            elif kind == "png":
                self._read_png(path, key)
            else:
                self.read(path, kind, expect_key=key)  # the weights' digest is checked on opening
            return True
        except (DataError, OSError):
            return False

    def keep(self, asset_key: AssetKey, partition: str, kind: str, key: str, record: dict,
             figures: tuple[str, ...] = (), log=None) -> None:
        """Keep the value just written (it is current) as the version of ``key``, then remove the
        versions beyond ``keep_versions`` of this asset partition: the least recently made or used
        (no grace here: a run that was about to reuse one recomputes it; no current file is ever
        removed). Best effort: the value is written and current whatever happens here."""
        from clustering_dag.defs.keep import entry_versions, keep, prune

        try:
            for current, version in self._pairs(asset_key, partition, kind, key, figures):
                keep(current, version, key, kind, self._record(asset_key, partition, record))
                kept = entry_versions(current, kind, EXTENSIONS[kind], str(current))
                prune(kept, self.keep_versions, lambda c=current: file_key(c, kind), grace=0)
        except OSError as exc:
            (log or (lambda _: None))(f"{asset_key.to_user_string()}: the value is current but could "
                                      f"not be kept by its key ({exc})")

    @staticmethod
    def _record(asset_key: AssetKey, partition: str, record: dict) -> dict:
        return {"asset": asset_key.to_user_string(), "partition": str(partition), **record}

    @staticmethod
    def not_stored(asset_key: AssetKey, partition: str | None, path: UPath) -> DataError:
        """The error for a value that is read but was never stored: what to materialize first."""
        name = asset_key.to_user_string()
        where = f" --partition {partition}" if partition else ""
        return DataError(f"{name} has no stored value{f' for {partition}' if partition else ''} "
                         f"(no {path}): materialize it first, e.g. `dagster asset materialize -m "
                         f"clustering_dag.definitions --select '*{name}'{where}`.")

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

    def load(self, asset_key: AssetKey, partition: str, kind: str, figures: tuple[str, ...] = (),
             expect_key: str | None = None):
        """The stored value: lazily where that is cheaper (a model's weights, an array's columns);
        a figure asset's PNGs as ``{figure: bytes}``. With ``expect_key``, it must be that key's
        value, in the same open that reads it (a file replaced meanwhile is an error)."""
        if kind == "png":
            return {f: self._read_png(self.path(asset_key, partition, kind, f), expect_key) for f in figures}
        return self.read(self.path(asset_key, partition, kind), kind, expect_key)

    def read(self, path: UPath, kind: str, expect_key: str | None = None):
        if kind == "parquet":
            return read_parquet(path, expect_key=expect_key)
        if kind == "json":
            return read_json(path)
        if is_local(path):  # the weights (and TensorFlow) load when the model is first used
            return self._load_model(path.path, lazy=True, expect_key=expect_key)
        with tempfile.TemporaryDirectory() as folder:
            return self._load_model(local_copy(path, folder), lazy=False, expect_key=expect_key)

    @staticmethod
    def _read_png(path: UPath, expect_key: str | None) -> bytes:
        png = path.read_bytes()
        if not png_intact(png) or (expect_key is not None and png_key(png) != expect_key):
            raise DataError(f"figure {path} is damaged or holds another value; it is made again.")
        return png

    @staticmethod
    def _load_model(local: str, lazy: bool, expect_key: str | None = None):
        from clustering_dag.core.trained import load_trained

        try:
            trained = load_trained(local, lazy=lazy, secret=cache_secret())
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"trained model {local} is unreadable or damaged ({exc}); "
                            "re-materialize it.") from None
        if expect_key is not None and trained.key != expect_key:
            raise DataError(f"trained model {local} holds the value of key {trained.key}, not {expect_key}.")
        return trained
