"""Train/test arrays and their Arrow form.

Every array asset of the pipeline (raw pixels, noisy images, reconstructions, latent codes) is a
:class:`Splits`: features and labels for a train and a test split. On disk it is one Arrow table
with a ``split`` column, a ``label`` column and the features as one fixed-size-list column ``x``
(no 784 separate columns), so conversion is zero-copy in both directions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from clustering_dag.core.errors import DataError

SPLITS = ("train", "test")
_META_KEY = b"clustering_dag"


@dataclass
class Splits:
    """Features ``x`` (float32, n x d) and integer labels ``y`` (or None) for train and test."""

    train_x: np.ndarray
    train_y: np.ndarray | None
    test_x: np.ndarray
    test_y: np.ndarray | None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        for split in SPLITS:
            x, y = self.xy(split)
            if x.ndim != 2:
                raise DataError(f"{split} features must be 2-D (n, d), got shape {x.shape}")
            if y is not None and len(y) != len(x):
                raise DataError(f"{split} has {len(x)} rows but {len(y)} labels")
        if self.train_x.shape[1] != self.test_x.shape[1]:
            raise DataError(
                f"train has {self.train_x.shape[1]} features but test has {self.test_x.shape[1]}"
            )

    def xy(self, split: str) -> tuple[np.ndarray, np.ndarray | None]:
        return getattr(self, f"{split}_x"), getattr(self, f"{split}_y")

    @property
    def dim(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def has_labels(self) -> bool:
        return self.train_y is not None and self.test_y is not None

    @property
    def image_shape(self) -> list[int] | None:
        """(height, width) when the rows are images; None for a feature table."""
        return self.meta.get("image_shape")

    @property
    def n_clusters(self) -> int:
        """The dataset's natural number of clusters (10 for the paper's datasets)."""
        return int(self.meta.get("n_clusters") or 10)

    def head(self, train_rows: int | None, test_rows: int | None) -> Splits:
        """The first rows of each split (all when None); ``meta["source_rows"]`` keeps how many
        rows each split had before."""
        cut = lambda a, n: None if a is None else a[:n]  # noqa: E731
        source_rows = self.meta.get("source_rows", [len(self.train_x), len(self.test_x)])
        return Splits(cut(self.train_x, train_rows), cut(self.train_y, train_rows),
                      cut(self.test_x, test_rows), cut(self.test_y, test_rows),
                      meta={**self.meta, "source_rows": source_rows})

    def with_x(self, train_x: np.ndarray, test_x: np.ndarray, **meta) -> Splits:
        """The same labels with new features (e.g. a representation of these images)."""
        return replace(self, train_x=train_x, test_x=test_x, meta={**self.meta, **meta})

    def summary(self) -> dict:
        return {
            "train_rows": len(self.train_x),
            "test_rows": len(self.test_x),
            "features": self.dim,
            "labelled": self.has_labels,
        }


def sample_rows(n: int, size: int | None, labels: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded sample of ``size`` of ``n`` rows (all rows when ``size`` is None
    or not smaller). With ``labels`` it is stratified: rows in random order, grouped by label,
    taken at even steps, so each class keeps its share to within one row."""
    if size is None or size >= n:
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    if labels is not None:
        order = order[np.argsort(np.asarray(labels)[order], kind="stable")]
    return np.sort(order[(np.arange(size) * n) // size])


def splits_to_table(splits: Splits) -> pa.Table:
    dim = splits.dim
    parts = []
    for split in SPLITS:
        x, y = splits.xy(split)
        x = np.ascontiguousarray(x, dtype=np.float32)
        values = pa.array(x.reshape(-1), type=pa.float32())
        labels = pa.nulls(len(x), pa.int64()) if y is None else pa.array(np.asarray(y, np.int64))
        parts.append(pa.table({
            "split": pa.array([split] * len(x), pa.string()),
            "label": labels,
            "x": pa.FixedSizeListArray.from_arrays(values, dim),
        }))
    table = pa.concat_tables(parts)
    return table.replace_schema_metadata({_META_KEY: json.dumps(splits.meta, default=str).encode()})


def table_to_splits(table: pa.Table, where: str = "table") -> Splits:
    missing = {"split", "label", "x"} - set(table.column_names)
    if missing:
        raise DataError(f"{where} lacks the column(s) {sorted(missing)}; it is not a Splits table")
    x_type = table.schema.field("x").type
    if not pa.types.is_fixed_size_list(x_type):
        raise DataError(f"{where}: column 'x' is {x_type}, expected a fixed-size list of float32")
    dim = x_type.list_size
    split_col = table.column("split").to_numpy(zero_copy_only=False)
    x_all = table.column("x").combine_chunks().flatten().to_numpy().reshape(-1, dim)
    label_col = table.column("label")
    y_all = None if label_col.null_count == len(label_col) else label_col.to_numpy()
    arrays = {}
    for split in SPLITS:
        mask = split_col == split
        arrays[f"{split}_x"] = x_all[mask]
        arrays[f"{split}_y"] = None if y_all is None else y_all[mask].astype(np.int64)
    raw_meta = (table.schema.metadata or {}).get(_META_KEY)
    meta = json.loads(raw_meta) if raw_meta else {}
    return Splits(**arrays, meta=meta)


class LazySplits(Splits):
    """A :class:`Splits` whose arrays are read on first use.

    Its ``meta`` (including the cache key) is known without reading the arrays, so a run that
    finds nothing changed never reads them at all.
    """

    def __init__(self, load, meta: dict):  # noqa: D107 - no dataclass __init__: nothing to validate yet
        self._load, self._value, self.meta = load, None, meta

    def _get(self) -> Splits:
        if self._value is None:
            self._value = self._load()
            self._value.meta = self.meta  # one dict: keys set on either object are seen by both
        return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None

    train_x = property(lambda self: self._get().train_x)
    train_y = property(lambda self: self._get().train_y)
    test_x = property(lambda self: self._get().test_x)
    test_y = property(lambda self: self._get().test_y)

    def with_x(self, train_x: np.ndarray, test_x: np.ndarray, **meta) -> Splits:
        return self._get().with_x(train_x, test_x, **meta)
