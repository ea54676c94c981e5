"""Every value the pipeline made, kept by its cache key beside the current one.

Layout. The *current* value of an asset partition lives where :meth:`AssetStorage.path` says
(``paper/clustering_metrics/mnist.parquet``): what Dagster's latest materialization of it names,
and what downstream steps, the UI, ``report`` and scoring read. Every value it has had is kept at
``paper/clustering_metrics/.versions/mnist/<cache key>.parquet``, with a record
``<cache key>.json`` (the run that made it, when, and the cache key of each input). On a local
disk the current file and its version are one file (a hard link: no extra space); on an object
store, a server-side copy.

Rules, each in one function here:

- :func:`keep`: a value a step wrote is kept as its version (current first, then the version, so
  that a current value never lacks its file).
- :func:`reuse`: a step whose cache key has a kept version makes it current again
  (:func:`publish`, an atomic replace) instead of computing it.
- :func:`prune`: at most ``keep`` versions per asset partition, the most recently made or used
  first; never the current one, nor one that a caller protects (what Dagster's latest
  materializations name), nor one made or used in the last ``grace`` seconds (a run in flight may
  be about to make it current). Nothing a running step reads or writes is lost: steps read only
  current files, which are never removed (a hard link outlives its version's name), and a version
  removed just before a step would have reused it costs that step a recompute.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from clustering_dag.defs.storage import atomic_write, file_key, is_local, write_bytes

if TYPE_CHECKING:
    from upath import UPath

VERSIONS = ".versions"
RECORD = ".json"
# A version made or used this recently is never pruned (a run may be publishing it).
GRACE_SECONDS = 3600
MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class Version:
    """One kept value: ``entry`` is its asset partition as a path under the cache root, without
    extension (``paper/clustering_metrics/mnist``)."""

    entry: str
    key: str
    path: UPath
    kind: str
    size: int
    used: float  # when it was last made or used (its modification time)
    current: bool
    record: dict

    @property
    def run_id(self) -> str:
        return self.record.get("run_id", "")


def version_path(current: UPath, extension: str, key: str) -> UPath:
    """Where the value ``key`` of the asset partition whose current file is ``current`` is kept."""
    stem = current.name[: -len(extension)]
    return current.parent / VERSIONS / stem / f"{key}{extension}"


def record_path(version: UPath) -> UPath:
    return version.parent / (version.name.split(".", 1)[0] + RECORD)


def _link(source: UPath, target: UPath) -> None:
    """``target`` becomes ``source``'s content in one step (FileNotFoundError if ``source`` is
    gone): locally a hard link renamed into place (a copy where links are not supported), on an
    object store a server-side copy (committed whole)."""
    if not is_local(source):
        source.fs.copy(source.path, target.path)
        return
    os.makedirs(target.parent.path, exist_ok=True)

    def link(tmp: str) -> None:
        try:
            os.link(source.path, tmp)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
                raise
            shutil.copyfile(source.path, tmp)

    atomic_write(target, link)


def touch(path: UPath) -> None:
    """Mark a kept value as used now: its modification time locally; on an object store (whose
    objects keep their upload time) its record, written again. Best effort (a read-only cache)."""
    if is_local(path):
        try:
            os.utime(path.path)
        except OSError:
            pass
    elif path.exists():
        write_bytes(record_path(path), json.dumps({**read_record(path), "used_at": _now()}).encode())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def keep(current: UPath, version: UPath, key: str, kind: str, record: dict) -> None:
    """Keep the value of ``key`` just written at ``current`` as ``version``, with its record; not
    if another process replaced ``current`` meanwhile (that value is its writer's to keep)."""
    _link(current, version)
    if file_key(version, kind) != key:
        version.fs.rm(version.path)
        return
    write_bytes(record_path(version), json.dumps({**record, "made_at": _now()}, sort_keys=True).encode())


def publish(version: UPath, current: UPath) -> bool:
    """Make a kept version the current value; False when it is not kept (or was just pruned)."""
    try:
        touch(version)
        _link(version, current)
        return True
    except FileNotFoundError:
        return False


def read_record(version: UPath) -> dict:
    path = record_path(version)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_RECORD_BYTES + 1)
        record = json.loads(data) if len(data) <= MAX_RECORD_BYTES else {}
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        return {}


def entry_versions(current: UPath, kind: str, extension: str, entry: str) -> list[Version]:
    """The kept versions of the asset partition whose current file is ``current``, newest first."""
    folder = current.parent / VERSIONS / current.name[: -len(extension)]
    try:
        listed = folder.fs.ls(folder.path, detail=True)
    except FileNotFoundError:
        return []
    now_key = file_key(current, kind) if current.exists() else None
    files = {info["name"].rstrip("/").rsplit("/", 1)[-1]: info
             for info in listed if info.get("type") == "file"}
    found = []
    for name, info in files.items():
        if not name.endswith(extension) or name.startswith("."):
            continue
        key = name[: -len(extension)]
        path = folder / name
        record = files.get(record_path(path).name)  # written again when used, on an object store
        used = _modified(info) if is_local(path) or not record else max(_modified(info), _modified(record))
        found.append(Version(entry, key, path, kind, int(info.get("size") or 0), used,
                             key == now_key, read_record(path)))
    return sorted(found, key=lambda v: v.used, reverse=True)


def _modified(info: dict) -> float:
    """When a listed file was last written; now when the store does not say (never pruned early)."""
    names = ("mtime", "LastModified", "last_modified", "created")
    value = next((info[k] for k in names if info.get(k)), None)
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value) if not isinstance(value, str) else datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        return time.time()


def entries(root: UPath, extensions: dict[str, str]) -> list[tuple[UPath, str, str, str]]:
    """Every asset partition that has kept versions: (its current file, kind, extension, entry);
    ``extensions``: the file extension of each kind of value kept."""
    base = root.path.rstrip("/")
    seen: dict[str, tuple] = {}
    for name in root.fs.find(base):
        parts = name[len(base):].strip("/").split("/")
        if len(parts) < 3 or parts[-3] != VERSIONS or parts[-1].startswith("."):
            continue
        for kind, extension in extensions.items():
            if parts[-1].endswith(extension):
                entry = "/".join([*parts[:-3], parts[-2]])
                if entry not in seen:
                    current = root.joinpath(*parts[:-3], parts[-2] + extension)
                    seen[entry] = (current, kind, extension, entry)
                break
    return sorted(seen.values(), key=lambda e: e[3])


def to_remove(kept: list[Version], keep_versions: int, grace: float = GRACE_SECONDS,
              protect: set[tuple[str, str]] = frozenset()) -> list[Version]:
    """Of the versions of one asset partition (``kept``, newest first), those beyond the newest
    ``keep_versions`` (counting the current one), sparing the current value, the ``(entry, key)``
    pairs of ``protect`` and anything made or used within ``grace`` seconds."""
    now = time.time()
    spared = [v for v in kept if v.current or (v.entry, v.key) in protect]
    removed = []
    for version in kept:
        if version in spared:
            continue
        if len(spared) < keep_versions or now - version.used < grace:
            spared.append(version)
        else:
            removed.append(version)
    return removed


def prune(kept: list[Version], keep_versions: int, current_key, grace: float = GRACE_SECONDS,
          protect: set[tuple[str, str]] = frozenset()) -> list[Version]:
    """Remove :func:`to_remove`'s versions; ``current_key()`` reads the current file's key again
    just before each removal (a run may have published that version meanwhile)."""
    removed = []
    for version in to_remove(kept, keep_versions, grace, protect):
        if current_key() == version.key:
            continue
        for path in (version.path, record_path(version.path)):
            try:
                path.fs.rm(path.path)
            except FileNotFoundError:
                pass
        removed.append(version)
    return removed
