"""Labels are for scoring only: the same dataset with its label column shuffled gets the same
clusters in every space of every variant (autoencoders, UMAP restarts and their choice, the
mixtures, the refined classifier), and only the label-based metrics move."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from clustering_dag.core.variants import SPACES, VARIANTS
from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests.conftest import brief_small_profile, initialized_dagster_home

DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.mark.slow
def test_permuted_labels_give_identical_cluster_assignments(tmp_path):
    wine = load_wine(as_frame=True).frame
    shuffled = wine.assign(target=np.random.default_rng(0).permutation(wine["target"].to_numpy()))
    assert (shuffled["target"] != wine["target"]).mean() > 0.5
    wine.to_csv(tmp_path / "wine.csv", index=False)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    (tmp_path / "datasets.yaml").write_text(
        "datasets:\n"
        "  wine: {path: wine.csv, label_column: target}\n"
        "  shuffled: {path: shuffled.csv, label_column: target}\n")
    env = {**os.environ, "DAGSTER_HOME": str(initialized_dagster_home(tmp_path / "home")),
           "CLUSTERING_DAG_CACHE_DIR": str(tmp_path / "cache"),
           "CLUSTERING_DAG_DATASETS": str(tmp_path / "datasets.yaml")}
    select = ",".join(f"*{v}/clustering_metrics" for v in VARIANTS)
    procs = [subprocess.Popen(
        [DAGSTER, "asset", "materialize", "-m", "clustering_dag.definitions", "--select", select,
         "--partition", p, "-c", str(brief_small_profile(tmp_path))],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for p in ("wine", "shuffled")]
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-4000:]
    cache = tmp_path / "cache"
    for variant in VARIANTS:
        real, blind = (pd.read_parquet(cache / variant / "cluster_assignments" / f"{p}.parquet")
                       for p in ("wine", "shuffled"))
        assert (real["label"] != blind["label"]).any()  # the labels did differ
        for space in SPACES:
            assert (real[space] == blind[space]).all(), f"{variant} {space} read the labels"
        metrics = [pd.read_parquet(cache / variant / "clustering_metrics" / f"{p}.parquet")
                   .set_index("representation") for p in ("wine", "shuffled")]
        internal = ["dbi", "silhouette", "chs"]
        pd.testing.assert_frame_equal(metrics[0][internal], metrics[1][internal])
        assert (metrics[0]["accuracy"] > metrics[1]["accuracy"]).all()  # scored against noise
