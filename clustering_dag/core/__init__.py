"""Numeric core of clustering_dag: plain NumPy / TensorFlow / scikit-learn code, free of Dagster."""

import os


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` may
    narrow below the machine's count): TensorFlow's CPU threads and the UMAP workers both use it."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
