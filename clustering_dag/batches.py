"""The second code location: scoring files of new rows with the models a dataset's run stored.

Drop a file into ``data/inbox/<dataset>/`` (``$CLUSTERING_DAG_INBOX`` moves the inbox): IDX or
``.npz`` images of the dataset's shape, or a CSV/parquet table with its feature columns.
``inbox_sensor`` adds each new or changed file as a partition of ``batch_files`` and asks for
``<variant>/scored_batch`` of it: every row's cluster in each space whose model is stored, with its
distance to the centre (or the refined classifier's probability), and the ``batch_drift`` check
that warns when the rows lie farther from the centroids than the test split's did.

A batch reads its dataset's models through the dataset dimension of its partition
(``mnist|digits.npz`` reads ``mnist``'s), so re-training a model makes its batches unsynced, and
scoring never trains or fits anything. It is its own code location because a Dagster run takes
one partitions definition: ``dagster asset materialize --select '*'`` of the main location stays
what it was. Both load from ``workspace.yaml``; the models are declared here as the main
location's assets.
"""

import json
import warnings
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetSelection,
    AssetSpec,
    BetaWarning,
    DefaultSensorStatus,
    Definitions,
    DynamicPartitionsDefinition,
    MetadataValue,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from clustering_dag import definitions as main
from clustering_dag.core.digests import file_sha256
from clustering_dag.core.errors import DataError
from clustering_dag.core.paths import confined, is_plain_name, path_in
from clustering_dag.core.spaces import scored_with
from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.assets.common import image_metadata, table_metadata
from clustering_dag.defs.assets.scoring import SCORED_SPACES, SCORED_WITH
from clustering_dag.defs.cached import asset_key, cached_asset, check_per_variant, resolve_shared
from clustering_dag.defs.partitions import DATASET_KEYS, dataset_partitions
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.defs.versioning import unversioned
from clustering_dag.settings import inbox_root

batch_files = DynamicPartitionsDefinition(name="batch_files")
batch_partitions = MultiPartitionsDefinition({"dataset": dataset_partitions, "file": batch_files})
with warnings.catch_warnings():  # Dagster's way to map a batch to its dataset; marked beta
    warnings.simplefilter("ignore", BetaWarning)
    BY_DATASET = MultiToSingleDimensionPartitionMapping(partition_dimension_name="dataset")
SUFFIXES = (".npz", ".gz", ".idx", "-ubyte", ".csv", ".parquet", ".pq")



def upstream_specs() -> list[AssetSpec]:
    """What the main location makes and a batch reads (``SCORED_WITH``), declared here as its
    declarations say: key, partitions, IO manager."""
    return [AssetSpec(key, partitions_def=dataset_partitions)
            .with_io_manager_key(definition.get_io_manager_key_for_asset_key(key))
            for definition in main.defs.assets for key in definition.keys if key.path[-1] in SCORED_WITH]


upstream = upstream_specs()


def batch_of(context) -> tuple[str, str]:
    keys = context.partition_key.keys_by_dimension
    return keys["dataset"], keys["file"]


def batch_path(dataset: str, name: str) -> Path:
    """The file a batch partition names: ``<inbox>/<dataset>/<name>``, both plain names, each
    inside its folder once links are resolved; else one error, before anything is read."""
    return path_in(path_in(inbox_root(), dataset, "batch dataset"), name, "batch file")


def batch_file_hash(context: AssetExecutionContext, **_) -> str:
    """The batch file's content (SHA-256): what makes a changed file a new value. Computed as the
    step's cache key is made, before anything else: a partition whose name is refused fails here."""
    path = batch_path(*batch_of(context))
    return file_sha256(path) if path.is_file() else "missing"


def scored_batch_asset(spaces):
    @cached_asset(per_variant=True, group="scoring", partitions_def=batch_partitions,
                  partition_mapping=BY_DATASET, key_extra=batch_file_hash,
                  reads=("raw_dataset", *scored_with(spaces), "test_scores"),
                  runs=tuple(s.project for s in spaces))
    def scored_batch(context: AssetExecutionContext, asset_storage: AssetStorage, **values):
        """Every row of a batch file from the dataset's inbox, scored by the dataset's stored
        models: its cluster and distance to the centre in every space that can score new rows (a
        classifier: its cluster and probability), and whether it lies farther out than 95 % of the
        test split's rows (``*_far``, ``*_unsure``)."""
        from clustering_dag.core.scoring import BatchLayout, score_file

        dataset, name = batch_of(context)
        path = batch_path(dataset, name)
        if not path.is_file():
            raise DataError(f"no batch file {path}: partition {context.partition_key} names a file that "
                            f"is not in {dataset}'s inbox ({path.parent}).")
        layout = BatchLayout.of(values["raw_dataset"])  # values: what the spaces score with, too
        batch, frame = score_file(path, layout, spaces, values, values["test_scores"])
        context.log.info(f"{path}: {len(frame):,} rows scored")
        k = max([len(values[s.clustering]) for s in spaces if s.clustering]  # a classifier's: its classes
                or [int(frame.filter(like="_cluster").to_numpy().max()) + 1])
        return Output(frame, metadata=_batch_summary(context, frame, batch, layout, k, asset_storage))

    return scored_batch


scored_batch = scored_batch_asset(SCORED_SPACES)


@unversioned
def _batch_summary(context, frame, batch, layout, k: int, storage) -> dict:
    import numpy as np

    from clustering_dag.core.scoring import cluster_counts, drift_shares

    dataset, _ = batch_of(context)
    by = next(c for c in reversed(frame.columns) if c.endswith("_cluster"))  # the last space's
    per_cluster = [batch.x[np.flatnonzero(frame[by].to_numpy() == c)[:8]] for c in range(k)]
    shown = [(c, rows) for c, rows in enumerate(per_cluster) if len(rows)]
    return {
        "rows": len(frame), "source": MetadataValue.path(batch.source),
        "cluster_counts": table_metadata(cluster_counts(frame, k)),
        "drift_shares": MetadataValue.json({s: round(v, 4) for s, v in drift_shares(frame).items()}),
        # The data versions (cache keys) of the models that scored it, as the lineage records them.
        "model_versions": MetadataValue.json({
            name: storage.stored_key(context.asset_key_for_input(name), dataset) for name in SCORED_WITH}),
        "examples": image_metadata([rows for _, rows in shown],
                                   [f"{by.removesuffix('_cluster')} cluster {c}" for c, _ in shown],
                                   layout.image_shape),
    }


def _batch_drift(scored_batch) -> AssetCheckResult:
    """The batch's rows lie no farther from their centroids, and are classified no less surely, than
    the test split's: it warns, in words and shares, when many more rows than the test split's 5 %
    lie beyond 95 % of the test split's distances."""
    from clustering_dag.core.scoring import drift_shares, drift_verdict, unsure_spaces

    shares = drift_shares(scored_batch)
    passed, text = drift_verdict(shares, unsure_spaces(scored_batch))
    return AssetCheckResult(
        passed=passed, severity=AssetCheckSeverity.WARN, description=text,
        metadata={f"{s}_share": MetadataValue.float(round(v, 4)) for s, v in shares.items()})


batch_drift = check_per_variant(_batch_drift, asset="scored_batch", partitions_def=batch_partitions)
SCORED = [asset_key("scored_batch", v) for v in VARIANTS]


def scan_inbox(root) -> tuple[dict[str, list[int]], list[str]]:
    """The batch files under ``root``: ``{"<dataset>/<file>": [size, mtime_ns]}``, and why the
    other entries were skipped (a name that is not plain, a link leading out of the inbox)."""
    found, skipped = {}, []
    if not root.is_dir():
        return found, skipped
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        if folder.name not in DATASET_KEYS:
            skipped.append(f"{folder}: no dataset {folder.name!r} (known: {', '.join(DATASET_KEYS)})")
            continue
        for file in sorted(folder.iterdir()):
            if file.name.startswith(".") or not file.is_file():
                continue  # hidden: e.g. a file still being copied under a temporary name
            if not file.name.lower().endswith(SUFFIXES) or not is_plain_name(file.name):
                skipped.append(f"{file}: not a batch file name (letters, digits, '.', '_', '-'; "
                               f"ending {', '.join(SUFFIXES)})")
                continue
            try:
                confined(root, file, "batch file")
            except DataError as exc:
                skipped.append(str(exc))
                continue
            stat = file.stat()
            found[f"{folder.name}/{file.name}"] = [stat.st_size, stat.st_mtime_ns]
    return found, skipped


@sensor(asset_selection=AssetSelection.assets(*SCORED), minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.STOPPED)
def inbox_sensor(context: SensorEvaluationContext):
    """Every new or changed file in the inbox (``data/inbox/<dataset>/``) becomes a partition of
    ``batch_files`` and a run of every variant's ``scored_batch`` for it. Changed: another size or
    modification time; a file changed back to content already scored reuses the cache."""
    seen = json.loads(context.cursor) if context.cursor else {}
    found, skipped = scan_inbox(inbox_root())
    for reason in skipped:
        context.log.warning(f"skipped {reason}")
    changed = {path: stamp for path, stamp in found.items() if seen.get(path) != stamp}
    known = set(context.instance.get_dynamic_partitions(batch_files.name))
    new_files = sorted({path.split("/", 1)[1] for path in changed} - known)
    requests = []
    for path, (size, mtime) in sorted(changed.items()):
        dataset, name = path.split("/", 1)
        requests.append(RunRequest(run_key=f"{path}:{size}:{mtime}",
                                   partition_key=MultiPartitionKey({"dataset": dataset, "file": name})))
    return SensorResult(
        run_requests=requests, cursor=json.dumps(found, sort_keys=True),
        dynamic_partitions_requests=[batch_files.build_add_request(new_files)] if new_files else [])


_assets, _checks = resolve_shared([*upstream, *scored_batch], batch_drift)
defs = Definitions(assets=_assets, asset_checks=_checks, sensors=[inbox_sensor],
                   resources=main.defs.resources, executor=main.defs.executor)
all_assets = [*defs.assets, *defs.asset_checks]
resources = dict(defs.resources)
