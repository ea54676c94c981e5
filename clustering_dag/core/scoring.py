"""Scoring data that arrives later with the models a dataset's run stored: no re-training, no
re-fitting.

A *batch* is a file in the dataset's own format: IDX or ``.npz`` images of the dataset's image
shape, or a CSV/parquet table with the dataset's feature columns. :func:`read_batch` checks it
against the dataset's :class:`BatchLayout` (read from its stored ``raw_dataset``) and scales it as
the dataset's training split was scaled. :func:`score` assigns every row to a cluster in each
space that can score new rows (:attr:`~clustering_dag.core.spaces.Space.scorable`: the original,
reconstructed and latent spaces by their k-means, the refined classifier by itself), with the
distance to that cluster's centre or the classifier's probability. The manifold stage is not
scored: its UMAP could only be stored as a pickle.

A batch's rows are taken as they are (no noise is added): scoring the noisy test split gives
exactly the test split's ``cluster_assignments``. The ``paper`` variant's code is a sample of
q(z|x), drawn under the seed of the test split's code.

Drift: :func:`drift_flags` marks the rows farther from their centre (or less surely classified)
than ``DRIFT_QUANTILE`` of the test split's rows were; about 5 % of rows like the test split's are
marked, so a batch with many more (``DRIFT_ALARM_SHARE``) comes from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clustering_dag.core.arrays import Splits
from clustering_dag.core.clustering import ClusterModel
from clustering_dag.core.errors import DataError
from clustering_dag.core.spaces import Space

# A row is "far" when it lies beyond this quantile of the test split's distances (or below
# 1 - this quantile of its classifier probabilities); the drift check warns above this share.
DRIFT_QUANTILE = 0.95
DRIFT_ALARM_SHARE = 0.15
# Batch files are read whole: larger ones are refused before anything is allocated.
MAX_BATCH_BYTES = 4 << 30
IMAGE_SUFFIXES = (".npz", ".gz", ".idx", "-ubyte")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class BatchLayout:
    """What a dataset's batch files must hold: ``dim`` features per row, as images of
    ``image_shape`` or as the table columns ``feature_names``; ``scale`` is how the dataset's
    training split was scaled; ``extra_columns`` are table columns a batch may also carry (the
    label, kept for scoring only, and the split column, ignored)."""

    dataset: str
    dim: int
    image_shape: tuple[int, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    scale: dict = field(default_factory=lambda: {"how": "255"})
    label_column: str | None = None
    split_column: str | None = None

    @classmethod
    def of(cls, raw: Splits) -> BatchLayout:
        """The layout of the dataset whose stored ``raw_dataset`` is ``raw`` (its metadata only)."""
        meta = raw.meta
        shape, names = meta.get("image_shape"), meta.get("feature_names")
        dim = int(np.prod(shape)) if shape else len(names) if names else raw.dim
        return cls(str(meta.get("dataset", "")), dim, tuple(shape) if shape else None,
                   tuple(names) if names else None, meta.get("scale") or {"how": "255"},
                   meta.get("label_column"), meta.get("split_column"))

    def describe(self) -> str:
        if self.image_shape:
            shape = ", ".join(map(str, self.image_shape))
            return (f"images of {' x '.join(map(str, self.image_shape))} pixels (IDX, or .npz with an "
                    f"array 'x' shaped (rows, {shape}) or (rows, {self.dim}))")
        if self.feature_names:
            return f"a CSV or parquet table with the columns {list(self.feature_names)}"
        return f"a .npz array 'x' shaped (rows, {self.dim})"


@dataclass
class Batch:
    """A batch's rows, scaled like the training split (float32, n x dim), and its labels if it
    carried any."""

    x: np.ndarray
    y: np.ndarray | None
    source: str


def read_batch(path: str | Path, layout: BatchLayout, max_bytes: int = MAX_BATCH_BYTES) -> Batch:
    """The rows of the batch file ``path``, checked against ``layout``; one :class:`DataError`
    naming the file and what was expected otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"batch file {path} does not exist.")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"batch file {path} is empty (0 bytes); expected {layout.describe()}.")
    if size > max_bytes:
        raise DataError(f"batch file {path} has {size:,} bytes, more than the {max_bytes:,} a batch "
                        "may have; split it into smaller files.")
    name = path.name.lower()
    if name.endswith(TABLE_SUFFIXES):
        if not layout.feature_names:
            raise DataError(f"batch file {path} is a table, but dataset {layout.dataset!r} holds "
                            f"{layout.describe()}.")
        x, y = _read_table(path, layout, max_bytes)
    elif name.endswith(IMAGE_SUFFIXES):
        if layout.feature_names:
            raise DataError(f"batch file {path} is an array file, but dataset {layout.dataset!r} holds "
                            f"{layout.describe()}.")
        x, y = _read_arrays(path, layout, max_bytes)
    else:
        raise DataError(f"batch file {path}: unknown format (by its name); expected {layout.describe()}.")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(1))[0])
        raise DataError(f"batch file {path}: row {row + 1} has NaN or Inf values; fill or drop them.")
    return Batch(np.ascontiguousarray(x, dtype=np.float32), y, str(path))


def _read_arrays(path: Path, layout: BatchLayout, max_bytes: int):
    from clustering_dag.core.idx import read_idx

    if path.name.lower().endswith(".npz"):
        arrays = _read_npz(path, max_bytes)
        x, y = arrays["x"], arrays.get("y")
    else:
        x, y = read_idx(path), None
    shape = tuple(x.shape[1:])
    if not len(x):
        raise DataError(f"batch file {path} has no rows; expected {layout.describe()}.")
    if shape not in (tuple(layout.image_shape or ()), (layout.dim,)):
        raise DataError(f"batch file {path} holds rows shaped {shape}; dataset {layout.dataset!r} "
                        f"expects {layout.describe()}.")
    if x.dtype.kind not in "biuf":
        raise DataError(f"batch file {path} holds {x.dtype} values; expected numbers.")
    if y is not None and (y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "biu"):
        raise DataError(f"batch file {path}: labels 'y' have shape {y.shape} and dtype {y.dtype}; "
                        f"expected {len(x)} integers, one per row.")
    integers = x.dtype.kind in "biu"
    return apply_scale(x.reshape(len(x), -1), layout.scale, integers), y


def _read_npz(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays ``x`` (and optional ``y``) of a ``.npz``, sized from their headers first."""
    from clustering_dag.core.readers import read_npz_members

    try:
        arrays = read_npz_members(path, max_bytes)
    except DataError as exc:
        raise DataError(f"batch file {exc}") from None
    if "x" not in arrays or not set(arrays) <= {"x", "y"}:
        raise DataError(f"batch file {path} holds arrays {sorted(arrays)}; expected 'x' "
                        "(+ optional 'y', labels kept for scoring only).")
    return arrays


def _read_table(path: Path, layout: BatchLayout, max_bytes: int):
    from clustering_dag.core.readers import numeric_matrix, read_frame

    fmt = "csv" if path.name.lower().endswith(".csv") else "parquet"
    try:
        frame = read_frame(path, fmt, max_bytes, fix="split it into smaller files")
    except DataError as exc:
        raise DataError(f"batch {exc}") from None
    names = list(layout.feature_names)
    columns = [str(c) for c in frame.columns]
    missing = [c for c in names if c not in columns]
    allowed = {*names, layout.label_column, layout.split_column}
    extra = [c for c in columns if c not in allowed]
    if missing or extra:
        raise DataError(f"batch file {path} has the columns {columns}; dataset {layout.dataset!r} "
                        f"expects {names}" + (f" (missing {missing})" if missing else "")
                        + (f" (unknown {extra})" if extra else "") + ".")
    if not len(frame):
        raise DataError(f"batch file {path} has a header but no rows.")
    x = numeric_matrix(frame, names, path, fmt)
    y = None
    if layout.label_column and layout.label_column in frame:
        y = frame[layout.label_column].astype("string").to_numpy(dtype=object)
    return apply_scale(x, layout.scale, integers=False), y


def apply_scale(x: np.ndarray, scale: dict, integers: bool) -> np.ndarray:
    """``x`` scaled as a dataset's training split was (``scale`` from its ``raw_dataset``):
    integer pixels divided by 255 (float pixels are taken as already in [0, 1]), or min-max with
    the training split's own minimum and span."""
    how = scale.get("how", "255")
    if how == "255" and integers:  # one pass, the same float32 division as the training split's
        return np.divide(x, np.float32(255.0), dtype=np.float32)
    x = x.astype(np.float64 if how == "minmax" else np.float32, copy=False)
    if how == "255":
        return x
    if how == "minmax":
        lo, span = np.asarray(scale["lo"]), np.asarray(scale["span"])
        return (x - lo) / span
    return x


def score(spaces: list[Space], values: dict, x: np.ndarray, labels: np.ndarray | None = None) -> pd.DataFrame:
    """One row per input row, per space of ``spaces`` (each :attr:`Space.scorable`):
    ``<space>_cluster`` and ``<space>_distance`` (to that cluster's centre) for a clustered space,
    ``<space>_cluster`` and ``<space>_probability`` for a classifier's; the labels, if given, as
    ``label`` (never used to score). ``values``: the stored values
    :func:`~clustering_dag.core.spaces.scored_with` names."""
    frame = pd.DataFrame({"row": np.arange(len(x), dtype=np.int64)})
    if labels is not None:
        frame["label"] = labels
    memo: dict = {}
    for space in spaces:
        points = space.project(values, x, memo)
        if space.clustering:
            clusters, distances = ClusterModel.from_frame(values[space.clustering]).nearest(points)
            frame[f"{space.name}_cluster"], frame[f"{space.name}_distance"] = clusters, distances
        else:
            frame[f"{space.name}_cluster"] = points.argmax(1).astype(np.int64)
            frame[f"{space.name}_probability"] = points.max(1).astype(np.float64)
    return frame


def _scored(scores: pd.DataFrame, what: str) -> list[str]:
    """The spaces whose rows carry ``<space>_<what>`` (distance, probability, cluster)."""
    return [c.removesuffix(f"_{what}") for c in scores.columns if c.endswith(f"_{what}")]


def drift_limits(reference: pd.DataFrame, quantile: float = DRIFT_QUANTILE) -> dict[str, float]:
    """From the scored test split: per clustered space the distance beyond which a row is far, and
    per classifier's space the probability below which it is unsure."""
    limits = {s: float(np.quantile(reference[f"{s}_distance"], quantile))
              for s in _scored(reference, "distance")}
    limits.update({s: float(np.quantile(reference[f"{s}_probability"], 1 - quantile))
                   for s in _scored(reference, "probability")})
    return limits


def drift_flags(scores: pd.DataFrame, limits: dict[str, float]) -> pd.DataFrame:
    """``scores`` with ``<space>_far`` (or ``<space>_unsure``, for a classifier) per row, by ``limits``."""
    flagged = scores.copy()
    for space in _scored(scores, "distance"):
        flagged[f"{space}_far"] = scores[f"{space}_distance"] > limits[space]
    for space in _scored(scores, "probability"):
        flagged[f"{space}_unsure"] = scores[f"{space}_probability"] < limits[space]
    return flagged


def drift_shares(flagged: pd.DataFrame) -> dict[str, float]:
    """The share of a batch's rows marked by :func:`drift_flags`, per space."""
    return {s: float(flagged[f"{s}_{mark}"].mean()) for mark in ("far", "unsure")
            for s in _scored(flagged, mark)}


def drift_verdict(shares: dict[str, float], unsure: tuple[str, ...] = (), alarm: float = DRIFT_ALARM_SHARE,
                  quantile: float = DRIFT_QUANTILE) -> tuple[bool, str]:
    """(whether the batch looks like the test split, what to tell the user); ``unsure``: the
    spaces whose share is of rows a classifier is unsure of."""
    expected = 1 - quantile
    alarmed = {s: v for s, v in shares.items() if v > alarm}
    parts = [f"{v:.1%} of the rows lie farther from their {s} centroid than {quantile:.0%} of the "
             f"test split's rows did" for s, v in shares.items() if s not in unsure]
    parts += [f"the {s} classifier is less sure of {shares[s]:.1%} of them than of {quantile:.0%} of "
              "the test rows" for s in unsure]
    text = "; ".join(parts) + f" (the test split itself: {expected:.0%} each)."
    if alarmed:
        return False, (f"this batch does not look like the data the models learned from: {text} "
                       f"Above {alarm:.0%} in {', '.join(alarmed)}: look at its examples per cluster, "
                       "check how it was made (scaling, image orientation, another source), or "
                       "retrain on data that includes such rows before trusting its clusters.")
    return True, f"the batch looks like the test split: {text}"


def unsure_spaces(scores: pd.DataFrame) -> tuple[str, ...]:
    """The classifiers' spaces of a scored table."""
    return tuple(_scored(scores, "probability"))


def cluster_counts(scores: pd.DataFrame, k: int) -> pd.DataFrame:
    """Rows per cluster in each scored space (clusters 0..k-1 as rows)."""
    return pd.DataFrame({"cluster": np.arange(k), **{
        s: np.bincount(scores[f"{s}_cluster"], minlength=k)[:k] for s in _scored(scores, "cluster")}})


def score_batch(batch: Batch, spaces: list[Space], values: dict, reference: pd.DataFrame) -> pd.DataFrame:
    """A batch's rows scored in ``spaces`` and flagged against the scored test split ``reference``."""
    return drift_flags(score(spaces, values, batch.x, batch.y), drift_limits(reference))


def score_file(path: str | Path, layout: BatchLayout, spaces: list[Space], values: dict,
               reference: pd.DataFrame) -> tuple[Batch, pd.DataFrame]:
    """The batch file ``path`` read and scored: what the ``scored_batch`` asset does, and
    ``python -m clustering_dag.score`` for each variant."""
    batch = read_batch(path, layout)
    return batch, score_batch(batch, spaces, values, reference)
