"""List what the asset cache holds (every value kept by its cache key), and prune it.

    clustering-dag cache list [--asset paper/clustering_metrics]
    clustering-dag cache prune [--keep 2] [--grace 3600] [--dry-run]

``list`` prints, per asset partition, every kept value (its cache key, size, when and by which run
it was made or last used, and which one is current) and the cache's size on disk. ``prune``
removes the values beyond the ``--keep`` most recently made or used per asset partition (default
5, as ``asset_storage.keep_versions``); it never removes a current value, one that the latest
materialization in ``$DAGSTER_HOME``'s instance names, or one made or used in the last ``--grace``
seconds (a run in flight may be about to use it). The cache is ``$CLUSTERING_DAG_CACHE_DIR``
(default ``data/``) or ``--cache``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

from upath import UPath

from clustering_dag.core.errors import DataError
from clustering_dag.defs.keep import GRACE_SECONDS, Version, entries, entry_versions, prune, to_remove
from clustering_dag.defs.storage import EXTENSIONS, KEEP_VERSIONS, file_key
from clustering_dag.settings import absolute, cache_root

HELP = "list the asset cache's kept values, or prune them"
EXAMPLES = """examples:
  clustering-dag cache list --asset dae/trained_vae
  clustering-dag cache prune --keep 2 --dry-run"""

KEPT_KINDS = {kind: EXTENSIONS[kind] for kind in ("parquet", "model", "png")}


def kept(root: UPath, asset: str | None = None) -> dict[str, tuple[UPath, str, list[Version]]]:
    """Every kept value under ``root`` by asset partition (``paper/clustering_metrics/mnist``):
    its current file, the kind of value, the versions newest first. Only ``asset``'s when given."""
    found = {}
    for current, kind, extension, entry in entries(root, KEPT_KINDS):
        if asset is None or entry.startswith(asset.rstrip("/") + "/"):
            found[entry] = (current, kind, entry_versions(current, kind, extension, entry))
    return found


def disk_size(root: UPath) -> int:
    """Bytes the cache takes: each file once, however many names it has (a current value and its
    kept version are one file on a local disk)."""
    if getattr(root, "protocol", "") not in ("", "file", "local"):
        return sum(root.fs.du(root.path, total=False).values())
    seen, total = set(), 0
    for folder, _, files in os.walk(root.path):
        for name in files:
            stat = os.lstat(os.path.join(folder, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def named_by_dagster(versions: dict) -> set[tuple[str, str]]:
    """The (entry, cache key) pairs that the latest materialization of their asset partition names
    in the instance of ``$DAGSTER_HOME`` (none without one)."""
    if not os.environ.get("DAGSTER_HOME"):
        return set()
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    named = set()
    with DagsterInstance.get() as instance:
        for entry, (_, _, found) in versions.items():
            record = next((v.record for v in found if isinstance(v.record.get("asset"), str)
                           and isinstance(v.record.get("partition"), str)), None)
            if record is None:  # a record is a file like any other: only its well-formed fields count
                continue
            latest = instance.fetch_materializations(AssetRecordsFilter(
                asset_key=AssetKey.from_user_string(record["asset"]),
                asset_partitions=[record["partition"]]), limit=1).records
            if latest:
                named.add((entry, latest[0].asset_materialization.tags.get("dagster/data_version")))
    return named


def _when(version: Version) -> str:
    return datetime.fromtimestamp(version.used, UTC).strftime("%Y-%m-%d %H:%M")


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def listing(root: UPath, asset: str | None = None) -> str:
    versions = kept(root, asset)
    count = sum(len(found) for _, _, found in versions.values())
    lines = [f"# the asset cache at {root}: {count} values kept for {len(versions)} asset partitions; "
             f"{_mb(disk_size(root))} on disk", ""]
    for entry, (_, _, found) in versions.items():
        lines.append(entry)
        for v in found:
            mark = "current" if v.current else ""
            run = v.run_id[:8] or "?"
            lines.append(f"  {v.key}  {_mb(v.size):>11}  used {_when(v)}  made by run {run}  {mark}".rstrip())
    return "\n".join(lines)


def prune_cache(root: UPath, keep: int, grace: float, dry_run: bool = False) -> list[Version]:
    """Remove what ``prune`` removes (see the module's doc); the removed versions."""
    versions = kept(root)
    protect = named_by_dagster(versions)
    removed = []
    for current, kind, found in versions.values():
        removed += to_remove(found, keep, grace, protect) if dry_run else \
            prune(found, keep, lambda c=current, k=kind: file_key(c, k), grace, protect)
    return removed


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("a whole number of at least 1 (the current value is always kept)")
    return int(text)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", default=None,
                        help="the cache's folder or URL (default: $CLUSTERING_DAG_CACHE_DIR or data/)")
    commands = parser.add_subparsers(dest="action", required=True, metavar="list|prune")
    listed = commands.add_parser("list", help="every kept value, per asset partition",
                                 epilog="example:\n  clustering-dag cache list --asset dae/trained_vae",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    listed.add_argument("--asset", help="only this asset's values (e.g. paper/clustering_metrics)")
    pruned = commands.add_parser("prune", help="remove the oldest kept values",
                                 epilog="example:\n  clustering-dag cache prune --keep 2 --dry-run",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    pruned.add_argument("--keep", type=_at_least_one, default=KEEP_VERSIONS,
                        help="values kept per asset partition, the current one included "
                             f"(default {KEEP_VERSIONS})")
    pruned.add_argument("--grace", type=float, default=GRACE_SECONDS,
                        help="never remove a value made or used in the last SECONDS "
                             f"(default {GRACE_SECONDS})")
    pruned.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")


def run(args: argparse.Namespace) -> int:
    root = UPath(absolute(args.cache) if args.cache else cache_root())
    if not root.exists():
        raise DataError(f"the cache {root} does not exist: run the pipeline first (README, 'The two "
                        "commands'), or name the cache folder with --cache.")
    if args.action == "list":
        sys.stdout.write(listing(root, args.asset) + "\n")
        return 0
    removed = prune_cache(root, args.keep, args.grace, args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for v in removed:
        sys.stdout.write(f"{verb} {v.entry} {v.key} ({_mb(v.size)})\n")
    sys.stdout.write(f"{verb} {len(removed)} kept values, {_mb(sum(v.size for v in removed))}; "
                     f"{_mb(disk_size(root))} on disk now\n")
    return 0


def main(argv=None) -> int:
    from clustering_dag.cli import module_main

    return module_main("cache", argv)


if __name__ == "__main__":
    sys.exit(main())
