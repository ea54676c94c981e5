"""Users' own datasets: a numeric feature table or an image array from parquet, CSV or ``.npz``.

The registry (:mod:`clustering_dag.core.registry`) says where each file is and how to read it.
Every problem with a file (missing, empty, ragged rows, non-numeric columns, NaN/Inf, labels of
the wrong length, too few rows) raises one :class:`DataError` that names the file and the column
or row, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clustering_dag.core.arrays import SPLITS, Splits
from clustering_dag.core.errors import DataError
from clustering_dag.core.readers import finite, numeric_matrix, read_frame, read_npz_members, row_ref, shown
from clustering_dag.core.registry import DEFAULT_CLUSTERS, UserDataset

# ---------------------------------------------------------------------------------------------
# Reading


def _labels(values, file: Path, fmt: str, what: str) -> tuple[np.ndarray, list[str]]:
    """Labels of any type as integer codes 0..k-1, and the class names in code order."""
    series = pd.Series(values)
    missing = np.flatnonzero(series.isna().to_numpy())
    if len(missing):
        raise DataError(f"{file}: label {what} is empty at {row_ref(file, fmt, int(missing[0]))} "
                        f"({len(missing)} missing in all). Every row needs a label, or drop `label_column:`.")
    codes, classes = pd.factorize(series, sort=True)
    return codes.astype(np.int64), [str(c) for c in classes]


def _read_table(file: Path, fmt: str, spec: UserDataset):
    frame = read_frame(file, fmt, spec.max_bytes)
    named = {"label_column": spec.label_column, "split_column": spec.split_column}
    for option, column in [*named.items(), *(("features", c) for c in spec.features or [])]:
        if column is not None and column not in frame.columns:
            raise DataError(f"{file}: no column {column!r} (from `{option}:`); the columns are "
                            f"{list(frame.columns)}.")
    columns = spec.features or [c for c in frame.columns if c not in named.values()]
    if not columns:
        raise DataError(f"{file}: no feature columns besides the label and split columns.")
    if len(frame) == 0:
        raise DataError(f"{file}: the file has a header but no rows.")
    x = numeric_matrix(frame, [str(c) for c in columns], file, fmt)
    y = frame[spec.label_column].to_numpy() if spec.label_column else None
    split = None
    if spec.split_column:
        split = frame[spec.split_column].astype("string").str.strip().str.lower()
        bad = np.flatnonzero(~split.isin(SPLITS).fillna(False).to_numpy())
        if len(bad):
            held = shown(frame[spec.split_column].iloc[bad[0]])
            raise DataError(
                f"{file}: split column {spec.split_column!r} holds {held} "
                f"at {row_ref(file, fmt, int(bad[0]))}; its values must be 'train' or 'test'.")
        split = split.to_numpy(dtype=object)
    return x, y, split, [str(c) for c in columns]


def _read_npz(file: Path, max_bytes: int):
    """``x`` [+ ``y``] (split here), or ``train_x``, ``test_x`` [+ ``train_y``, ``test_y``]."""
    arrays = read_npz_members(file, max_bytes)
    keys = set(arrays)
    layouts = [({"x"}, {"y"}), ({"train_x", "test_x"}, {"train_y", "test_y"})]
    for required, optional in layouts:
        if required <= keys and keys <= required | optional:
            break
    else:
        raise DataError(f"{file}: holds arrays {sorted(keys)}; expected 'x' (+ optional 'y'), or "
                        "'train_x' and 'test_x' (+ optional 'train_y' and 'test_y').")
    if "train_y" in keys and "test_y" not in keys or "test_y" in keys and "train_y" not in keys:
        raise DataError(f"{file}: has labels for one split only; give 'train_y' and 'test_y', or neither.")
    for name in sorted(k for k in keys if k.endswith("x")):
        arr = arrays[name]
        if arr.ndim not in (2, 3) or not len(arr) or (arr.dtype.kind not in "biuf"):
            raise DataError(f"{file}: array {name!r} has shape {arr.shape} and dtype {arr.dtype}; "
                            "expected numbers shaped (rows, features) or (rows, height, width).")
        finite(arr.reshape(len(arr), -1), file, "npz", what=name)
        y_name = name[:-1] + "y"
        if y_name in arrays:
            y = arrays[y_name]
            if y.ndim != 1 or len(y) != len(arr):
                raise DataError(f"{file}: labels {y_name!r} have shape {y.shape} but {name!r} has "
                                f"{len(arr)} rows; give one label per row.")
    if "x" in arrays:
        x, y, split = arrays["x"], arrays.get("y"), None
    else:
        if arrays["train_x"].shape[1:] != arrays["test_x"].shape[1:]:
            raise DataError(f"{file}: 'train_x' is {arrays['train_x'].shape} but 'test_x' is "
                            f"{arrays['test_x'].shape}; the rows must have one shape.")
        x = np.concatenate([arrays["train_x"], arrays["test_x"]])
        y = np.concatenate([arrays["train_y"], arrays["test_y"]]) if "train_y" in arrays else None
        split = np.array(["train"] * len(arrays["train_x"]) + ["test"] * len(arrays["test_x"]), dtype=object)
    image_shape = list(x.shape[1:]) if x.ndim == 3 else None
    return x.reshape(len(x), -1).astype(np.float64), y, split, image_shape, x.dtype == np.uint8


def _scale(train: np.ndarray, test: np.ndarray, how: str, integer_images: bool, file: Path):
    """The two splits scaled as ``how`` says, a description, and the scale itself (``how`` and,
    for min-max, the training split's ``lo`` and ``span`` per feature: a later batch is scaled
    with the same numbers, :func:`clustering_dag.core.scoring.apply_scale`)."""
    if how == "auto":
        how = "255" if integer_images else "minmax"
    if how == "255":
        return train / 255.0, test / 255.0, "divided by 255", {"how": "255"}
    if how == "minmax":
        lo, hi = train.min(axis=0), train.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        return ((train - lo) / span, (test - lo) / span, "min-max per feature (training split)",
                {"how": "minmax", "lo": lo.tolist(), "span": span.tolist()})
    if train.min() < 0 or train.max() > 1:
        raise DataError(f"{file}: `scale: none` but the training values span [{train.min():.4g}, "
                        f"{train.max():.4g}]; the VAE's Bernoulli decoder needs [0, 1]. Use `scale: minmax`.")
    return train, test, "none", {"how": "none"}


def load_user_dataset(name: str, spec: UserDataset) -> Splits:
    """Read, validate, split and scale a registered dataset into float32 :class:`Splits`."""
    file = Path(spec.path)
    if not file.is_file():
        raise DataError(f"dataset {name!r}: file {file} does not exist. Fix `path:` in the dataset "
                        "registry (relative paths start at the registry file's folder).")
    if file.stat().st_size == 0:
        raise DataError(f"dataset {name!r}: file {file} is empty (0 bytes).")
    fmt = spec.file_format()
    feature_names, image_shape, integer_images = None, None, False
    if fmt == "npz":
        if spec.label_column or spec.split_column or spec.features:
            raise DataError(f"dataset {name!r}: label_column, split_column and features apply to "
                            f"tables; {file} is .npz (arrays 'x'/'y' or 'train_x'/'test_x').")
        x, y, split, image_shape, integer_images = _read_npz(file, spec.max_bytes)
    else:
        x, y, split, feature_names = _read_table(file, fmt, spec)  # within spec.max_bytes
    image_shape = list(spec.image_shape) if spec.image_shape else image_shape
    classes = None
    if y is not None:
        what = f"column {spec.label_column!r}" if spec.label_column else "array"
        y, classes = _labels(y, file, fmt, what)
    if image_shape and int(np.prod(image_shape)) != x.shape[1]:
        raise DataError(f"dataset {name!r}: image_shape {image_shape} has {int(np.prod(image_shape))} "
                        f"pixels but {file} has {x.shape[1]} features per row.")

    if spec.rows is not None and len(x) != spec.rows:
        raise DataError(f"{file}: has {len(x)} rows but the registry says `rows: {spec.rows}`; the file "
                        "is truncated or not the one registered. Restore it, or correct `rows:`.")
    if split is None:
        order = np.random.default_rng(spec.split_seed).permutation(len(x))
        n_test = max(1, int(round(spec.test_fraction * len(x))))
        split = np.full(len(x), "train", dtype=object)
        split[order[:n_test]] = "test"
    if classes is not None and len(classes) < 2 and spec.n_clusters is None:
        raise DataError(f"{file}: {what} holds one class only ({classes[0]!r}), so it cannot say how "
                        "many clusters to fit. Set `n_clusters:` in the registry entry, or drop "
                        "`label_column:` if the labels mean nothing.")
    n_clusters = spec.n_clusters or (len(classes) if classes else DEFAULT_CLUSTERS)
    is_train = split == "train"
    n_train, n_test = int(is_train.sum()), int((~is_train).sum())
    if n_train < n_clusters or n_test <= n_clusters:
        raise DataError(f"{file}: {n_train} training and {n_test} test rows are too few to fit "
                        f"{n_clusters} clusters and score them; give more rows (or set `n_clusters:`).")
    train_x, test_x, scaling, scale = _scale(x[is_train], x[~is_train], spec.scale, integer_images, file)
    return Splits(
        train_x.astype(np.float32), None if y is None else y[is_train],
        test_x.astype(np.float32), None if y is None else y[~is_train],
        meta={"dataset": name, "source": str(file), "image_shape": image_shape,
              "n_clusters": n_clusters, "classes": classes, "scaling": scaling,
              "scale": scale, "feature_names": feature_names,
              "label_column": spec.label_column, "split_column": spec.split_column})
