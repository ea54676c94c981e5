"""Jobs for the run profiles, the weekly schedule, and the automation condition of the graph."""

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationCondition,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    multiprocess_executor,
    schedule,
)

from clustering_dag.defs.executors import celery_executor
from clustering_dag.defs.partitions import DATASET_KEYS, USER_DATASETS
from clustering_dag.profiles import PROFILES, quick, seeds


def follows_data_changes() -> AutomationCondition:
    """Dagster's ``eager()``, reacting to a dependency's new *data version* rather than to any new
    materialization of it. Data versions are the cache keys, so a re-run that only reused its
    cache (same key) sets nothing in motion below it; a real change does."""
    data_changed = AutomationCondition.any_deps_match(
        AutomationCondition.data_version_changed() | AutomationCondition.will_be_requested()
    ).with_label("any_deps_data_changed")
    return AutomationCondition.eager().replace("any_deps_updated", data_changed).with_label(
        "eager_on_data_change")


def follow_upstream(spec):
    """Declarative automation: when an upstream asset's data changes, what depends on it follows
    (once the default automation sensor is switched on in the UI). Roots stay manual, and so does
    training, which is the one step worth deciding on by hand."""
    if not spec.deps or spec.key.path[-1] in ("trained_vae", "trained_encoder"):
        return spec
    return spec.replace_attributes(automation_condition=follows_data_changes())


# The run-config profiles as jobs, so the launchpad offers them as they are.
paper_run = define_asset_job(
    "paper_run", selection=AssetSelection.all(),
    description="The whole graph at the paper's settings (profile 'full').",
)
seeds_run = define_asset_job(
    "seeds_run", selection=AssetSelection.all(), config=seeds(),
    description="The whole graph at the paper's settings, each variant's chain (VAE, UMAP, clusters) "
                "repeated under two more seeds: mean ± sd in seed_spread (profile 'seeds').",
)
quick_run = define_asset_job(
    "quick_run", selection=AssetSelection.all(), config=quick(),
    description="The whole graph on 10,000 training and 1,000 test images, 10 epochs (profile "
                "'quick'): 2-3 minutes a dataset on 2 CPU cores.",
)
# Step processes fork from a server that has imported the code location once (the default,
# `spawn`, starts a new interpreter and imports everything again for every step).
MULTIPROCESS = {"max_concurrent": 2, "start_method": {"forkserver": {}}}

parallel_quick_run = define_asset_job(
    "parallel_quick_run", selection=AssetSelection.all(),
    config={**quick(), "execution": {"config": MULTIPROCESS}}, executor_def=multiprocess_executor,
    description="The quick profile on Dagster's multiprocess executor (forkserver): independent steps "
                "in parallel.",
)

celery_run = define_asset_job(
    "celery_run", selection=AssetSelection.all(), executor_def=celery_executor,
    description="The whole graph with every step a Celery task: the steps that train (`trained_vae`, "
                "`refined_classifier`, `seed_spread`) on the `vae` queue (GPU workers), the rest on the "
                "default queue. Needs a broker and workers: README, "
                "'Scale-out'. Run config: clustering_dag/deploy/celery.yaml, plus a profile.",
)

celery_smoke_run = define_asset_job(
    "celery_smoke_run", executor_def=celery_executor,
    selection=AssetSelection.assets(AssetKey(["paper", "manifold_representation"])).upstream(),
    description="A Celery set-up checked end to end in a few minutes: the `paper` chain up to the "
                "manifold stage (the dataset, training on the `vae` queue, codes, UMAP), each step "
                "a Celery task. Run config as `celery_run`'s.",
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


jobs = [paper_run, seeds_run, quick_run, parallel_quick_run, celery_run, celery_smoke_run]
schedules = [weekly_paper_run]
