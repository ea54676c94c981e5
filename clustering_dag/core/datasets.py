"""The image datasets of the paper: where their files are found, how they are fetched and verified
(reading them is :func:`clustering_dag.core.idx.load_image_dataset`).

Sources are tried in a fixed order (see :func:`resolve_source`); a download is verified by MD5
and written atomically, so an interrupted or corrupted download never passes for a dataset.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from clustering_dag import settings
from clustering_dag.core.errors import DataError

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class DatasetSpec:
    """An IDX image dataset: its folder name, mirrors and the MD5 of each gzip file."""

    name: str
    folder: str
    mirrors: tuple[str, ...]
    gz_md5: dict[str, str] = field(default_factory=dict)
    system_dirs: tuple[str, ...] = ()
    n_train: int | None = None
    n_test: int | None = None
    title: str = ""  # as the tables and figures name it
    kind: str = "digits"  # what leaves a class unchanged: clustering_dag.core.augment.KINDS


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="mnist",
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        gz_md5={
            "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_images": "9fb629c4189551a2d022fa330f9573f3",
            "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        n_train=60_000,
        n_test=10_000,
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        folder="fashion-mnist",
        title="Fashion-MNIST",
        kind="objects",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        gz_md5={
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        n_train=60_000,
        n_test=10_000,
    ),
}


def dataset_title(name: str) -> str:
    """How tables and figures name a dataset: the paper's by their names, a user's by its key."""
    spec = DATASETS.get(name)
    return spec.title if spec and spec.title else name


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _has_all_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES.values())


def candidate_dirs(spec: DatasetSpec, data_dir: str | None, cache_dir: Path) -> list[tuple[str, Path]]:
    """Folders to look in, in order: the user's data folder, the project cache, system packages."""
    candidates: list[tuple[str, Path]] = []
    if data_dir:
        candidates.append(("configured data_dir", Path(data_dir).expanduser() / spec.folder))
    env_dir = settings.data_dir()
    if env_dir and env_dir != (Path(data_dir).expanduser().resolve() if data_dir else None):
        candidates.append(("CLUSTERING_DAG_DATA_DIR", env_dir / spec.folder))
    candidates.append(("project cache", cache_dir / spec.folder))
    candidates.extend(("system package", Path(d)) for d in spec.system_dirs)
    return candidates


def download(spec: DatasetSpec, target: Path, mirrors: tuple[str, ...] | None = None,
             timeout: float = 60.0) -> list[str]:
    """Download every file of ``spec`` into ``target``, MD5-verified, each written atomically.

    Returns the problems met per mirror; raises :class:`DataError` when no mirror served a
    file whose checksum matched.
    """
    target.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for key, filename in FILES.items():
        dest = target / filename
        if dest.is_file() and (key not in spec.gz_md5 or md5_of(dest) == spec.gz_md5[key]):
            continue
        for mirror in mirrors or spec.mirrors:
            url = mirror.rstrip("/") + "/" + filename
            fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=target)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                    shutil.copyfileobj(resp, out)
                got = md5_of(tmp)
                want = spec.gz_md5.get(key)
                if want and got != want:
                    problems.append(f"{url}: MD5 {got} does not match the expected {want}")
                    continue
                os.replace(tmp, dest)
                break
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problems.append(f"{url}: {exc}")
            finally:
                tmp.unlink(missing_ok=True)
        else:
            raise DataError(
                f"could not download {filename} for dataset {spec.name!r}:\n  - "
                + "\n  - ".join(problems)
            )
    return problems


def resolve_source(spec: DatasetSpec, data_dir: str | None, cache_dir: Path,
                   allow_download: bool = True, mirrors: tuple[str, ...] | None = None) -> Path:
    """Return the folder holding the four IDX files of ``spec``.

    Order: ``data_dir`` (config), ``$CLUSTERING_DAG_DATA_DIR``, ``<cache_dir>/<folder>``, the
    dataset's system package folders, then a checksum-verified download into the cache.
    """
    looked = []
    for label, folder in candidate_dirs(spec, data_dir, cache_dir):
        if _has_all_files(folder):
            return folder
        looked.append(f"{label}: {folder}")
    dest = cache_dir / spec.folder
    if allow_download and (mirrors or spec.mirrors):
        try:
            download(spec, dest, mirrors)
            return dest
        except DataError as exc:
            looked.append(f"download into {dest}: {exc}")
    elif not allow_download:
        looked.append("download: disabled by configuration (allow_download=False)")
    raise DataError(
        f"dataset {spec.name!r} not found. Looked for {', '.join(FILES.values())} in:\n  - "
        + "\n  - ".join(looked)
        + "\nFix: set CLUSTERING_DAG_DATA_DIR to a folder holding "
        f"'{spec.folder}/' with those files, copy them into {dest}, or allow the download."
    )
