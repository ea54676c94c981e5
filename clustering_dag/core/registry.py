"""The registry of users' own datasets: a YAML file naming each dataset, where its file is and how
to read it::

    datasets:
      wine:
        path: wine.csv          # relative to the registry file
        label_column: target    # optional: label-based metrics only where labels exist
        test_fraction: 0.25     # when the file has no split of its own

Reading it needs only pydantic and YAML, so the code location can list the datasets as partitions
without loading the numeric stack; the files themselves are read by
:mod:`clustering_dag.core.user_data`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clustering_dag.core.errors import MAX_FILE_BYTES, DataError
from clustering_dag.core.paths import shown

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DEFAULT_CLUSTERS = 10


class UserDataset(BaseModel):
    """One registered dataset. ``path`` is resolved against the registry file's folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="The .csv, .parquet or .npz file.")
    format: Literal["auto", "csv", "parquet", "npz"] = Field(
        default="auto", description="File format; 'auto' goes by the file extension.")
    label_column: str | None = Field(default=None, description="Column of true labels (tables).")
    split_column: str | None = Field(
        default=None, description="Column whose values are 'train' or 'test' (tables).")
    features: list[str] | None = Field(
        default=None, description="Feature columns (default: every column but label and split).")
    test_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Held-out share when the file has no split of its own.")
    split_seed: int = Field(default=0, description="Seed of that random split.")
    image_shape: tuple[int, int] | None = Field(
        default=None, description="(height, width) when the rows are images; enables image figures.")
    scale: Literal["auto", "minmax", "none"] = Field(
        default="auto",
        description="To [0, 1] (the Bernoulli decoder needs it; the noise sigma is relative to it): "
                    "'minmax' per feature from the training split; 'auto' = uint8 arrays / 255, else "
                    "minmax; 'none' = already in [0, 1].")
    n_clusters: int | None = Field(
        default=None, ge=2, description="Clusters to fit (default: number of label classes, else 10).")
    rows: int | None = Field(
        default=None, ge=1, description="Expected number of rows (train + test): catches a truncated file.")
    max_bytes: int = Field(
        default=MAX_FILE_BYTES, ge=1,
        description="The most the file may hold, on disk and as its arrays (a parquet file's rows x "
                    "columns x 8 bytes, an .npz member's declared size): larger is refused before it "
                    "is read.")
    profile: Literal["full", "quick", "small"] | None = Field(
        default=None, description="Run-config profile of this dataset's scheduled runs (default: full).")

    def file_format(self) -> str:
        if self.format != "auto":
            return self.format
        fmt = FORMATS.get(Path(self.path).suffix.lower())
        if fmt is None:
            raise DataError(f"{self.path}: cannot tell the format from the extension "
                            f"{Path(self.path).suffix!r}; use one of {sorted(FORMATS)} or set `format:`.")
        return fmt


MAX_REGISTRY_BYTES = 1 << 20


def load_registry(path: str | Path, reserved: set[str] = frozenset(),
                  roots: list[Path] | None = None) -> dict[str, UserDataset]:
    """Read a registry file; each entry's ``path`` becomes absolute and must lie under one of
    ``roots`` (the folders datasets may be read from; default: the registry's own folder).
    ``reserved`` names (the built-in datasets) may not be reused."""
    path = Path(path).expanduser()
    fix = "Fix the file, or unset CLUSTERING_DAG_DATASETS."
    if not path.is_file():
        raise DataError(f"dataset registry {path} does not exist. {fix}")
    if path.stat().st_size > MAX_REGISTRY_BYTES:
        raise DataError(f"dataset registry {path} is larger than {MAX_REGISTRY_BYTES:,} bytes; it lists "
                        f"datasets, not data. {fix}")
    allowed = [Path(r).expanduser().resolve() for r in roots] if roots else [path.parent.resolve()]
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"dataset registry {path} is not valid YAML: {exc}. {fix}") from None
    entries = doc.get("datasets") if isinstance(doc, dict) else None
    if not isinstance(entries, dict) or set(doc) - {"datasets"}:
        raise DataError(f"dataset registry {path} must hold one mapping, `datasets:`, of name -> "
                        f"settings (see README 'Your own data'). {fix}")
    out = {}
    for name, entry in entries.items():
        where = f"dataset registry {path}, entry {shown(name)}"
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise DataError(f"{where}: names are lower-case letters, digits and '_', starting with "
                            f"a letter (they become partition keys). {fix}")
        if name in reserved:
            raise DataError(f"{where}: {name!r} is a built-in dataset; choose another name. {fix}")
        if isinstance(entry, str):
            entry = {"path": entry}
        try:
            spec = UserDataset.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}"
                                 for e in exc.errors())
            raise DataError(f"{where}: {problems}. {fix}") from None
        full = (path.parent / Path(spec.path).expanduser()).resolve()
        if not any(full.is_relative_to(root) for root in allowed):
            raise DataError(f"{where}: {full} lies outside the folders datasets may be read from "
                            f"({', '.join(map(str, allowed))}); move the file there, or name its folder "
                            "in CLUSTERING_DAG_DATA_ROOTS (folders separated by ':').")
        out[name] = spec.model_copy(update={"path": str(full)})
    return out
