"""The Dagster code location: assets, resources, jobs, the weekly schedule and automation."""

from dagster import (
    AssetSelection,
    AutomationCondition,
    DefaultScheduleStatus,
    Definitions,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    in_process_executor,
    map_asset_specs,
    multiprocess_executor,
    schedule,
)

from clustering_dag.assets.clustering import cluster_assets
from clustering_dag.assets.datasets import noisy_test_set, raw_dataset
from clustering_dag.assets.figures import figure_assets
from clustering_dag.assets.vae import original_representation, vae_assets
from clustering_dag.io_managers import KerasWeightsIOManagerFactory, ParquetIOManagerFactory
from clustering_dag.partitions import DATASET_KEYS, USER_DATASETS, dataset_partitions
from clustering_dag.profiles import PROFILES, quick
from clustering_dag.resources import Accelerator, DatasetSource
from clustering_dag.storage import AssetStorage


def _follow_upstream(spec):
    """Declarative automation: when an upstream asset is re-materialized, what depends on it
    follows (once the default automation sensor is switched on in the UI). Roots stay manual,
    and so does training, which is the one step worth deciding on by hand."""
    if not spec.deps or spec.key.path[-1] == "trained_vae":
        return spec
    return spec.replace_attributes(automation_condition=AutomationCondition.eager())


all_assets = map_asset_specs(_follow_upstream, [
    raw_dataset, noisy_test_set, original_representation, *vae_assets, *cluster_assets, *figure_assets])

asset_storage = AssetStorage()

resources = {
    "dataset_source": DatasetSource(),
    "accelerator": Accelerator(),
    "asset_storage": asset_storage,
    "parquet_io_manager": ParquetIOManagerFactory(storage=asset_storage),
    "model_io_manager": KerasWeightsIOManagerFactory(storage=asset_storage),
}

# The run-config profiles as jobs, so the launchpad offers them as they are.
paper_run = define_asset_job(
    "paper_run", selection=AssetSelection.all(), partitions_def=dataset_partitions,
    description="The whole graph at the paper's settings (profile 'full').",
)
quick_run = define_asset_job(
    "quick_run", selection=AssetSelection.all(), partitions_def=dataset_partitions, config=quick(),
    description="The whole graph on 2,000 training images for 2 epochs (profile 'quick'): ~40 s.",
)
parallel_quick_run = define_asset_job(
    "parallel_quick_run", selection=AssetSelection.all(), partitions_def=dataset_partitions,
    config=quick(), executor_def=multiprocess_executor.configured({"max_concurrent": 2}),
    description="The quick profile on Dagster's multiprocess executor: independent steps in parallel.",
)


@schedule(job=paper_run, cron_schedule="0 3 * * 1", execution_timezone="UTC",
          default_status=DefaultScheduleStatus.STOPPED)
def weekly_paper_run(context: ScheduleEvaluationContext):
    """Every Monday 03:00 UTC: the full graph for every dataset, at the paper's settings or at
    the profile a user's dataset names in the registry. Off until switched on in the UI.
    Unchanged assets are reused from the cache, so a week with no change costs seconds."""
    for dataset in DATASET_KEYS:
        spec = USER_DATASETS.get(dataset)
        yield RunRequest(run_key=f"{context.scheduled_execution_time:%Y-%m-%d}-{dataset}",
                         partition_key=dataset,
                         run_config=PROFILES[spec.profile]() if spec and spec.profile else {})


defs = Definitions(
    assets=all_assets,
    resources=resources,
    jobs=[paper_run, quick_run, parallel_quick_run],
    schedules=[weekly_paper_run],
    # One process per run: TensorFlow is imported once, not once per step.
    executor=in_process_executor,
)
