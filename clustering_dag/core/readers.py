"""Bounded reads of users' files: a CSV or parquet table, the arrays of a ``.npz``, a table's
numeric columns. Each refuses what is too large before allocating it and names the file (and the
column or row) in one :class:`DataError`; nothing is read by pickle. Users' datasets
(:mod:`clustering_dag.core.user_data`) and batches of new rows (:mod:`clustering_dag.core.scoring`)
both read through here.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clustering_dag.core.errors import MAX_FILE_BYTES, DataError

REGISTRY_LIMIT = "split the file or raise `max_bytes:` in its registry entry"


def read_frame(file: Path, fmt: str, max_bytes: int = MAX_FILE_BYTES,
               fix: str = REGISTRY_LIMIT) -> pd.DataFrame:
    """The CSV or parquet table ``file``, refused before it is read where it would take more than
    ``max_bytes`` (on disk, or as its footer's rows x columns of float64); ``fix`` is what the
    error tells the user to do about it (the limit is set in different places)."""
    size = file.stat().st_size
    if size > max_bytes:
        raise DataError(f"{file}: {size:,} bytes, more than the {max_bytes:,} allowed; {fix}.")
    if fmt == "parquet":
        try:
            meta = pq.ParquetFile(file).metadata
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{file}: not a readable parquet file ({exc}).") from None
        if meta.num_rows * meta.num_columns * 8 > max_bytes:
            raise DataError(f"{file}: {meta.num_rows:,} rows x {meta.num_columns} columns would take more "
                            f"than the {max_bytes:,} bytes allowed; {fix}.")
    if fmt == "csv":
        try:
            # index_col=False: a row with one field too many is an error, not a silent index.
            return pd.read_csv(file, index_col=False)
        except pd.errors.EmptyDataError:
            raise DataError(f"{file}: the CSV file has no header and no rows.") from None
        except pd.errors.ParserError as exc:
            detail = str(exc).split("C error: ")[-1].strip()
            raise DataError(f"{file}: rows have different numbers of fields ({detail}). "
                            "Every row needs one value per header column.") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{file}: not a text CSV file ({exc.reason}).") from None
    try:
        return pq.read_table(file).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{file}: not a readable parquet file ({exc}).") from None


def shown(value, limit: int = 40) -> str:
    """A cell's value as an error message quotes it: its repr, cut to ``limit`` characters (a
    message lands in logs and the UI; it names the cell, it does not copy the data)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def row_ref(file: Path, fmt: str, row: int) -> str:
    """A 1-based data row, plus the file line for CSV (line 1 is the header)."""
    return f"row {row + 1} (line {row + 2})" if fmt == "csv" else f"row {row + 1}"


def numeric_matrix(frame: pd.DataFrame, columns: list[str], file: Path, fmt: str) -> np.ndarray:
    for col in columns:
        series = frame[col]
        if not pd.api.types.is_numeric_dtype(series):
            coerced = pd.to_numeric(series, errors="coerce")
            bad = np.flatnonzero(coerced.isna().to_numpy() & series.notna().to_numpy())
            if len(bad):
                raise DataError(
                    f"{file}: column {col!r} is not numeric ({row_ref(file, fmt, int(bad[0]))} holds "
                    f"{shown(series.iloc[bad[0]])}). List the numeric columns under `features:`, or name "
                    "this column as `label_column:`.")
            frame = frame.assign(**{col: coerced})
    return finite(frame[columns].to_numpy(dtype=np.float64), file, fmt, columns)


def finite(x: np.ndarray, file: Path, fmt: str, columns: list[str] | None = None,
            what: str = "x") -> np.ndarray:
    bad = ~np.isfinite(x)
    if bad.any():
        flat = np.argwhere(bad.reshape(len(x), -1))
        row, col = (int(v) for v in flat[0])
        value = x.reshape(len(x), -1)[row, col]
        kind = "NaN (missing)" if np.isnan(value) else str(value)
        where = f"column {columns[col]!r}" if columns else f"array {what!r}, feature {col}"
        raise DataError(f"{file}: {where} has {kind} at {row_ref(file, fmt, row)} "
                        f"({int(bad.sum())} non-finite value(s) in all). Fill or drop them first.")
    return x


def read_npz_members(file: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """Every array of a ``.npz``, each member's dtype and size read from its ``.npy`` header
    before the member is: object arrays (only pickle could read them) and members larger than
    ``max_bytes`` are refused without allocating anything."""
    if not zipfile.is_zipfile(file):  # np.load would take it for a pickle
        raise DataError(f"{file}: not a readable .npz file (not a zip archive of .npy arrays).")
    arrays = {}
    try:
        with zipfile.ZipFile(file) as archive:
            for member in archive.namelist():
                key = member.removesuffix(".npy")
                with archive.open(member) as fh:
                    version = np.lib.format.read_magic(fh)
                    header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = header(fh)
                    if dtype.hasobject:
                        raise DataError(f"{file}: holds object arrays, which only pickle can read, and "
                                        "pickle is never loaded. Save numeric arrays "
                                        "(np.savez(path, x=floats, y=ints)).")
                    if math.prod(shape) * dtype.itemsize > max_bytes:
                        raise DataError(f"{file}: array {key!r} is {shape} of {dtype}, more than the "
                                        f"{max_bytes:,} bytes allowed.")
                with archive.open(member) as fh:
                    arrays[key] = np.lib.format.read_array(fh, allow_pickle=False)
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{file}: not a readable .npz file ({exc}).") from None
    return arrays
