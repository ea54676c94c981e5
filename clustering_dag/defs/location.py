"""What every asset of the code location shares: the resources and the executor."""

from dagster import Definitions, in_process_executor

from clustering_dag.defs.cached import IO_MANAGERS
from clustering_dag.defs.io_managers import StoredIOManagerFactory
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
        # One IO manager per kind of file; `io_manager` (Dagster's default key, what a plain
        # `@dg.asset` uses) stores a table as parquet and anything else JSON holds as JSON.
        **{key: StoredIOManagerFactory(storage=asset_storage, kind=kind)
           for kind, key in IO_MANAGERS.items()},
        "io_manager": StoredIOManagerFactory(storage=asset_storage, kind="value"),
    },
    # One process per run: the numeric libraries are imported once, not once per step.
    executor=in_process_executor,
)
