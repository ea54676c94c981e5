"""The Dagster code location: assets, checks, resources, jobs and schedules."""


from dagster import Definitions, in_process_executor

from clustering_dag.assets.clustering import cluster_assets
from clustering_dag.assets.datasets import noisy_test_set, raw_dataset
from clustering_dag.assets.figures import figure_assets
from clustering_dag.assets.vae import original_representation, vae_assets
from clustering_dag.io_managers import KerasWeightsIOManagerFactory, ParquetIOManagerFactory
from clustering_dag.resources import Accelerator, DatasetSource
from clustering_dag.storage import AssetStorage

all_assets = [raw_dataset, noisy_test_set, original_representation, *vae_assets,
              *cluster_assets, *figure_assets]

asset_storage = AssetStorage()

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
    # One process per run: TensorFlow is imported once, not once per step.
    executor=in_process_executor,
)
