"""How every asset here is declared: :func:`cached_asset`, a plain Dagster asset (or one per
training variant, from the same function) whose value is reused when nothing that makes it changed.

The reuse rule, in this one place. A value's *cache key* is a hash of its asset's code version
(derived from the source it runs, :mod:`clustering_dag.defs.versioning`), its partition, its config
and the cache keys of its inputs (what their stored files say made them); the key is the
materialization's Dagster data version, so the UI and the automation see exactly what the cache
sees. When the asset's current value holds that key, or a value of that key is kept
(:mod:`clustering_dag.defs.keep`: every value is kept by its key), the body does not run: that
value becomes the current one and the output (the IO manager does not rewrite it), and the metadata
of the materialization that made it is shown again. Otherwise (or when the run sets
``asset_storage.force``) the body runs, and its value is stored with the key beside it.

An asset body only computes: it returns its value, or ``Output(value, metadata=...)``. Its
parameters are ``context``, ``config``, its inputs (named as the assets they are) and resources.
"""

import functools
import hashlib
import inspect
import json
import warnings
from collections.abc import Callable

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    BetaWarning,
    ConfigurableResource,
    DataVersion,
    MetadataValue,
    Output,
    PreviewWarning,
    asset,
    asset_check,
)

from clustering_dag.core.errors import DataError
from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.defs.versioning import source_version

IO_MANAGERS = {"parquet": "parquet_io_manager", "model": "model_io_manager", "png": "figure_io_manager"}
# The assets declared without `per_variant`, by name, as their declarations are read: one asset
# that every variant reads. What a variant's asset reads before that asset is declared is fixed
# up when the code location is put together (:func:`resolve_shared`).
_SHARED: set[str] = set()


def asset_key(name: str, variant: str | None = None) -> AssetKey:
    """The key of asset ``name`` as the assets of ``variant`` see it (shared assets have none);
    ``<variant>__<name>`` names one variant's asset from anywhere (``dae__seed_spread``)."""
    if "__" in name:
        return AssetKey(name.split("__"))
    return AssetKey(name) if variant is None or name in _SHARED else AssetKey([variant, name])


def resolve_shared(assets: list, checks: list) -> tuple[list, list]:
    """The assets and checks of a code location with every read of ``<variant>/<name>`` that is a
    shared asset's (``<name>``) pointed at it; one error for a read that no asset makes."""
    defined = {key for a in assets for key in (a.keys if isinstance(a, AssetsDefinition) else [a.key])}
    computed = [a for a in (*assets, *checks) if isinstance(a, AssetsDefinition)]
    fix = {}
    for definition in computed:
        for key in definition.keys_by_input_name.values():
            if key in defined:
                continue
            if len(key.path) == 2 and AssetKey(key.path[-1]) in defined:
                fix[key] = AssetKey(key.path[-1])
            else:
                raise DataError(f"{definition.node_def.name} reads {key.to_user_string()}, which no "
                                "asset of this code location makes: declare it, or fix the name.")
    if not fix:
        return assets, checks

    def fixed(a):
        reads = set(a.keys_by_input_name.values()) if isinstance(a, AssetsDefinition) else set()
        return a.with_attributes(asset_key_replacements=fix) if reads & set(fix) else a

    return [fixed(a) for a in assets], [fixed(c) for c in checks]


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
                 partitions_def=dataset_partitions, partition_mapping=None, name: str | None = None,
                 reads: tuple[str, ...] = (), **asset_args):
    """Declare the decorated function as an asset partitioned by dataset, cached as above.

    ``per_variant``: one asset per training variant (``<variant>/<name>``, group ``<group>_<variant>``;
    the body reads its variant from ``context.asset_key``), else one shared asset. ``kind``:
    ``parquet``, ``model`` or ``png`` (a figure asset returning ``{figure name: Figure}``, whose
    names ``figures`` lists). ``key_extra(context, **params)``: what else the value depends on (a
    source file's fingerprint). ``depends_on(context)``: the inputs the value is made from, when
    not all of them (the default). ``runs``: functions the body calls that its source does not name
(a resource's methods, a registry's functions), for its code version.
    ``partitions_def``: by dataset unless given, its inputs read through ``partition_mapping``
    (a batch of a dataset reads the dataset's models). ``name``: the asset's name when not the
    function's (an asset made for each entry of a registry). ``reads``: inputs the function takes
    as ``**inputs`` (names from a registry) besides its named ones. The rest goes to
    :func:`dagster.asset`.
    """
    def wrap(fn: Callable):
        signature, asset_name = inspect.signature(fn), name or fn.__name__
        if clash := set(reads) & set(signature.parameters):
            raise TypeError(f"{asset_name}: {sorted(clash)} are read both as named parameters and as "
                            "**inputs; name each once")
        parameters = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
        parameters += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                       for n in dict.fromkeys(reads) if n not in signature.parameters]
        inputs = [p.name for p in parameters
                  if p.name not in ("context", "config") and not _is_resource(p.annotation)]
        takes_storage = "asset_storage" in signature.parameters
        if not takes_storage:
            parameters.append(inspect.Parameter("asset_storage", inspect.Parameter.KEYWORD_ONLY,
                                                annotation=AssetStorage))
        fn.__runs__ = tuple(runs)  # what its code version counts besides its own source
        version = source_version(fn, runs)
        if not per_variant:
            _SHARED.add(asset_name)

        def build(variant: str | None):
            @functools.wraps(fn)
            def compute(context: AssetExecutionContext, **params):
                storage = params["asset_storage"] if takes_storage else params.pop("asset_storage")
                used = depends_on(context) if depends_on else inputs
                upstream = [storage.stored_key(context.asset_key_for_input(n),
                                               context.asset_partition_key_for_input(n)) for n in used]
                extra = key_extra(context, **params) if key_extra else None
                key = cache_key(context, params.get("config"), upstream, extra)
                made_from = dict(zip(used, upstream))
                stored = _stored(context, storage, key, kind, figures, made_from)
                if stored is not None:
                    return _output(stored, key, made_from,
                                   {**_previous_metadata(context, key), "reused": True})
                result = fn(context, **params)
                if not isinstance(result, Output):
                    result = Output(result)
                return _output(result.value, key, made_from, {**result.metadata, "reused": False})

            compute.__signature__ = signature.replace(parameters=sorted(parameters, key=lambda p: p.kind))
            return asset(
                key=asset_key(asset_name, variant),
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


def check_per_variant(fn: Callable, *, asset: str, reads: tuple[str, ...] = (), name: str | None = None,
                      partitions_def=dataset_partitions, **check_args) -> list:
    """The check ``fn`` of asset ``asset``, once per training variant (``fn``'s first parameter is
    the asset's value, ``reads`` are the other assets it reads, by name, or as ``**reads``; its
    docstring is its description). Partitioned checks are a Dagster preview: one verdict per
    partition."""
    signature = inspect.signature(fn)
    if any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
        fn.__signature__ = signature.replace(parameters=[
            *(p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD),
            *(inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in reads)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return [asset_check(asset=asset_key(asset, variant), name=name or fn.__name__.strip("_"),
                            partitions_def=partitions_def, description=fn.__doc__,
                            additional_ins={n: AssetIn(asset_key(n, variant)) for n in reads},
                            **check_args)(fn)
                for variant in VARIANTS]


def flat(declared) -> list:
    """What :func:`cached_asset` declared, as a list (one asset, or one per variant)."""
    return declared if isinstance(declared, list) else [declared]


def variant_of(context: AssetExecutionContext) -> str:
    """The training variant an asset belongs to (``paper`` for ``paper/trained_vae``)."""
    return context.asset_key.path[0]


def _is_resource(annotation) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, ConfigurableResource)


def _stored(context: AssetExecutionContext, storage: AssetStorage, key: str | None, kind: str,
            figures: tuple[str, ...], made_from: dict):
    """The value of ``key``, made current again if it was kept, or None: never made, unreadable,
    or the run forces a recompute (``asset_storage.force``)."""
    partition, name = context.partition_key, context.asset_key.to_user_string()
    if key is not None and storage.force:
        context.log.info(f"{name}: recomputing (asset_storage.force is set)")
        return None
    if key is None or not storage.reuse(context.asset_key, partition, kind, key, figures,
                                        {"made_from": made_from}, context.log.warning):
        return None
    try:
        value = storage.load(context.asset_key, partition, kind, figures, expect_key=key)
    except DataError as exc:
        context.log.warning(f"the cached value could not be read ({exc}); recomputing")
        return None
    context.log.info(f"{name}: code, config and inputs seen before; reusing the value of cache key "
                     f"{key} ({storage.version(context.asset_key, partition, kind, key, *figures[:1])})")
    return value


# How far back a reused value's materialization is looked for (the runs of this partition), in
# pages of PAGE records.
PREVIOUS_RUNS, PAGE = 200, 20


def _previous_metadata(context: AssetExecutionContext, key: str) -> dict:
    """The metadata of the materialization that made the value of ``key``, when this instance
    recorded it: a re-run that reuses a value shows what the run that made it showed."""
    cursor, seen = None, 0
    while seen < PREVIOUS_RUNS:
        page = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[context.partition_key]),
            limit=PAGE, cursor=cursor)
        for record in page.records:
            made = record.asset_materialization
            if made.tags.get("dagster/data_version") == key:
                return dict(made.metadata)
        seen += len(page.records)
        if not page.has_more:
            break
        cursor = page.cursor
    return {}


def _output(value, key: str | None, made_from: dict, metadata: dict) -> Output:
    """The step's output with its cache key as Dagster's data version (a re-run that reused the
    cache reports the same version, so nothing below it becomes unsynced) and the cache key of
    each input it was made from (``made_from``, kept in the value's record too)."""
    with warnings.catch_warnings():  # `Output(data_version=...)` is Dagster's way; marked beta
        warnings.simplefilter("ignore", BetaWarning)
        return Output(value, data_version=DataVersion(key) if key else None,
                      metadata={**metadata, "cache_key": key or "",
                                "made_from": MetadataValue.json(made_from)})
