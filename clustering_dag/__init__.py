"""clustering_dag: a Dagster project that reproduces and goes beyond Agarap & Azcarraga (2019)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clustering_dag")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "unknown"
