"""One partition per dataset: the paper's two, plus any the user registers.

Users' datasets come from the registry file named by ``$CLUSTERING_DAG_DATASETS`` (default:
``data/datasets.yaml`` when it exists); see README "Your own data". The partitions are read when
the code location loads, so after editing the registry reload it (UI: Deployment -> Reload).
"""

from dagster import StaticPartitionsDefinition

from clustering_dag.core.datasets import DATASETS
from clustering_dag.core.registry import UserDataset, load_registry
from clustering_dag.settings import data_roots, registry_path


def _user_datasets() -> dict[str, UserDataset]:
    path = registry_path()
    return load_registry(path, reserved=set(DATASETS), roots=data_roots()) if path else {}


USER_DATASETS = _user_datasets()

DATASET_KEYS = [*DATASETS, *USER_DATASETS]

dataset_partitions = StaticPartitionsDefinition(DATASET_KEYS)
