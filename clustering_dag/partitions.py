"""One partition per dataset; the same assets serve every dataset."""

from dagster import StaticPartitionsDefinition

from clustering_dag.core.datasets import DATASETS

DATASET_KEYS = list(DATASETS)

dataset_partitions = StaticPartitionsDefinition(DATASET_KEYS)
