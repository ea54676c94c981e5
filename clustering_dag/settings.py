"""Where the project keeps its files, overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> str:
    """Base path of the asset cache: ``$CLUSTERING_DAG_CACHE_DIR`` or the project's ``data/``.

    May be any fsspec/UPath URL (``s3://bucket/prefix``) for the IO managers; the raw-data cache
    and figures live below it as well.
    """
    return os.environ.get("CLUSTERING_DAG_CACHE_DIR") or str(PROJECT_ROOT / "data")



def registry_path() -> Path | None:
    """The registry of the user's own datasets: ``$CLUSTERING_DAG_DATASETS``, else
    ``data/datasets.yaml`` when it exists, else none."""
    configured = os.environ.get("CLUSTERING_DAG_DATASETS")
    if configured:
        return Path(configured)
    default = PROJECT_ROOT / "data" / "datasets.yaml"
    return default if default.is_file() else None
