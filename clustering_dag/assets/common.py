"""Helpers shared by the asset modules: cache keys for incremental re-runs, figure output."""

import base64
import hashlib
import json
from collections.abc import Callable

from dagster import AssetExecutionContext, AssetKey, MetadataValue, asset

from clustering_dag.core.errors import DataError
from clustering_dag.core.figures import to_png
from clustering_dag.partitions import dataset_partitions
from clustering_dag.storage import AssetStorage, atomic_write, key_of, png_with_key, with_key


def parquet_asset(**kwargs):
    """``@asset`` partitioned by dataset and stored as parquet, the shape of most assets here."""
    return asset(**{"partitions_def": dataset_partitions, "io_manager_key": "parquet_io_manager",
                    "code_version": "1", "kinds": {"parquet"}, **kwargs})


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


def png_markdown(png: bytes, alt: str = "figure") -> MetadataValue:
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def figures_output(context: AssetExecutionContext, storage: AssetStorage, folder: list[str],
                   renders: dict[str, Callable], *, config=None, inputs=()) -> dict:
    """Render each figure (name -> callable returning a matplotlib Figure) to
    ``<cache>/figures/<folder...>/<name>/<partition>.png`` unless the stored PNG was made from the
    same inputs; return metadata embedding every figure inline."""
    metadata, reused = {}, True
    for i, (name, render) in enumerate(renders.items()):
        key = fingerprint(context, config=config, inputs=inputs, extra=name)
        path = storage.root().joinpath("figures", *folder, name, f"{context.partition_key}.png")
        if key is not None and storage.stored_key(path, "png") == key:
            with path.open("rb") as fh:
                png = fh.read()
        else:
            reused = False
            png = to_png(render())
            png = png_with_key(png, key) if key else png

            def write(tmp: str, data: bytes = png) -> None:
                with open(tmp, "wb") as fh:
                    fh.write(data)

            atomic_write(path, write)
        prefix = "" if i == 0 else f"{name}_"
        metadata.update({f"{prefix}path": MetadataValue.path(str(path)),
                         f"{prefix}figure": png_markdown(png, name)})
    metadata["reused"] = reused
    return metadata
