"""The invariance encoder and the augmentations it learns from, on real MNIST rows: each kind of
data gets its own transformations, one map per image (shared by an image and its target), seeded;
the trained encoder maps two views of one image closer than two images, its code clusters far
above chance, and its stored file gives the same code back."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clustering_dag.core.arrays import Splits
from clustering_dag.core.augment import KINDS, resolve, transform
from clustering_dag.core.configs import InvarianceConfig, VAEConfig
from clustering_dag.core.errors import DataError


@pytest.fixture(scope="module")
def mnist(data_dir) -> Splits:
    from clustering_dag.core.datasets import DATASETS
    from clustering_dag.core.idx import load_image_dataset

    return load_image_dataset(DATASETS["mnist"], Path(data_dir) / "mnist").head(3000, 1000)


def _tf():
    from clustering_dag.core.tf_env import tf

    return tf


def test_each_kind_transforms_as_it_says_and_one_map_serves_an_image_and_its_target(mnist):
    tf = _tf()
    x = mnist.train_x[:64]
    for kind in ("digits", "objects"):
        once = transform(tf.constant(x), kind, tf.constant([1, 2]), (28, 28)).numpy()
        again = transform(tf.constant(x), kind, tf.constant([1, 2]), (28, 28)).numpy()
        other = transform(tf.constant(x), kind, tf.constant([1, 3]), (28, 28)).numpy()
        assert once.shape == x.shape and np.array_equal(once, again) and not np.allclose(once, other)
        assert not np.allclose(once, x) and np.isfinite(once).all()
        pair = tf.constant(np.concatenate([x, 1 - x], 1))
        both = transform(pair, kind, tf.constant([1, 2]), (28, 28)).numpy()
        np.testing.assert_allclose(both[:, :784], once, atol=1e-5)  # the same map for both halves
    # Digits: shifts and small rotations keep the ink (no crop cuts it, no brightness scales it).
    digits = transform(tf.constant(x), "digits", tf.constant([1, 2]), (28, 28)).numpy()
    assert np.median(digits.sum(1) / x.sum(1)) == pytest.approx(1.0, abs=0.05)
    assert not KINDS["digits"].flip and KINDS["objects"].flip
    table = transform(tf.constant(x), "features", tf.constant([1, 2]), (28, 28)).numpy()
    assert np.array_equal(table, x)


def test_auto_is_the_dataset_s_kind_and_an_image_kind_is_refused_for_a_table(mnist):
    assert resolve("auto", mnist) == "digits"
    assert resolve("auto", replace(mnist, meta={**mnist.meta, "dataset": "fashion_mnist"})) == "objects"
    table = Splits(mnist.train_x[:10], None, mnist.test_x[:5], None, meta={})
    assert resolve("auto", table) == "features"
    with pytest.raises(DataError, match="transforms images"):
        resolve("objects", table)
    with pytest.raises(ValueError, match="augment must be one of"):
        InvarianceConfig(augment="mirror")
    with pytest.raises(ValueError, match="augment must be one of"):
        VAEConfig(augment="mirror")


def test_nt_xent_is_low_when_each_view_matches_its_partner():
    from clustering_dag.core.invariance import nt_xent

    tf = _tf()
    z = tf.constant(np.random.default_rng(0).normal(size=(32, 8)), tf.float32)
    shuffled = tf.gather(z, np.random.default_rng(1).permutation(32))
    assert float(nt_xent(z, z, 0.5)) < float(nt_xent(z, shuffled, 0.5))


@pytest.mark.slow
def test_the_encoder_learns_invariance_clusters_and_comes_back_from_its_file(mnist, tmp_path):
    from clustering_dag.core.clustering import fit_clusters
    from clustering_dag.core.configs import ClusterConfig
    from clustering_dag.core.invariance import encode, invariant_representation
    from clustering_dag.core.metrics import clustering_accuracy
    from clustering_dag.core.spaces import train_invariance
    from clustering_dag.core.trained import load_trained, save_trained

    tf = _tf()
    config = InvarianceConfig(epochs=6, batch_size=256, seed=3)
    trained = train_invariance(mnist, config)
    assert trained.config.augment == "digits" and trained.config.image_shape == (28, 28)
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]
    rep = invariant_representation(trained, mnist)
    assert rep.dim == 64 and np.allclose(np.linalg.norm(rep.test_x, axis=1), 1.0, atol=1e-4)
    # The objective, measured: two views of an image are closer than two different images.
    x = mnist.test_x[:500]
    views = transform(tf.constant(x), "digits", tf.constant([9, 9]), (28, 28)).numpy()
    code, viewed = encode(trained, x), encode(trained, views)
    same = (code * viewed).sum(1).mean()
    others = (code * np.roll(viewed, 1, axis=0)).sum(1).mean()
    assert same > others + 0.2
    clusters = fit_clusters(rep.train_x, ClusterConfig(n_init=3)).predict(rep.test_x)
    assert clustering_accuracy(rep.test_y, clusters) > 0.35  # chance: about 0.11
    save_trained(trained, str(tmp_path / "encoder.h5"), key="k")
    loaded = load_trained(str(tmp_path / "encoder.h5"))
    assert loaded.config == trained.config and loaded.diagnostics == trained.diagnostics
    np.testing.assert_allclose(encode(loaded, x), code, atol=1e-6)
    # Seeded: the same config trains the same encoder.
    np.testing.assert_allclose(encode(train_invariance(mnist, config), x), code, atol=1e-5)
