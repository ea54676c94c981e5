"""The Dagster code location: everything under ``clustering_dag/defs/`` (what ``dg`` loads too, so
an asset made with ``dg scaffold defs`` appears here), each asset following its upstream's data.

Importing this loads Dagster and the project's light modules only; TensorFlow, scikit-learn,
matplotlib, pandas and pyarrow load inside the steps that use them.
"""

from pathlib import Path

from dagster import Definitions, load_from_defs_folder, map_asset_specs

from clustering_dag.core.spaces import freeze
from clustering_dag.defs.cached import resolve_shared
from clustering_dag.defs.jobs import follow_upstream


def _location() -> Definitions:
    folder = load_from_defs_folder(path_within_project=Path(__file__).parent)
    freeze()  # the assets are made from the registry of spaces: a later space would be missing
    assets, checks = resolve_shared(list(folder.assets or []), list(folder.asset_checks or []))
    return Definitions(
        assets=map_asset_specs(follow_upstream, assets),
        asset_checks=checks, jobs=folder.jobs, schedules=folder.schedules,
        sensors=folder.sensors, resources=folder.resources, executor=folder.executor)


defs = _location()

# For `dagster.materialize` in tests and scripts: the assets (with their checks) and the resources.
all_assets = [*defs.assets, *defs.asset_checks]
resources = dict(defs.resources)
