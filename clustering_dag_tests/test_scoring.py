"""Scoring files that arrive later: reading a batch against its dataset's layout, the inbox sensor,
and (slow, on the shared quick-profile run of mnist) the scored batches themselves: the noisy test
split scored as a batch gives exactly the run's cluster assignments, a foreign batch is flagged,
a bad file fails alone and clearly, the command line gives what the asset gives."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    MultiPartitionKey,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from clustering_dag.core.errors import DataError
from clustering_dag.core.scoring import BatchLayout, read_batch
from clustering_dag.core.spaces import scorable_spaces
from clustering_dag.settings import PROJECT_ROOT

SCORED_SPACES = [s.name for s in scorable_spaces()]

MNIST = BatchLayout("mnist", 784, (28, 28))
TABLE = BatchLayout("wine", 3, None, ("a", "b", "c"), {"how": "minmax", "lo": [0, 0, 10], "span": [2, 4, 10]},
                    label_column="target")


# --- reading a batch ---------------------------------------------------------------------------

def test_images_are_read_and_scaled_like_the_training_split(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "digits.npz", x=pixels, y=np.arange(5))
    batch = read_batch(tmp_path / "digits.npz", MNIST)
    assert batch.x.dtype == np.float32 and batch.x.shape == (5, 784)
    np.testing.assert_allclose(batch.x, pixels.reshape(5, -1) / 255.0, rtol=1e-6)
    assert batch.y.tolist() == [0, 1, 2, 3, 4]
    floats = np.random.default_rng(1).normal(0.5, 0.2, (3, 784)).astype(np.float32)
    np.savez(tmp_path / "noisy.npz", x=floats)  # floats are pixel values already
    np.testing.assert_array_equal(read_batch(tmp_path / "noisy.npz", MNIST).x, floats)


def test_a_table_is_read_by_its_column_names_and_min_max_scaled(tmp_path):
    pd.DataFrame({"c": [10, 20], "target": ["x", "y"], "a": [0, 2], "b": [4, 0]}).to_csv(
        tmp_path / "rows.csv", index=False)
    batch = read_batch(tmp_path / "rows.csv", TABLE)
    np.testing.assert_allclose(batch.x, [[0, 1, 0], [1, 0, 1]])
    assert batch.y.tolist() == ["x", "y"]


@pytest.mark.parametrize("make, says", [
    (lambda p: np.savez(p / "f.npz", x=np.zeros((4, 27, 28), np.uint8)), "rows shaped (27, 28)"),
    (lambda p: np.savez(p / "f.npz", x=np.zeros((0, 28, 28), np.uint8)), "no rows"),
    (lambda p: np.savez(p / "f.npz", images=np.zeros((4, 784))), "expected 'x'"),
    (lambda p: np.savez(p / "f.npz", x=np.array([{"a": 1}] * 4, dtype=object)), "pickle is never loaded"),
    (lambda p: (p / "f.npz").write_bytes(b"not a zip file"), "not a readable .npz"),
    (lambda p: (p / "f.npz").write_bytes(b""), "is empty"),
    (lambda p: (p / "f.csv").write_text("a,b\n1,2\n"), "is a table"),
    (lambda p: (p / "f.txt").write_text("1 2 3"), "unknown format"),
    (lambda p: np.savez(p / "f.npz", x=np.full((2, 784), np.nan)), "NaN or Inf"),
])
def test_a_bad_image_batch_gets_one_clear_error_naming_the_file(tmp_path, make, says):
    make(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(DataError, match=re.escape(says)) as caught:
        read_batch(path, MNIST)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("frame, says", [
    ({"a": [1], "b": [2]}, r"missing \['c'\]"),
    ({"a": [1], "b": [2], "c": [3], "d": [4]}, r"unknown \['d'\]"),
    ({"a": ["one"], "b": [2], "c": [3]}, "column 'a' is not numeric"),
    ({"a": [], "b": [], "c": []}, "no rows"),
])
def test_a_bad_table_batch_names_the_columns(tmp_path, frame, says):
    path = tmp_path / "rows.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    with pytest.raises(DataError, match=says):
        read_batch(path, TABLE)


def test_an_npz_member_is_sized_from_its_header_before_it_is_read(tmp_path):
    np.savez_compressed(tmp_path / "big.npz", x=np.zeros((1000, 784), np.float32))  # small on disk
    with pytest.raises(DataError, match=r"array 'x' is \(1000, 784\) of float32, more than"):
        read_batch(tmp_path / "big.npz", MNIST, max_bytes=1_000_000)


def test_a_table_batch_is_sized_from_its_footer_with_the_fix_for_a_batch(tmp_path):
    columns = {name: np.zeros(50_000) for name in TABLE.feature_names}
    pd.DataFrame(columns).to_parquet(tmp_path / "big.parquet")  # small on disk, not in memory
    with pytest.raises(DataError, match=r"big\.parquet: 50,000 rows x \d+ columns would take more than "
                                        r"the 1,000,000 bytes allowed; split it into smaller files\.$"):
        read_batch(tmp_path / "big.parquet", TABLE, max_bytes=1_000_000)


# --- the inbox sensor --------------------------------------------------------------------------

def test_the_sensor_adds_only_new_or_changed_files(tmp_path, monkeypatch):
    from clustering_dag.batches import batch_files, inbox_sensor

    monkeypatch.setenv("CLUSTERING_DAG_INBOX", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    (tmp_path / "nowhere").mkdir()
    np.savez(tmp_path / "mnist" / "a.npz", x=np.zeros((2, 784)))
    np.savez(tmp_path / "mnist" / "b.npz", x=np.zeros((2, 784)))
    (tmp_path / "mnist" / ".c.npz.part").write_bytes(b"being copied")
    (tmp_path / "mnist" / "notes.txt").write_text("not a batch")

    def tick(instance, cursor):
        result = inbox_sensor(build_sensor_context(instance=instance, cursor=cursor))
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(batch_files.name, list(request.partition_keys))
        return result, [r.partition_key for r in result.run_requests]

    with instance_for_test() as instance:
        first, keys = tick(instance, None)
        assert keys == [MultiPartitionKey({"dataset": "mnist", "file": f}) for f in ("a.npz", "b.npz")]
        assert sorted(instance.get_dynamic_partitions(batch_files.name)) == ["a.npz", "b.npz"]
        again, keys = tick(instance, first.cursor)
        assert keys == [] and not again.dynamic_partitions_requests  # nothing new
        np.savez(tmp_path / "mnist" / "b.npz", x=np.ones((3, 784)))  # changed
        (tmp_path / "fashion_mnist").mkdir()
        np.savez(tmp_path / "fashion_mnist" / "a.npz", x=np.zeros((1, 784)))  # a name seen, another dataset
        changed, keys = tick(instance, again.cursor)
        assert keys == [MultiPartitionKey({"dataset": "fashion_mnist", "file": "a.npz"}),
                        MultiPartitionKey({"dataset": "mnist", "file": "b.npz"})]
        assert not changed.dynamic_partitions_requests  # both names are partitions already
        assert len({r.run_key for r in changed.run_requests}) == 2


# --- scored batches of the shared quick run ------------------------------------------------------

def _score(instance, dataset: str, name: str, raise_on_error: bool = True):
    from clustering_dag.batches import SCORED, all_assets, batch_files, resources

    instance.add_dynamic_partitions(batch_files.name, [name])
    return materialize(all_assets, selection=SCORED, instance=instance, resources=resources,
                       partition_key=MultiPartitionKey({"dataset": dataset, "file": name}),
                       raise_on_error=raise_on_error)


def _errors(result) -> list[str]:
    """Each failed step's error, with what caused it."""
    def text(error):
        return error.message + (text(error.cause) if error.cause else "")

    return [text(e.step_failure_data.error) for e in result.all_events if e.is_step_failure]


def _stored(cache, key: list[str], partition: str) -> pd.DataFrame:
    from clustering_dag.defs.storage import AssetStorage

    return AssetStorage(base_path=str(cache)).load(AssetKey(key), partition, "parquet")


@pytest.fixture(scope="module")
def scored(shared_graph, data_dir, tmp_path_factory):
    """A copy of the shared graph with its noisy test split dropped into the mnist inbox and
    scored, for this module's tests in turn (each adds its own files; the last refits a model)."""
    folder = tmp_path_factory.mktemp("scored")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLUSTERING_DAG_DATA_DIR", str(data_dir))
        graph_copy = shared_graph.copy_to(folder, mp)
        inbox = folder / "inbox"
        mp.setenv("CLUSTERING_DAG_INBOX", str(inbox))
        (inbox / "mnist").mkdir(parents=True)
        noisy = _stored(graph_copy.cache, ["noisy_dataset"], "mnist")
        np.savez(inbox / "mnist" / "test_split.npz", x=noisy.test_x.reshape(-1, 28, 28), y=noisy.test_y)
        with DagsterInstance.from_config(str(graph_copy.home)) as instance:
            result = _score(instance, "mnist", "test_split.npz")
            yield graph_copy, inbox, instance, result


@pytest.mark.slow
def test_the_test_split_scored_as_a_batch_is_the_runs_own_clustering(scored):
    from clustering_dag.core.variants import VARIANTS

    graph, inbox, instance, result = scored
    assert result.success
    for variant in VARIANTS:
        frame = result.asset_value(AssetKey([variant, "scored_batch"]))
        assigned = _stored(graph.cache, [variant, "cluster_assignments"], "mnist")
        assert len(frame) == len(assigned) == len(_stored(graph.cache, ["noisy_dataset"], "mnist").test_x)
        for space in SCORED_SPACES:
            np.testing.assert_array_equal(frame[f"{space}_cluster"], assigned[space],
                                          err_msg=f"{variant} {space}")
        np.testing.assert_array_equal(frame["label"], assigned["label"])
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert {k for k, e in checks.items() if e.passed} == {
        (f"{v}/scored_batch", "batch_drift") for v in VARIANTS}
    shares = checks[("dae/scored_batch", "batch_drift")].metadata
    assert all(0.0 <= shares[f"{s}_share"].value <= 0.1 for s in SCORED_SPACES)  # ~5 %, like the test split

    # The same file and the same models again: every value comes from the cache.
    again = _score(instance, "mnist", "test_split.npz")
    for variant in VARIANTS:
        meta = again.asset_materializations_for_node(f"{variant}__scored_batch")[0].metadata
        assert meta["reused"].value is True
        assert meta["model_versions"].value["trained_vae"]  # the data versions that scored it


@pytest.mark.slow
def test_a_foreign_batch_warns_and_a_bad_file_fails_alone(scored):
    graph, inbox, instance, _ = scored
    noisy = _stored(graph.cache, ["noisy_dataset"], "mnist")
    np.savez(inbox / "mnist" / "inverted.npz", x=(1.0 - noisy.test_x[:300]).astype(np.float32))
    result = _score(instance, "mnist", "inverted.npz")
    assert result.success
    drift = {e.asset_key.path[0]: e for e in result.get_asset_check_evaluations()}
    assert not drift["dae"].passed and "does not look like the data the models learned from" in \
        drift["dae"].description
    assert drift["dae"].metadata["original_share"].value > 0.5

    (inbox / "mnist" / "bad.csv").write_text("a,b\n1,2\n")
    failed = _score(instance, "mnist", "bad.csv", raise_on_error=False)
    assert not failed.success
    errors = _errors(failed)
    assert errors and all("bad.csv is a table, but dataset 'mnist' holds images" in m for m in errors)
    assert not list(graph.cache.glob("*/scored_batch/mnist/bad.csv*"))  # nothing written
    assert (graph.cache / "dae" / "scored_batch" / "mnist" / "test_split.npz.parquet").is_file()


@pytest.mark.slow
def test_the_command_line_scores_a_file_as_the_asset_does(scored, tmp_path):
    graph, inbox, _, result = scored
    out = tmp_path / "scores.parquet"
    run = subprocess.run([sys.executable, "-m", "clustering_dag.score", "--dataset", "mnist",
                          str(inbox / "mnist" / "test_split.npz"), "--variant", "dae", "--out", str(out)],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, env=os.environ, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["rows"] == len(result.asset_value(AssetKey(["dae", "scored_batch"])))
    assert summary["variants"]["dae"]["looks_like_test_split"] is True
    table = pd.read_parquet(out)
    asset = result.asset_value(AssetKey(["dae", "scored_batch"]))
    pd.testing.assert_frame_equal(table.drop(columns="variant"), asset)

    missing = subprocess.run([sys.executable, "-m", "clustering_dag.score", "--dataset",
                              "fashion_mnist", str(inbox / "mnist" / "test_split.npz"), "--out", str(out)],
                             capture_output=True, text=True, cwd=PROJECT_ROOT, env=os.environ, timeout=300)
    assert missing.returncode == 1
    assert "raw_dataset has no stored value for fashion_mnist" in missing.stderr
    assert "materialize it first" in missing.stderr


@pytest.mark.slow
def test_a_dataset_without_models_says_what_to_materialize_first(scored):
    graph, inbox, instance, _ = scored
    (inbox / "fashion_mnist").mkdir()
    np.savez(inbox / "fashion_mnist" / "f.npz", x=np.zeros((3, 784), np.float32))
    failed = _score(instance, "fashion_mnist", "f.npz", raise_on_error=False)
    assert not failed.success
    errors = _errors(failed)
    assert errors and all("has no stored value for fashion_mnist" in m and "materialize it first" in m
                          for m in errors)


@pytest.mark.slow
def test_a_hand_added_partition_with_a_bad_name_fails_before_any_read_or_write(scored):
    """Partitions added by hand (the UI's "Add partition", the instance API) take any string: each
    hostile name fails its run at once, saying why, and no file is read or written outside its
    folder (the cache and the folder above the inbox are watched)."""
    graph, inbox, instance, _ = scored
    secret = inbox.parent / "secret.npz"  # beside the inbox: not the pipeline's to read
    np.savez(secret, x=np.zeros((3, 784), np.float32))
    (inbox / "mnist" / "linked.npz").symlink_to(secret)

    def watched() -> dict:  # the copy's folder: its cache, the inbox, the secret; not the run records
        return {str(p): p.stat().st_mtime_ns for p in inbox.parent.rglob("*")
                if not p.is_symlink() and graph.home not in (p, *p.parents)}

    before = watched()
    said = {}
    for name in ("../secret.npz", "../../cache/raw_dataset/mnist.parquet", "/etc/passwd", "a\\b.npz",
                 "linked.npz", "a\x00b.npz", "x" * 10_000, "cafe\u0301.npz"):
        failed = _score(instance, "mnist", name, raise_on_error=False)
        assert not failed.success, name
        said[name] = _errors(failed)
        assert said[name] and all("refused in" in m or "leads outside" in m for m in said[name]), said[name]
        assert all(len(m) < 2000 for m in said[name])  # a long name is quoted short
    assert "a link out of the folder is not followed" in said["linked.npz"][0]
    assert watched() == before


@pytest.mark.slow
def test_retraining_a_model_makes_its_scored_batches_unsynced(scored):
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    from clustering_dag import batches
    from clustering_dag.definitions import all_assets, defs, resources
    from clustering_dag_tests.conftest import graph_config

    _, _, instance, _ = scored
    partition = MultiPartitionKey({"dataset": "mnist", "file": "test_split.npz"})

    # The asset graph the UI sees: both code locations, the models materializable in the main one.
    workspace = Definitions(assets=[*defs.assets, *batches.scored_batch], resources=resources)

    def status(variant: str) -> StaleStatus:
        resolver = CachingStaleStatusResolver(instance, workspace.resolve_asset_graph(),
                                              LoadingContextForTest(instance))
        return resolver.get_status(AssetKey([variant, "scored_batch"]), partition)

    assert status("paper") == status("dae") == StaleStatus.FRESH
    config = graph_config()["ops"]["paper__clusters_latent"]["config"]
    refit = materialize(all_assets, selection=[AssetKey(["paper", "clusters_latent"])], partition_key="mnist",
                        run_config={"ops": {"paper__clusters_latent": {"config": {**config, "seed": 7}}}},
                        resources=resources, instance=instance)
    assert refit.success
    assert status("paper") == StaleStatus.STALE and status("dae") == StaleStatus.FRESH
