import functools
import http.server
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clustering_dag.core.datasets import (
    DATASETS,
    FILES,
    DatasetSpec,
    md5_of,
    resolve_source,
)
from clustering_dag.core.errors import DataError
from clustering_dag.core.idx import load_image_dataset
from clustering_dag_tests.conftest import download_datasets, write_fake_dataset

SPEC = DatasetSpec(name="toy", folder="toy", mirrors=())


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("CLUSTERING_DAG_DATA_DIR", raising=False)


@contextmanager
def serving(folder: Path):
    """``folder`` over HTTP on 127.0.0.1; yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def http_mirror(tmp_path):
    """A tiny HTTP server on 127.0.0.1 serving a folder of fake dataset files."""
    served = tmp_path / "served"
    write_fake_dataset(served)
    with serving(served) as url:
        yield served, url + "/"


def test_resolution_order(tmp_path, monkeypatch, no_env):
    configured, env, cache, system = (tmp_path / n for n in ("configured", "env", "cache", "system"))
    spec = replace(SPEC, system_dirs=(str(system / "toy"),))
    for root in (configured, env, cache, system):
        write_fake_dataset(root / "toy")
    monkeypatch.setenv("CLUSTERING_DAG_DATA_DIR", str(env))
    assert resolve_source(spec, str(configured), cache) == configured / "toy"
    assert resolve_source(spec, None, cache) == env / "toy"
    monkeypatch.delenv("CLUSTERING_DAG_DATA_DIR")
    assert resolve_source(spec, None, cache) == cache / "toy"
    (cache / "toy" / FILES["test_labels"]).unlink()  # an incomplete folder is skipped
    assert resolve_source(spec, None, cache) == system / "toy"


def test_nothing_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERING_DAG_DATA_DIR", str(tmp_path / "env"))
    spec = replace(SPEC, system_dirs=(str(tmp_path / "sys"),), mirrors=("http://127.0.0.1:9/",))
    with pytest.raises(DataError) as err:
        resolve_source(spec, str(tmp_path / "mine"), tmp_path / "cache")
    text = str(err.value)
    for place in ("configured data_dir", "CLUSTERING_DAG_DATA_DIR", "project cache",
                  "system package", "download into", "127.0.0.1:9"):
        assert place in text
    assert "Fix: set CLUSTERING_DAG_DATA_DIR" in text
    assert not any((tmp_path / "cache" / "toy").glob("*.gz"))


def test_download_disabled(tmp_path, no_env):
    with pytest.raises(DataError, match="download: disabled by configuration"):
        resolve_source(SPEC, None, tmp_path / "cache", allow_download=False)


def test_download_verifies_md5(tmp_path, http_mirror, no_env):
    served, url = http_mirror
    md5 = {key: md5_of(served / name) for key, name in FILES.items()}
    spec = replace(SPEC, mirrors=(url,), gz_md5=md5)
    folder = resolve_source(spec, None, tmp_path / "cache")
    assert folder == tmp_path / "cache" / "toy"
    for name in FILES.values():
        assert (folder / name).read_bytes() == (served / name).read_bytes()
    assert load_image_dataset(spec, folder).train_x.shape == (30, 784)


def test_download_checksum_mismatch_keeps_nothing(tmp_path, http_mirror, no_env):
    served, url = http_mirror
    md5 = {key: md5_of(served / name) for key, name in FILES.items()}
    md5["train_images"] = "0" * 32
    spec = replace(SPEC, mirrors=(url,), gz_md5=md5)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*MD5 .* does not match"):
        resolve_source(spec, None, tmp_path / "cache")
    leftovers = [p.name for p in (tmp_path / "cache" / "toy").iterdir()]
    assert FILES["train_images"] not in leftovers
    assert not [n for n in leftovers if n.endswith(".part")]


def test_download_from_file_url(tmp_path, no_env):
    served = tmp_path / "mirror"
    write_fake_dataset(served)
    spec = replace(SPEC, mirrors=(served.as_uri() + "/",))
    assert resolve_source(spec, None, tmp_path / "cache") == tmp_path / "cache" / "toy"


def test_wrong_split_size_is_reported(tmp_path):
    write_fake_dataset(tmp_path / "toy", n_train=30)
    with pytest.raises(DataError, match="train split of 'toy' has 30 items, expected 60000"):
        load_image_dataset(replace(SPEC, n_train=60_000), tmp_path / "toy")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_dataset(data_dir, name):
    spec = DATASETS[name]
    data = load_image_dataset(spec, data_dir / spec.folder)
    assert data.train_x.shape == (60_000, 784) and data.test_x.shape == (10_000, 784)
    assert data.train_x.dtype == np.float32
    assert 0.0 == data.train_x.min() and data.train_x.max() == 1.0
    assert np.bincount(data.test_y, minlength=10).min() > 800
    assert set(np.unique(data.train_y)) == set(range(10))
    assert data.meta["image_shape"] == [28, 28]


def test_canonical_checksums_are_complete():
    for spec in DATASETS.values():
        assert set(spec.gz_md5) == set(FILES) and all(len(v) == 32 for v in spec.gz_md5.values())
        assert spec.mirrors


def test_spec_folder_names_match_shared_layout(data_dir):
    for spec in DATASETS.values():
        assert Path(data_dir / spec.folder).is_dir()


def test_a_clone_without_the_data_folder_tests_on_the_real_files_downloaded(tmp_path, data_dir):
    """Where no data folder exists (a user's fresh clone), the suite fetches the paper's files as
    the run command does, checksum-verified, into the raw-data cache: here from 127.0.0.1 serving
    the real files as the mirror. A mirror serving other bytes leaves nothing and says why."""
    # A data folder may hold recompressed copies (the same content in other gzip bytes, which the
    # canonical checksums refuse): verified here against the served files' own checksums.
    served = {name: replace(spec, gz_md5={key: md5_of(data_dir / spec.folder / file)
                                          for key, file in FILES.items()})
              for name, spec in DATASETS.items()}
    raw = tmp_path / "raw"
    with serving(data_dir) as url:
        found, why = download_datasets(raw, url, served)
    assert (found, why) == (raw, "")
    for spec in served.values():
        assert {key: md5_of(raw / spec.folder / file) for key, file in FILES.items()} == spec.gz_md5
        data = load_image_dataset(spec, raw / spec.folder)
        assert (len(data.train_x), len(data.test_x)) == (60_000, 10_000)

    fake = tmp_path / "fake"
    for spec in DATASETS.values():
        write_fake_dataset(fake / spec.folder)
    with serving(fake) as url:
        found, why = download_datasets(tmp_path / "elsewhere", url)
    assert found is None and "does not match the expected" in why
    assert not list((tmp_path / "elsewhere").rglob("*.gz"))  # nothing unverified kept
