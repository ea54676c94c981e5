"""Helpers shared by the asset modules: cache keys for incremental re-runs, which are also the
materializations' Dagster data versions, and figure output.

Nothing heavy is imported here: the numeric libraries load inside the steps that use them.
"""

import base64
import hashlib
import json
import warnings
from collections.abc import Callable

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BetaWarning,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    Output,
)

from clustering_dag.core.errors import DataError
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.storage import AssetStorage, atomic_write, key_of, png_with_key, with_key
from clustering_dag.defs.versioning import asset_from_source, unversioned


def parquet_asset(**kwargs):
    """``@asset`` partitioned by dataset, stored as parquet, its code version read from its source:
    the shape of most assets here."""
    return asset_from_source(**{"partitions_def": dataset_partitions, "io_manager_key": "parquet_io_manager",
                                "kinds": {"parquet"}, **kwargs})


def fingerprint(context: AssetExecutionContext, *, config=None, inputs=(), extra=None,
                output: str | None = None) -> str | None:
    """The cache key of what this step would produce: a hash of its code versions, partition,
    config and the cache keys of its inputs. None when an input has no key (then never reused)."""
    input_keys = [key_of(v) for v in inputs]
    if any(k is None for k in input_keys):
        return None
    payload = {
        "op": context.op_def.name,
        "output": output,
        "code": {k.to_user_string(): v for k, v in context.assets_def.code_versions_by_key.items()},
        "partition": context.partition_key,
        "config": config.model_dump() if config is not None else None,
        "inputs": input_keys,
        "extra": extra,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def reuse(context: AssetExecutionContext, storage: AssetStorage, key: str | None, kind: str,
          asset_key: AssetKey | None = None):
    """The stored value of this asset if it was made with ``key``, else None."""
    if key is None:
        return None
    asset_key = asset_key or context.asset_key
    path = storage.path(asset_key, context.partition_key, kind)
    if storage.stored_key(path, kind) != key:
        return None
    try:
        value = storage.load(path, kind)
    except DataError as exc:
        context.log.warning(f"cached {path} could not be read ({exc}); recomputing")
        return None
    context.log.info(f"{asset_key.to_user_string()}: code, config and inputs unchanged; reusing {path}")
    return value


def compute_or_reuse(context: AssetExecutionContext, storage: AssetStorage, compute: Callable, *,
                     kind: str = "parquet", config=None, inputs=(), extra=None):
    """``(value, reused)``: the stored value when its key matches, else ``compute()``; either way
    the value carries the key, so the IO manager writes it only when it changed."""
    key = fingerprint(context, config=config, inputs=inputs, extra=extra)
    value = reuse(context, storage, key, kind)
    reused = value is not None
    if not reused:
        value = compute()
    return with_key(value, key), reused


def data_version(key: str | None) -> DataVersion | None:
    return DataVersion(key) if key else None


def keyed_output(value, reused: bool, output_name: str = "result", **metadata) -> Output:
    """The step's output, with its cache key as Dagster's data version: a re-run that reused the
    cache reports the same version, so nothing below it becomes unsynced."""
    with warnings.catch_warnings():  # `Output(data_version=...)` is Dagster's way; marked beta
        warnings.simplefilter("ignore", BetaWarning)
        return Output(value, output_name, data_version=data_version(key_of(value)),
                      metadata={"reused": reused, **metadata})


@unversioned
def table_metadata(frame, digits: int = 3) -> MetadataValue:
    """A DataFrame as Dagster's table metadata: typed columns, floats rounded, so the UI shows a
    readable table (markdown tables get clipped there)."""
    import numpy as np
    from dagster import TableColumn, TableRecord, TableSchema
    from pandas.api import types as pdt

    def kind(dtype) -> str:
        return ("bool" if pdt.is_bool_dtype(dtype) else "int" if pdt.is_integer_dtype(dtype)
                else "float" if pdt.is_float_dtype(dtype) else "string")

    types = {c: kind(frame[c].dtype) for c in frame.columns}

    def cell(value, column):
        if types[column] == "float":
            return None if not np.isfinite(value) else round(float(value), digits)
        return {"int": int, "bool": bool}.get(types[column], str)(value)

    return MetadataValue.table(
        records=[TableRecord({c: cell(v, c) for c, v in row.items()}) for row in frame.to_dict("records")],
        schema=TableSchema(columns=[TableColumn(c, t) for c, t in types.items()]))


@unversioned
def png_markdown(png: bytes, alt: str = "figure") -> MetadataValue:
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def figures_output(context: AssetExecutionContext, storage: AssetStorage, folder: list[str],
                   renders: dict[str, Callable], *, config=None, inputs=()) -> MaterializeResult:
    """Render each figure (name -> callable returning a matplotlib Figure) to
    ``<cache>/figures/<folder...>/<name>/<partition>.png`` unless every stored PNG was made with
    this step's cache key; the key is the materialization's data version."""
    key = fingerprint(context, config=config, inputs=inputs)
    paths = {name: storage.root().joinpath("figures", *folder, name, f"{context.partition_key}.png")
             for name in renders}
    reused = key is not None and all(storage.stored_key(p, "png") == key for p in paths.values())
    metadata = {}
    for i, (name, render) in enumerate(renders.items()):
        path = paths[name]
        if reused:
            with path.open("rb") as fh:
                png = fh.read()
        else:
            from clustering_dag.core.figures import to_png

            png = to_png(render())
            png = png_with_key(png, key) if key else png

            def write(tmp: str, data: bytes = png) -> None:
                with open(tmp, "wb") as fh:
                    fh.write(data)

            atomic_write(path, write)
        prefix = "" if i == 0 else f"{name}_"
        metadata.update({f"{prefix}path": MetadataValue.path(str(path)),
                         f"{prefix}figure": png_markdown(png, name)})
    return MaterializeResult(data_version=data_version(key), metadata={"reused": reused, **metadata})
