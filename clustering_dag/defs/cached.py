"""How every asset here is declared: :func:`cached_asset`, a plain Dagster asset (or one per
training variant, from the same function) whose value is reused when nothing that makes it changed.

The reuse rule, in this one place. A value's *cache key* is a hash of its asset's code version
(derived from the source it runs, :mod:`clustering_dag.defs.versioning`), its partition, its config
and the cache keys of its inputs (what their stored files say made them); the key is the
materialization's Dagster data version, so the UI and the automation see exactly what the cache
sees. When the asset's stored value holds that key, the body does not run: the stored value is
the output (the IO manager does not rewrite it) and the metadata of the materialization that made
it is shown again. Otherwise the body runs, and its value is stored with the key beside it.

An asset body only computes: it returns its value, or ``Output(value, metadata=...)``. Its
parameters are ``context``, ``config``, its inputs (named as the assets they are) and resources.
"""

import functools
import hashlib
import importlib
import inspect
import json
import pkgutil
import warnings
from collections.abc import Callable

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetRecordsFilter,
    BetaWarning,
    ConfigurableResource,
    DataVersion,
    Output,
    PreviewWarning,
    asset,
)

from clustering_dag.core.errors import DataError
from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.defs.versioning import source_version

# The assets every variant shares (the data, and what is computed on the pixels alone); every
# other asset exists once per training variant, under its name: `paper/trained_vae`.
SHARED = frozenset({"raw_dataset", "noisy_test_set", "original_representation", "kmeans_original",
                    "tsne_original"})
IO_MANAGERS = {"parquet": "parquet_io_manager", "model": "model_io_manager", "png": "figure_io_manager"}
_KINDS: dict[str, str] = {}  # each cached asset's storage kind, by name, as its declaration says


def kind_of(name: str) -> str:
    """The kind of file asset ``name`` is stored as (``parquet``, ``model``, ``png``): what its
    :func:`cached_asset` declaration says (the asset modules are imported to read it)."""
    if name not in _KINDS:
        import clustering_dag.defs.assets as package

        with warnings.catch_warnings():  # as the definitions' own loading of these modules does
            warnings.simplefilter("ignore", PreviewWarning)
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{package.__name__}.{module.name}")
    return _KINDS[name]


def asset_key(name: str, variant: str | None = None) -> AssetKey:
    """The key of asset ``name`` as the assets of ``variant`` see it."""
    return AssetKey(name) if variant is None or name in SHARED else AssetKey([variant, name])


def cache_key(context: AssetExecutionContext, config, inputs: list[str | None], extra=None) -> str | None:
    """The key of what this step would make; None when an input has no key (never reused)."""
    if any(k is None for k in inputs):
        return None
    payload = {
        "asset": context.asset_key.to_user_string(),
        "code": context.assets_def.code_versions_by_key[context.asset_key],
        "partition": context.partition_key,
        "config": config.model_dump() if config is not None else None,
        "inputs": inputs,
        "extra": extra,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def cached_asset(*, per_variant: bool = False, group: str = "data", kind: str = "parquet",
                 figures: tuple[str, ...] = (), key_extra: Callable | None = None,
                 depends_on: Callable | None = None, runs: tuple[Callable, ...] = (),
                 partitions_def=dataset_partitions, partition_mapping=None, **asset_args):
    """Declare the decorated function as an asset partitioned by dataset, cached as above.

    ``per_variant``: one asset per training variant (``<variant>/<name>``, group ``<group>_<variant>``;
    the body reads its variant from ``context.asset_key``), else one shared asset. ``kind``:
    ``parquet``, ``model`` or ``png`` (a figure asset returning ``{figure name: Figure}``, whose
    names ``figures`` lists). ``key_extra(context, **params)``: what else the value depends on (a
    source file's fingerprint). ``depends_on(context)``: the inputs the value is made from, when
    not all of them (the default). ``runs``: resource methods the body calls, for its code version.
    ``partitions_def``: by dataset unless given, its inputs read through ``partition_mapping``
    (a batch of a dataset reads the dataset's models). The rest goes to :func:`dagster.asset`.
    """
    def wrap(fn: Callable):
        signature = inspect.signature(fn)
        inputs = [name for name, p in signature.parameters.items()
                  if name not in ("context", "config") and not _is_resource(p.annotation)]
        takes_storage = "asset_storage" in signature.parameters
        parameters = list(signature.parameters.values())
        if not takes_storage:
            parameters.append(inspect.Parameter("asset_storage", inspect.Parameter.KEYWORD_ONLY,
                                                annotation=AssetStorage))
        version = source_version(fn, runs)
        _KINDS[fn.__name__] = kind

        def build(variant: str | None):
            @functools.wraps(fn)
            def compute(context: AssetExecutionContext, **params):
                storage = params["asset_storage"] if takes_storage else params.pop("asset_storage")
                used = depends_on(context) if depends_on else inputs
                upstream = [storage.stored_key(context.asset_key_for_input(n),
                                               context.asset_partition_key_for_input(n)) for n in used]
                extra = key_extra(context, **params) if key_extra else None
                key = cache_key(context, params.get("config"), upstream, extra)
                stored = _stored(context, storage, key, kind, figures)
                if stored is not None:
                    return _output(stored, key, {**_previous_metadata(context, key), "reused": True})
                result = fn(context, **params)
                if not isinstance(result, Output):
                    result = Output(result)
                return _output(result.value, key, {**result.metadata, "reused": False})

            compute.__signature__ = signature.replace(parameters=parameters)
            return asset(
                key=asset_key(fn.__name__, variant),
                ins={name: AssetIn(asset_key(name, variant), partition_mapping=partition_mapping)
                     for name in inputs},
                partitions_def=partitions_def,
                io_manager_key=IO_MANAGERS[kind],
                group_name=f"{group}_{variant}" if variant else group,
                code_version=version,
                **asset_args,
            )(compute)

        return [build(v) for v in VARIANTS] if per_variant else build(None)

    return wrap


def variant_of(context: AssetExecutionContext) -> str:
    """The training variant an asset belongs to (``paper`` for ``paper/trained_vae``)."""
    return context.asset_key.path[0]


def _is_resource(annotation) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, ConfigurableResource)


def _stored(context: AssetExecutionContext, storage: AssetStorage, key: str | None, kind: str,
            figures: tuple[str, ...]):
    """The stored value of this asset if it was made with ``key``, else None."""
    partition = context.partition_key
    if key is None or not storage.holds(context.asset_key, partition, kind, key, figures):
        return None
    try:
        value = storage.load(context.asset_key, partition, kind, figures, expect_key=key)
    except DataError as exc:
        context.log.warning(f"the cached value could not be read ({exc}); recomputing")
        return None
    context.log.info(f"{context.asset_key.to_user_string()}: code, config and inputs unchanged; "
                     f"reusing {storage.path(context.asset_key, partition, kind, *figures[:1])}")
    return value


def _previous_metadata(context: AssetExecutionContext, key: str) -> dict:
    """The metadata of the materialization that made the value of ``key``, when this instance
    recorded it: a re-run that reuses a value shows what the run that made it showed."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[context.partition_key]),
        limit=1).records
    if records and records[0].asset_materialization.tags.get("dagster/data_version") == key:
        return dict(records[0].asset_materialization.metadata)
    return {}


def _output(value, key: str | None, metadata: dict) -> Output:
    """The step's output with its cache key as Dagster's data version: a re-run that reused the
    cache reports the same version, so nothing below it becomes unsynced."""
    with warnings.catch_warnings():  # `Output(data_version=...)` is Dagster's way; marked beta
        warnings.simplefilter("ignore", BetaWarning)
        return Output(value, data_version=DataVersion(key) if key else None,
                      metadata={**metadata, "cache_key": key or ""})
