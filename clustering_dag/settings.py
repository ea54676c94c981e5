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

