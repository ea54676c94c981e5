"""One partition per dataset: the paper's two, plus any the user registers.

Users' datasets come from the registry file named by ``$CLUSTERING_DAG_DATASETS`` (default:
``data/datasets.yaml`` when it exists); see README "Your own data". The partitions are read when
the code location loads, so after editing the registry reload it (UI: Deployment -> Reload).
"""

import os
from pathlib import Path

from dagster import StaticPartitionsDefinition

from clustering_dag.core.datasets import DATASETS
from clustering_dag.core.user_data import UserDataset, load_registry
from clustering_dag.settings import PROJECT_ROOT


def registry_path() -> Path | None:
    configured = os.environ.get("CLUSTERING_DAG_DATASETS")
    if configured:
        return Path(configured)
    default = PROJECT_ROOT / "data" / "datasets.yaml"
    return default if default.is_file() else None


def _user_datasets() -> dict[str, UserDataset]:
    path = registry_path()
    return load_registry(path, reserved=set(DATASETS)) if path else {}


USER_DATASETS = _user_datasets()

DATASET_KEYS = [*DATASETS, *USER_DATASETS]

dataset_partitions = StaticPartitionsDefinition(DATASET_KEYS)
