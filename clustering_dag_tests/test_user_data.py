"""Users' own datasets: reading parquet, CSV and .npz files on real small data (scikit-learn's wine
table and digit images), every kind of bad input, the registry file, and the whole graph run
from the command line on a registered table and on unlabelled images."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_digits, load_wine

from clustering_dag.core.errors import DataError
from clustering_dag.core.registry import UserDataset, load_registry
from clustering_dag.core.spaces import space_names
from clustering_dag.core.trained import load_trained
from clustering_dag.core.user_data import load_user_dataset
from clustering_dag.core.variants import VARIANTS
from clustering_dag.profiles import small
from clustering_dag.settings import PROJECT_ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))
SPACES = space_names()


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.images * (255 / 16)).round().astype(np.uint8), data.target


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def load(path: Path, **options):
    return load_user_dataset("mine", UserDataset(path=str(path), **options))


# --- reading -------------------------------------------------------------------------------------


def test_csv_table_with_labels_is_split_scaled_and_coded(tmp_path, wine):
    data = load(write_csv(wine, tmp_path / "wine.csv"), label_column="target", test_fraction=0.25)
    assert len(data.test_x) == round(0.25 * len(wine)) and len(data.train_x) + len(data.test_x) == len(wine)
    assert data.dim == 13 and data.image_shape is None
    assert data.meta["classes"] == ["0", "1", "2"] and data.n_clusters == 3
    np.testing.assert_allclose(data.train_x.min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(data.train_x.max(axis=0), 1.0, atol=1e-6)
    counts = np.bincount(np.concatenate([data.train_y, data.test_y]))
    assert counts.tolist() == wine["target"].value_counts().sort_index().tolist()
    # The split is seeded: the same seed gives the same rows, another seed other rows.
    again = load(tmp_path / "wine.csv", label_column="target", test_fraction=0.25)
    other = load(tmp_path / "wine.csv", label_column="target", test_fraction=0.25, split_seed=7)
    np.testing.assert_array_equal(again.test_x, data.test_x)
    assert not np.array_equal(other.test_x, data.test_x)


def test_parquet_split_column_and_string_labels_are_honoured(tmp_path, wine):
    frame = wine.assign(split=["train"] * 150 + [" Test"] * 28,
                        kind=wine["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"}))
    frame = frame.drop(columns="target")
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "wine.parquet")
    data = load(tmp_path / "wine.parquet", label_column="kind", split_column="split")
    assert (len(data.train_x), len(data.test_x)) == (150, 28)
    assert data.meta["classes"] == ["barbera", "barolo", "grignolino"]
    features = frame.drop(columns=["split", "kind"]).to_numpy()
    lo, hi = features[:150].min(0), features[:150].max(0)
    np.testing.assert_allclose(data.test_x, (features[150:] - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(data.test_y, pd.factorize(frame["kind"], sort=True)[0][150:])


def test_feature_subset_and_unlabelled_table(tmp_path, wine):
    data = load(write_csv(wine, tmp_path / "wine.csv"), features=["alcohol", "hue", "proline"],
                n_clusters=4)
    assert data.dim == 3 and not data.has_labels and data.n_clusters == 4
    assert data.meta["feature_names"] == ["alcohol", "hue", "proline"]


def test_npz_images_keep_their_split_labels_and_shape(tmp_path, digits):
    images, labels = digits
    np.savez(tmp_path / "digits.npz", train_x=images[:1500], train_y=labels[:1500],
             test_x=images[1500:], test_y=labels[1500:])
    data = load(tmp_path / "digits.npz")
    assert data.image_shape == [8, 8] and data.dim == 64 and data.n_clusters == 10
    assert (len(data.train_x), len(data.test_x)) == (1500, len(images) - 1500)
    np.testing.assert_allclose(data.test_x, images[1500:].reshape(-1, 64) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.train_y, labels[:1500])


def test_npz_unlabelled_features(tmp_path, digits):
    np.savez(tmp_path / "x.npz", x=digits[0].reshape(len(digits[0]), -1).astype(np.float64))
    data = load(tmp_path / "x.npz", test_fraction=0.1, n_clusters=8)
    assert not data.has_labels and data.image_shape is None and data.n_clusters == 8
    assert len(data.test_x) == round(0.1 * len(digits[0]))


# --- bad input: one clear error naming the file and the column or row ---------------------------


def _bad_csv(tmp_path, wine, edit) -> Path:
    frame = wine.copy()
    edit(frame)
    return write_csv(frame, tmp_path / "bad.csv")


def test_non_numeric_column_names_column_and_row(tmp_path, wine):
    path = _bad_csv(tmp_path, wine, lambda f: f.insert(0, "colour", ["red"] * len(f)))
    with pytest.raises(DataError, match=r"bad\.csv: column 'colour' is not numeric \(row 1 \(line 2\)"):
        load(path, label_column="target")
    # A mostly numeric column with one stray word: the stray row is named.
    path = _bad_csv(tmp_path, wine, lambda f: f.__setitem__("ash", f["ash"].astype(object).where(
        f.index != 41, "n/a?")))
    with pytest.raises(DataError, match=r"column 'ash' is not numeric \(row 42 \(line 43\) holds 'n/a\?'"):
        load(path, label_column="target")


def test_nan_and_inf_name_column_and_row(tmp_path, wine):
    path = _bad_csv(tmp_path, wine, lambda f: f.__setitem__("hue", f["hue"].mask(f.index == 16)))
    with pytest.raises(DataError, match=r"bad\.csv: column 'hue' has NaN \(missing\) at row 17 \(line 18\)"):
        load(path, label_column="target")
    frame = wine.astype({"magnesium": float})
    frame.loc[99, "magnesium"] = np.inf
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "inf.parquet")
    with pytest.raises(DataError, match=r"inf\.parquet: column 'magnesium' has inf at row 100 "):
        load(tmp_path / "inf.parquet", label_column="target")


def test_ragged_csv_rows_name_the_line(tmp_path, wine):
    path = write_csv(wine, tmp_path / "ragged.csv")
    with open(path, "a") as fh:
        fh.write(",".join(["1"] * (wine.shape[1] + 2)) + "\n")
    with pytest.raises(DataError, match=r"ragged\.csv: rows have different numbers of fields .*line 180"):
        load(path, label_column="target")


def test_empty_files(tmp_path, wine):
    for name in ("empty.csv", "empty.parquet", "empty.npz"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(DataError, match=rf"{name} is empty \(0 bytes\)"):
            load(tmp_path / name)
    (tmp_path / "header.csv").write_text(",".join(wine.columns) + "\n")
    with pytest.raises(DataError, match=r"header\.csv: the file has a header but no rows"):
        load(tmp_path / "header.csv", label_column="target")


def test_labels_of_the_wrong_length(tmp_path, digits):
    x = digits[0].reshape(len(digits[0]), -1)
    np.savez(tmp_path / "short.npz", x=x, y=digits[1][:-3])
    with pytest.raises(DataError, match=r"short\.npz: labels 'y' have shape \(1794,\) but 'x' has 1797 rows"):
        load(tmp_path / "short.npz")
    np.savez(tmp_path / "split.npz", train_x=x[:1000], train_y=digits[1][:1000], test_x=x[1000:],
             test_y=digits[1][1000:1500])
    with pytest.raises(DataError, match=r"labels 'test_y' have shape \(500,\) but 'test_x' has 797 rows"):
        load(tmp_path / "split.npz")


def test_missing_labels_and_bad_split_values_name_the_row(tmp_path, wine):
    path = _bad_csv(tmp_path, wine, lambda f: f.__setitem__("target", f["target"].mask(f.index == 5)))
    with pytest.raises(DataError, match=r"label column 'target' is empty at row 6 \(line 7\)"):
        load(path, label_column="target")
    path = _bad_csv(tmp_path, wine, lambda f: f.__setitem__("split", ["train"] * 170 + ["validation"] * 8))
    with pytest.raises(DataError, match=r"split column 'split' holds 'validation' at row 171 \(line 172\)"):
        load(path, label_column="target", split_column="split")


def test_row_count_other_than_registered(tmp_path, wine):
    path = write_csv(wine.head(150), tmp_path / "cut.csv")
    with pytest.raises(DataError, match=r"cut\.csv: has 150 rows but the registry says `rows: 178`"):
        load(path, label_column="target", rows=178)
    assert len(load(write_csv(wine, path), label_column="target", rows=178).train_x) == 178 - 36


def test_a_single_label_class_fails_before_training_unless_n_clusters_is_given(tmp_path, wine):
    path = write_csv(wine.assign(target=7), tmp_path / "one.csv")
    with pytest.raises(DataError, match=r"one\.csv: column 'target' holds one class only .*`n_clusters:`"):
        load(path, label_column="target")
    assert load(path, label_column="target", n_clusters=3).n_clusters == 3


def test_too_few_rows_and_unknown_columns(tmp_path, wine):
    path = write_csv(wine.head(12), tmp_path / "tiny.csv")
    with pytest.raises(DataError, match=r"tiny\.csv: 10 training and 2 test rows are too few to fit 3 "):
        load(path, label_column="target", test_fraction=0.15, n_clusters=3)
    with pytest.raises(DataError, match=r"tiny\.csv: no column 'label' \(from `label_column:`\)"):
        load(path, label_column="label")


def test_pickle_is_never_loaded_and_garbage_is_reported(tmp_path):
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, {"b": 2}], dtype=object))
    with pytest.raises(DataError, match=r"objects\.npz: holds object arrays, which only pickle can read"):
        load(tmp_path / "objects.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DataError, match=r"garbage\.npz: not a readable \.npz file"):
        load(tmp_path / "garbage.npz")
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(DataError, match=r"garbage\.parquet: not a readable parquet file"):
        load(tmp_path / "garbage.parquet")


def test_missing_file_unknown_format_and_unscaled_values(tmp_path, wine):
    with pytest.raises(DataError, match=r"dataset 'mine': file .*nowhere\.csv does not exist"):
        load(tmp_path / "nowhere.csv")
    (tmp_path / "data.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match=r"cannot tell the format from the extension '\.xlsx'"):
        load(tmp_path / "data.xlsx")
    with pytest.raises(DataError, match=r"`scale: none` but the training values span \[0.13, 1680\]"):
        load(write_csv(wine, tmp_path / "wine.csv"), label_column="target", scale="none")


# --- the registry --------------------------------------------------------------------------------


def test_registry_resolves_paths_next_to_itself(tmp_path):
    (tmp_path / "reg.yaml").write_text(
        "datasets:\n  wine:\n    path: tables/wine.csv\n    label_column: target\n  other: /abs/x.npz\n")
    reg = load_registry(tmp_path / "reg.yaml", reserved={"mnist"}, roots=[tmp_path, Path("/abs")])
    assert reg["wine"].path == str(tmp_path / "tables" / "wine.csv")
    assert reg["wine"].label_column == "target" and reg["other"].path == "/abs/x.npz"


@pytest.mark.parametrize("where", ["/etc/passwd", "../outside.csv", "inside/../../outside.csv"])
def test_registry_paths_stay_in_the_allowed_folders(tmp_path, where):
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "reg.yaml").write_text(f"datasets:\n  mine:\n    path: {where}\n")
    with pytest.raises(DataError, match=r"entry 'mine': .* lies outside the folders datasets may be read "
                                        r"from .*CLUSTERING_DAG_DATA_ROOTS"):
        load_registry(folder / "reg.yaml")
    assert load_registry(folder / "reg.yaml", roots=[Path("/")])["mine"].path  # named roots allow it


@pytest.mark.parametrize("text, message", [
    ("datasets:\n  wine:\n    path: w.csv\n    labels: target\n", r"entry 'wine': labels: Extra inputs"),
    ("datasets:\n  mnist:\n    path: m.csv\n", r"'mnist' is a built-in dataset"),
    ("datasets:\n  My-Data:\n    path: m.csv\n", r"entry 'My-Data': names are lower-case"),
    ("datasets:\n  wine:\n    path: w.csv\n    test_fraction: 1.5\n", r"test_fraction: Input should be less"),
    ("wine:\n  path: w.csv\n", r"must hold one mapping, `datasets:`"),
    ("datasets: [\n", r"is not valid YAML"),
])
def test_registry_errors_name_the_file_and_entry(tmp_path, text, message):
    (tmp_path / "reg.yaml").write_text(text)
    with pytest.raises(DataError, match=message) as err:
        load_registry(tmp_path / "reg.yaml", reserved={"mnist", "fashion_mnist"})
    assert str(tmp_path / "reg.yaml") in str(err.value)


def test_a_broken_registry_stops_the_code_location_with_its_message(tmp_path):
    (tmp_path / "reg.yaml").write_text("datasets:\n  mnist:\n    path: m.csv\n")
    proc = subprocess.run([sys.executable, "-c", "import clustering_dag.definitions"], cwd=PROJECT_ROOT,
                          env={**os.environ, "CLUSTERING_DAG_DATASETS": str(tmp_path / "reg.yaml")},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "'mnist' is a built-in dataset; choose another name" in proc.stderr


def test_registered_datasets_become_partitions_and_scheduled_runs(tmp_path):
    (tmp_path / "reg.yaml").write_text("datasets:\n  wine: {path: wine.csv, profile: small}\n"
                                       "  digits: {path: digits.npz}\n")
    script = """
import json
from datetime import datetime, UTC
from dagster import DagsterInstance, build_schedule_context
from clustering_dag.definitions import defs
job = defs.resolve_job_def("paper_run")
with DagsterInstance.ephemeral() as instance:
    context = build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                     scheduled_execution_time=datetime(2026, 11, 23, 3, tzinfo=UTC))
    requests = defs.resolve_schedule_def("weekly_paper_run").evaluate_tick(context).run_requests
print(json.dumps({"partitions": job.partitions_def.get_partition_keys(),
                  "requests": [[r.partition_key, r.run_config] for r in requests]}))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "CLUSTERING_DAG_DATASETS": str(tmp_path / "reg.yaml")},
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["partitions"] == ["mnist", "fashion_mnist", "wine", "digits"]
    configs = dict(out["requests"])
    assert configs["mnist"] == {} and configs["digits"] == {}
    assert configs["wine"] == small()


def test_source_fingerprint_follows_the_file_and_its_entry(tmp_path, wine, monkeypatch):
    from clustering_dag.defs import resources

    path = write_csv(wine, tmp_path / "wine.csv")
    monkeypatch.setitem(resources.USER_DATASETS, "wine", UserDataset(path=str(path), label_column="target"))
    before = resources.DatasetSource.fingerprint("wine", path)
    write_csv(wine.head(170), path)
    changed_file = resources.DatasetSource.fingerprint("wine", path)
    monkeypatch.setitem(resources.USER_DATASETS, "wine", UserDataset(path=str(path)))
    changed_entry = resources.DatasetSource.fingerprint("wine", path)
    assert len({str(before), str(changed_file), str(changed_entry)}) == 3
    # Another file of the same size and modification time in its place (`cp -p`) is noticed too.
    stat, text = path.stat(), bytearray(path.read_bytes())
    digit = text.index(b"\n") + 1  # the first value of the first row
    text[digit] = ord("9") if text[digit] != ord("9") else ord("8")
    path.write_bytes(bytes(text))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert resources.DatasetSource.fingerprint("wine", path) != changed_entry


# --- the whole graph on a user's data --------------------------------------------------------------


@pytest.mark.slow
def test_whole_graph_runs_on_a_labelled_table_and_on_unlabelled_images(user_graphs):
    digits = user_graphs.digits
    for log in user_graphs.logs.values():
        # A quiet log: nothing warns from the project's modules (deprecations, Dagster betas it
        # uses) or from TensorFlow (CUDA probing without a GPU, Keras).
        noisy = [line for line in log.splitlines() if re.search(
            r"WARNING:tensorflow|cuInit|cudart_stub|non-serializable|"
            r"clustering_dag/\S+:\d+: \w*Warning", line)]
        assert noisy == [], noisy[:5]
    cache = user_graphs.cache
    for variant in VARIANTS:
        wine_metrics = pd.read_parquet(cache / variant / "clustering_metrics" / "wine.parquet")
        digit_metrics = pd.read_parquet(cache / variant / "clustering_metrics" / "digits.parquet")
        assert list(wine_metrics["representation"]) == list(SPACES)
        assert wine_metrics["n_clusters_used"].tolist() == [3] * len(SPACES)  # the label classes
        assert np.isfinite(wine_metrics[["dbi", "silhouette", "chs", "accuracy"]].to_numpy()).all()
        assert wine_metrics.loc[0, "accuracy"] > 0.6  # k-means on scaled wine features
        assert "accuracy" not in digit_metrics and "nmi" not in digit_metrics
        assert digit_metrics["n_clusters_used"].tolist() == [10] * len(SPACES)
        assignments = pd.read_parquet(cache / variant / "cluster_assignments" / "digits.parquet")
        assert "label" not in assignments and len(assignments) == round(0.2 * len(digits[0]))
        for partition, likelihood in (("wine", "gaussian"), ("digits", "bernoulli")):
            model = load_trained(str(cache / variant / "trained_vae" / f"{partition}.weights.h5"))
            # The likelihood follows the data: the table gets a Gaussian, the images a Bernoulli.
            fixed = {"paper": "clipped_bce", "dae": "mse"}
            assert model.config.likelihood == fixed.get(variant, likelihood)
            assert model.diagnostics["active_dims"] >= 1
        for figure in ("reconstructions", "tsne", "voronoi", "latent_centroids", "k_sweep"):
            for partition in ("wine", "digits"):
                assert (cache / "figures" / variant / figure / f"{partition}.png").stat().st_size > 1000


def test_what_a_file_may_hold_is_bounded_before_it_is_read(tmp_path):
    """`max_bytes`: a file larger on disk, a parquet table whose footer declares more rows x columns,
    or an .npz member whose header declares more, is refused before its data are read."""
    frame = pd.DataFrame({"a": np.zeros(100_000), "b": np.zeros(100_000)})
    frame.to_parquet(tmp_path / "zeros.parquet")  # a few kB on disk, 1.6 MB as float64
    assert (tmp_path / "zeros.parquet").stat().st_size < 50_000
    with pytest.raises(DataError, match=r"zeros\.parquet: 100,000 rows x 2 columns would take more than "
                                        r"the 1,000,000 bytes allowed"):
        load(tmp_path / "zeros.parquet", max_bytes=1_000_000)
    np.savez_compressed(tmp_path / "zeros.npz", x=np.zeros((1000, 784), np.float32))
    with pytest.raises(DataError, match=r"zeros\.npz: array 'x' is \(1000, 784\) of float32, more than"):
        load(tmp_path / "zeros.npz", max_bytes=1_000_000)
    frame.to_csv(tmp_path / "zeros.csv", index=False)
    with pytest.raises(DataError, match=r"zeros\.csv: [\d,]+ bytes, more than the 100,000 allowed"):
        load(tmp_path / "zeros.csv", max_bytes=100_000)
    assert load(tmp_path / "zeros.parquet", n_clusters=2).train_x.shape[1] == 2  # the default allows it


def test_an_error_names_a_bad_cell_without_copying_it_whole(tmp_path, wine):
    secret = "x" * 5000
    frame = wine.astype({"alcohol": object})
    frame.loc[3, "alcohol"] = secret
    path = write_csv(frame, tmp_path / "long.csv")
    with pytest.raises(DataError, match=r"column 'alcohol' is not numeric \(row 4 \(line 5\) holds "
                                        r"'xxx") as err:
        load(path, label_column="target")
    assert secret not in str(err.value) and len(str(err.value)) < 500
