"""Where the project keeps its files, overridable by environment variables."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def code_commit() -> str | None:
    """The git commit of the project's code, as ``git describe`` names it (``<tag>-<n>-g<hash>``,
    or the short hash), with ``-dirty`` when tracked files differ from it; None outside a git
    checkout (an installed package). Stored with every value made, so a table says which code
    made it."""
    if not (PROJECT_ROOT / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(PROJECT_ROOT), "describe", "--always", "--dirty",
                               "--abbrev=7"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def absolute(value: str) -> str:
    """A local path made absolute where it is read (a URL is left as it is): a relative path in an
    environment variable would otherwise mean another folder in every process started elsewhere
    (workers, subprocesses)."""
    return value if "://" in value else str(Path(value).expanduser().resolve())


def cache_root() -> str:
    """Base path of the asset cache: ``$CLUSTERING_DAG_CACHE_DIR`` or the project's ``data/``.

    May be any fsspec/UPath URL (``s3://bucket/prefix``) for the IO managers; the raw-data cache
    and figures live below it as well.
    """
    configured = os.environ.get("CLUSTERING_DAG_CACHE_DIR")
    return absolute(configured) if configured else str(PROJECT_ROOT / "data")


def data_dir() -> Path | None:
    """The folder holding the paper's datasets (``mnist/``, ``fashion-mnist/``):
    ``$CLUSTERING_DAG_DATA_DIR``, absolute; None when unset (they are then looked for in the project
    cache and downloaded)."""
    configured = os.environ.get("CLUSTERING_DAG_DATA_DIR")
    return Path(absolute(configured)) if configured else None


def registry_path() -> Path | None:
    """The registry of the user's own datasets: ``$CLUSTERING_DAG_DATASETS``, else
    ``data/datasets.yaml`` when it exists, else none."""
    configured = os.environ.get("CLUSTERING_DAG_DATASETS")
    if configured:
        return Path(configured)
    default = PROJECT_ROOT / "data" / "datasets.yaml"
    return default if default.is_file() else None


def inbox_root() -> Path:
    """Where batches of new rows are dropped, one folder per dataset (``<inbox>/mnist/``):
    ``$CLUSTERING_DAG_INBOX``, else the project's ``data/inbox/``."""
    configured = os.environ.get("CLUSTERING_DAG_INBOX")
    return Path(absolute(configured)) if configured else PROJECT_ROOT / "data" / "inbox"


def data_roots() -> list[Path] | None:
    """The folders registered datasets may be read from: ``$CLUSTERING_DAG_DATA_ROOTS``
    (separated by ``:``); None = the registry file's own folder."""
    configured = os.environ.get("CLUSTERING_DAG_DATA_ROOTS")
    return [Path(absolute(p)) for p in configured.split(os.pathsep) if p] if configured else None


def cache_secret() -> str | None:
    """``$CLUSTERING_DAG_CACHE_SECRET``: when set, every stored file's content digest is an HMAC
    under it, so a cache shared between machines accepts only files its own writers made."""
    return os.environ.get("CLUSTERING_DAG_CACHE_SECRET") or None
