"""The `elbo` VAE on feature tables: a likelihood that fits the data, KL warm-up, and posterior
collapse detected and explained at the training step.

The clustered table is the one that made the old recipe (Bernoulli likelihood on min-max-scaled
features, no warm-up) collapse: ten Gaussian clusters in 50 features (k-means on the raw features
is exact), where the old `elbo` put every test row into one cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_blobs

from clustering_dag.core.clustering import ClusterConfig, fit_clusters
from clustering_dag.core.metrics import label_metrics
from clustering_dag.core.noise import add_gaussian_noise
from clustering_dag.core.registry import UserDataset
from clustering_dag.core.trained import TrainedModel, collapse_diagnosis, load_trained
from clustering_dag.core.user_data import load_user_dataset
from clustering_dag.core.variants import VAEConfig, variant_config
from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests.conftest import initialized_dagster_home

DAGSTER = str(Path(sys.executable).with_name("dagster"))
OLD_ELBO = dict(likelihood="bernoulli", kl_warmup=0.0)  # the recipe that collapsed


def clustered_table(rows: int, seed: int = 0) -> pd.DataFrame:
    x, y = make_blobs(n_samples=rows, n_features=50, centers=10, cluster_std=2.5, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(50)])
    return frame.assign(label=y)


def as_dataset(frame: pd.DataFrame, path: Path):
    frame.to_parquet(path)
    return load_user_dataset("table", UserDataset(path=str(path), label_column="label"))


def latent_accuracy(trained, data, k: int) -> tuple[float, int]:
    """k-means fitted on the training codes, scored on the noisy test rows' codes."""
    from clustering_dag.core.vae import represent

    test_x = add_gaussian_noise(data.test_x, 0.05, seed=1)
    z_train, _ = represent(trained, data.train_x)
    z_test, _ = represent(trained, test_x)
    clusters = fit_clusters(z_train, ClusterConfig(n_clusters=k)).predict(z_test)
    return label_metrics(data.test_y, clusters)["accuracy"], len(np.unique(clusters))


def raw_accuracy(data, k: int) -> float:
    clusters = fit_clusters(data.train_x, ClusterConfig(n_clusters=k)).predict(
        add_gaussian_noise(data.test_x, 0.05, seed=1))
    return label_metrics(data.test_y, clusters)["accuracy"]


# --- fast: the likelihoods and the diagnosis -------------------------------------------------------


def test_likelihood_follows_the_data_and_the_paper_keeps_its_loss():
    assert variant_config("elbo", images=True).likelihood == "bernoulli"
    assert variant_config("elbo", images=False).likelihood == "gaussian"
    assert variant_config("elbo", images=False, likelihood="bernoulli").likelihood == "bernoulli"
    paper = variant_config("paper", images=False)
    assert (paper.likelihood, paper.kl_warmup, paper.free_bits) == ("clipped_bce", 0.0, 0.0)
    assert variant_config("elbo").kl_warmup > 0
    with pytest.raises(ValueError, match="kl_warmup"):
        VAEConfig(kl_warmup=1.5)
    with pytest.raises(ValueError, match="likelihood"):
        VAEConfig(likelihood="auto")  # resolved by variant_config, never stored


def test_gaussian_loss_is_the_normal_density_at_the_calibrated_scale():
    from scipy.stats import norm

    from clustering_dag.core.vae import MIN_SCALE, reconstruction_loss, tf

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 5)).astype(np.float32)
    out = x + rng.normal(0, [0.3, 0.1, 0.2, 0.01, 0.0], size=x.shape).astype(np.float32)
    scale = np.maximum(np.sqrt(((x - out) ** 2).mean(axis=0)), MIN_SCALE)
    expected = -norm.logpdf(x, loc=out, scale=scale).sum(axis=1)
    got = reconstruction_loss(tf.constant(x), tf.constant(out), "gaussian").numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert scale[-1] == MIN_SCALE  # an exact feature does not get an unbounded weight


def test_collapse_diagnosis_says_what_happened_and_what_to_try():
    cfg = variant_config("elbo", images=True, input_dim=50, kl_warmup=0.0)
    collapsed = {"active_dims": 0, "latent_dim": 10, "rows": 500, "mean_variance": [1e-7] * 10,
                 "kl_per_dim": [1e-6] * 10}
    text = collapse_diagnosis(TrainedModel(None, cfg, diagnostics=collapsed))
    assert "posterior collapse" in text and "none of the 10 latent dimensions" in text
    assert "likelihood: gaussian" in text and "kl_warmup" in text and "free_bits" in text
    healthy = {**collapsed, "active_dims": 3}
    assert collapse_diagnosis(TrainedModel(None, cfg, diagnostics=healthy)) is None


# --- slow: real training -------------------------------------------------------------------------


@pytest.mark.quality
def test_old_recipe_collapses_on_a_clustered_table_and_the_new_one_does_not(tmp_path):
    from clustering_dag.core.vae import train_vae

    data = as_dataset(clustered_table(30_000), tmp_path / "table.parquet")
    assert raw_accuracy(data, 10) > 0.99

    old = train_vae(variant_config("elbo", images=False, input_dim=50, **OLD_ELBO), data.train_x)
    assert old.diagnostics["active_dims"] == 0
    assert "posterior collapse" in collapse_diagnosis(old)
    assert latent_accuracy(old, data, 10)[0] < 0.5

    new = train_vae(variant_config("elbo", images=False, input_dim=50), data.train_x)
    assert new.config.likelihood == "gaussian"
    assert new.diagnostics["active_dims"] >= 2 and collapse_diagnosis(new) is None
    accuracy, used = latent_accuracy(new, data, 10)
    assert used == 10 and accuracy > 0.99
    # The warm-up: the KL weighs less than 1 in the first epoch and fully in the last.
    first, last = new.history[0], new.history[-1]
    assert first["loss"] < first["reconstruction"] + first["kl"] - 1e-3
    assert last["loss"] == pytest.approx(last["reconstruction"] + last["kl"], rel=1e-4, abs=1e-3)


@pytest.mark.quality
def test_elbo_latent_on_digits_uses_every_cluster_and_nears_the_raw_features(tmp_path):
    from clustering_dag.core.vae import train_vae

    digits = load_digits(as_frame=True).frame.rename(columns={"target": "label"})
    data = as_dataset(digits, tmp_path / "digits.parquet")  # a table: 64 features, Gaussian
    trained = train_vae(variant_config("elbo", images=False, input_dim=64, epochs=300, batch_size=32),
                        data.train_x)
    assert trained.config.likelihood == "gaussian" and trained.diagnostics["active_dims"] >= 5
    accuracy, used = latent_accuracy(trained, data, 10)
    raw = raw_accuracy(data, 10)
    assert used == 10
    assert accuracy > raw - 0.1 and accuracy > 0.5, (accuracy, raw)


@pytest.mark.quality
def test_collapse_stops_the_run_at_the_training_step_with_the_diagnosis(tmp_path):
    clustered_table(30_000).to_parquet(tmp_path / "table.parquet")
    (tmp_path / "datasets.yaml").write_text(
        "datasets:\n  table: {path: table.parquet, label_column: label}\n")
    old = tmp_path / "old.yaml"
    old.write_text("ops:\n  elbo__trained_vae:\n    config: {likelihood: bernoulli, kl_warmup: 0.0}\n")
    env = {**os.environ, "DAGSTER_HOME": str(initialized_dagster_home(tmp_path / "home")),
           "CLUSTERING_DAG_CACHE_DIR": str(tmp_path / "cache"),
           "CLUSTERING_DAG_DATASETS": str(tmp_path / "datasets.yaml")}

    def materialize(*config: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "clustering_dag.definitions", "--partition", "table",
             "--select", "raw_dataset,noisy_dataset,elbo/trained_vae,elbo/latent_representation,"
             "elbo/reconstructed_representation",
             *config], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)

    failed = materialize("-c", str(old))
    log = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "posterior collapse: none of the 10 latent dimensions is active" in log
    assert "likelihood: gaussian" in log  # what to try
    assert not (tmp_path / "cache" / "elbo" / "latent_representation" / "table.parquet").exists()

    fixed = materialize()  # the default: a Gaussian likelihood with KL warm-up
    assert fixed.returncode == 0, (fixed.stdout + fixed.stderr)[-3000:]
    model = load_trained(str(tmp_path / "cache" / "elbo" / "trained_vae" / "table.weights.h5"))
    assert model.config.likelihood == "gaussian" and model.diagnostics["active_dims"] >= 2
    assert (tmp_path / "cache" / "elbo" / "latent_representation" / "table.parquet").stat().st_size > 0


def test_metric_checks_say_which_space_lost_clusters_and_what_to_try():
    from clustering_dag.defs.assets.clustering import metric_checks

    frame = pd.DataFrame({"representation": ["original", "reconstructed", "latent"],
                          "dbi": [1.2, 1.1, float("nan")], "silhouette": [0.1, 0.2, float("nan")],
                          "chs": [300.0, 400.0, float("nan")], "n_clusters_used": [10, 10, 1],
                          "min_cluster_size": [40, 35, 0]})
    checks = {c.check_name: c for c in metric_checks(frame, 10)}
    assert not checks["metrics_finite"].passed and not checks["clusters_non_empty"].passed
    text = checks["clusters_non_empty"].description
    assert "the latent space puts the test rows into 1 of 10 clusters" in text
    assert "latent_code_used" in text and "likelihood: gaussian" in text
    assert "latent.dbi" in checks["metrics_finite"].description
    assert checks["latent_beats_original"].severity.value == "WARN"
