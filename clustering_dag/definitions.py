"""The Dagster code location: every asset, resource, job and schedule of ``clustering_dag.defs``.

Importing this loads Dagster and the project's light modules only; TensorFlow, scikit-learn,
matplotlib, pandas and pyarrow load inside the steps that use them.
"""

from dagster import Definitions, in_process_executor, map_asset_specs

from clustering_dag.defs.assets.clustering import cluster_assets
from clustering_dag.defs.assets.datasets import noisy_test_set, raw_dataset
from clustering_dag.defs.assets.figures import figure_assets
from clustering_dag.defs.assets.manifold import manifold_assets
from clustering_dag.defs.assets.seeds import seed_assets
from clustering_dag.defs.assets.vae import original_representation, vae_assets
from clustering_dag.defs.io_managers import KerasWeightsIOManagerFactory, ParquetIOManagerFactory
from clustering_dag.defs.jobs import follow_upstream, jobs, schedules
from clustering_dag.defs.resources import Accelerator, DatasetSource
from clustering_dag.defs.storage import AssetStorage

all_assets = map_asset_specs(follow_upstream, [
    raw_dataset, noisy_test_set, original_representation, *vae_assets, *manifold_assets, *cluster_assets,
    *seed_assets, *figure_assets])

# One storage resource, configured at launch, that the IO managers depend on (not copies of it):
# `resources.asset_storage.config.base_path` in run config moves the whole cache at once.
asset_storage = AssetStorage.configure_at_launch()

resources = {
    "dataset_source": DatasetSource(),
    "accelerator": Accelerator(),
    "asset_storage": asset_storage,
    "parquet_io_manager": ParquetIOManagerFactory(storage=asset_storage),
    "model_io_manager": KerasWeightsIOManagerFactory(storage=asset_storage),
}

defs = Definitions(
    assets=all_assets,
    resources=resources,
    jobs=jobs,
    schedules=schedules,
    # One process per run: the numeric libraries are imported once, not once per step.
    executor=in_process_executor,
)
