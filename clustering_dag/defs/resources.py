"""Resources: where datasets come from, and which device trains the model."""

from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from clustering_dag.core.datasets import DATASETS, resolve_source
from clustering_dag.core.digests import file_sha256
from clustering_dag.core.errors import DataError
from clustering_dag.defs.partitions import USER_DATASETS
from clustering_dag.settings import PROJECT_ROOT

_HASHES: dict[tuple, str] = {}


def content_hash(path: Path) -> str:
    """The SHA-256 of a file, paid once per process while its inode, size, modification and
    status-change times stay the same (the status-change time cannot be set back by a copy)."""
    st = path.stat()
    stamp = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if stamp not in _HASHES:
        _HASHES[stamp] = file_sha256(path)
    return _HASHES[stamp]


class DatasetSource(ConfigurableResource):
    """Finds a dataset's files. The paper's: ``data_dir`` / ``$CLUSTERING_DAG_DATA_DIR`` ->
    ``data/raw/`` -> system packages -> a checksum-verified download into ``data/raw/``. A user's:
    the file its registry entry names."""

    data_dir: str | None = Field(
        default=None,
        description="Folder holding mnist/ and fashion-mnist/ (defaults to $CLUSTERING_DAG_DATA_DIR).",
    )
    cache_dir: str | None = Field(
        default=None, description="Local folder for downloaded datasets (default: data/raw)."
    )
    allow_download: bool = Field(default=True, description="Download from the mirrors if not found.")
    mirrors: list[str] | None = Field(
        default=None, description="Override the dataset's mirror URLs (http(s):// or file://)."
    )

    def raw_cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else PROJECT_ROOT / "data" / "raw"

    def locate(self, dataset: str) -> Path:
        """The folder holding ``dataset``'s files (downloading them if allowed and needed), or
        the file of a user's dataset."""
        if dataset in USER_DATASETS:
            return Path(USER_DATASETS[dataset].path)
        spec = DATASETS.get(dataset)
        if spec is None:
            raise DataError(f"unknown dataset {dataset!r}; known: {sorted([*DATASETS, *USER_DATASETS])}. "
                            "Register your own in the file named by CLUSTERING_DAG_DATASETS.")
        return resolve_source(
            spec,
            data_dir=self.data_dir,  # $CLUSTERING_DAG_DATA_DIR is the next place looked
            cache_dir=self.raw_cache(),
            allow_download=self.allow_download,
            mirrors=tuple(self.mirrors) if self.mirrors else None,
        )

    def load(self, dataset: str, where: Path | None = None):
        """The dataset as a :class:`~clustering_dag.core.arrays.Splits`."""
        from clustering_dag.core.idx import load_image_dataset
        from clustering_dag.core.user_data import load_user_dataset

        if dataset in USER_DATASETS:
            return load_user_dataset(dataset, USER_DATASETS[dataset])
        where = where or self.locate(dataset)
        return load_image_dataset(DATASETS[dataset], where)

    @staticmethod
    def fingerprint(dataset: str, where: Path) -> list:
        """What identifies the source: each file's name and content (SHA-256, so a file replaced
        by another of the same size and modification time, `cp -p`, `rsync -t`, is noticed), and
        for a user's dataset its registry entry (how the file is read)."""
        files = sorted(where.glob("*.gz")) if where.is_dir() else [where] if where.is_file() else []
        stats = [(p.name, content_hash(p)) for p in files]
        spec = USER_DATASETS.get(dataset)
        return [stats, spec.model_dump()] if spec else stats


class Accelerator(ConfigurableResource):
    """The device that trains the VAE. ``auto`` takes a GPU when TensorFlow sees one, else the CPU."""

    device: Literal["auto", "cpu", "gpu"] = Field(default="auto", description="auto | cpu | gpu")
    memory_growth: bool = Field(default=True, description="Let TensorFlow grow GPU memory on demand.")
    mixed_precision: bool = Field(default=False, description="float16 compute on a GPU.")
    cpu_threads: int = Field(default=0, description="Threads per op on the CPU (0 = all cores).")

    def select(self, log=None) -> str:
        """Configure TensorFlow and return the device string to train on (``/GPU:0``, ``/CPU:0``)."""
        from clustering_dag.core import cores
        from clustering_dag.core.tf_env import keras, tf

        gpus = tf.config.list_physical_devices("GPU")
        if self.device == "gpu" and not gpus:
            raise RuntimeError(
                "Accelerator(device='gpu') but TensorFlow sees no GPU on this machine. "
                "Use device='auto' or 'cpu', or install a CUDA-enabled TensorFlow and drivers."
            )
        use_gpu = bool(gpus) and self.device in ("auto", "gpu")
        if use_gpu:
            for gpu in gpus:
                try:
                    tf.config.experimental.set_memory_growth(gpu, self.memory_growth)
                except RuntimeError:
                    pass  # already initialised in this process: the setting stays as it was
            policy = "mixed_float16" if self.mixed_precision else "float32"
            name, what = "/GPU:0", f"GPU {gpus[0].name} ({len(gpus)} visible), policy {policy}"
        else:
            threads = self.cpu_threads or cores()
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(2)
            except RuntimeError:
                pass  # TensorFlow already started in this process; it keeps its thread pools
            policy = "float32"
            reason = "asked for" if self.device == "cpu" else "no GPU visible"
            name, what = "/CPU:0", f"CPU ({reason}), {threads} intra-op threads"
        keras.mixed_precision.set_global_policy(policy)
        if log is not None:
            log.info(f"Accelerator: training on {what}")
        return name
