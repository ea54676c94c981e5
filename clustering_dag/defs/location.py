"""What every asset of the code location shares: the resources and the executor."""

from dagster import Definitions, in_process_executor

from clustering_dag.defs.io_managers import (
    FigureIOManagerFactory,
    KerasWeightsIOManagerFactory,
    ParquetIOManagerFactory,
)
from clustering_dag.defs.resources import Accelerator, DatasetSource
from clustering_dag.defs.storage import AssetStorage

# One storage resource, configured at launch, that the IO managers depend on (not copies of it):
# `resources.asset_storage.config.base_path` in run config moves the whole cache at once.
asset_storage = AssetStorage.configure_at_launch()

defs = Definitions(
    resources={
        "dataset_source": DatasetSource(),
        "accelerator": Accelerator(),
        "asset_storage": asset_storage,
        "parquet_io_manager": ParquetIOManagerFactory(storage=asset_storage),
        "model_io_manager": KerasWeightsIOManagerFactory(storage=asset_storage),
        "figure_io_manager": FigureIOManagerFactory(storage=asset_storage),
    },
    # One process per run: the numeric libraries are imported once, not once per step.
    executor=in_process_executor,
)
