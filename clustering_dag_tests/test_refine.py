"""The manifold stage's restarts and their label-free choice, the mixture's confidence, and the
self-labelling classifier, on real small data (scikit-learn's digits) and exact toy cases."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from clustering_dag.core.arrays import Splits
from clustering_dag.core.clustering import fit_clusters
from clustering_dag.core.configs import ClusterConfig, ManifoldConfig, RefineConfig
from clustering_dag.core.errors import DataError
from clustering_dag.core.manifold import agreement, embed, fit_sample
from clustering_dag.core.metrics import clustering_accuracy
from clustering_dag.core.refine import confident_rows, config_for, refine, refined_representation


@pytest.fixture(scope="module")
def digits() -> Splits:
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1400], order[1400:]
    return Splits(x[train], data.target[train], x[test], data.target[test],
                  meta={"image_shape": [8, 8], "n_clusters": 10})


def test_agreement_is_mean_ari_with_the_other_partitions():
    a = np.array([0, 0, 1, 1, 2, 2])
    same, relabelled, other = a, np.array([2, 2, 0, 0, 1, 1]), np.array([0, 1, 0, 1, 0, 1])
    scores = agreement([same, relabelled, other])
    assert scores[0] == pytest.approx(scores[1]) and scores[2] < scores[0]
    assert agreement([a]).tolist() == [1.0]


def test_fit_sample_is_seeded_sorted_and_all_rows_when_small():
    cfg = ManifoldConfig(fit_rows=50)
    rows = fit_sample(200, cfg)
    assert len(rows) == 50 and (np.diff(rows) > 0).all()
    assert (rows == fit_sample(200, cfg)).all()
    assert (fit_sample(40, cfg) == np.arange(40)).all()


def test_confident_rows_keep_a_share_of_every_cluster():
    clusters = np.array([0] * 6 + [1] * 4 + [2])
    confidence = np.linspace(0.1, 1.0, len(clusters))
    rows = confident_rows(clusters, confidence, 0.5, 3)
    assert rows.tolist() == [3, 4, 5, 8, 9, 10]  # the top half of each, the lone row of cluster 2


def test_mixture_confidence_is_its_posterior():
    from sklearn.mixture import GaussianMixture

    x = np.random.default_rng(0).normal(size=(300, 2)) + np.repeat([[0, 0], [6, 0], [0, 6]], 100, axis=0)
    cfg = ClusterConfig(method="gmm", n_clusters=3, covariance_type="full", n_init=2)
    model = fit_clusters(x, cfg)
    reference = GaussianMixture(3, covariance_type="full", n_init=2, random_state=cfg.seed,
                                reg_covar=cfg.reg_covar, max_iter=cfg.max_iter).fit(x)
    np.testing.assert_allclose(model.confidence(x), reference.predict_proba(x).max(1), atol=1e-6)
    km = fit_clusters(x, ClusterConfig(n_clusters=3, n_init=2))
    sure = km.confidence(x)
    assert ((sure >= 0) & (sure <= 1)).all() and sure[:100].mean() > 0.5


@pytest.mark.slow
def test_restarts_choose_without_labels_and_the_classifier_learns_the_clusters(digits):
    cfg = ManifoldConfig(n_neighbors=15, fit_rows=1000, restarts=3, n_epochs=200)
    embedded = embed(digits, cfg)
    assert embedded.meta["restart_seeds"] == [cfg.seed, cfg.seed + 1, cfg.seed + 2]
    assert embedded.meta["chosen_seed"] == cfg.seed + int(np.argmax(embedded.meta["restart_agreement"]))
    assert len(embedded.train_x) == 1000 and embedded.test_x.shape == (len(digits.test_x), 10)
    # Labels never enter: the same codes with their labels shuffled embed identically.
    blind = Splits(digits.train_x, np.random.default_rng(1).permutation(digits.train_y), digits.test_x,
                   np.random.default_rng(2).permutation(digits.test_y), meta=digits.meta)
    np.testing.assert_array_equal(embed(blind, cfg).test_x, embedded.test_x)

    mixture = fit_clusters(embedded.train_x, ClusterConfig(method="gmm", covariance_type="full", n_init=3))
    manifold_acc = clustering_accuracy(digits.test_y, mixture.predict(embedded.test_x))
    refine_cfg = config_for(digits, 10, epochs=20, shift=0.125)
    assert refine_cfg.image_shape == (8, 8) and refine_cfg.input_dim == 64
    trained = refine(refine_cfg, digits, fit_sample(len(digits.train_x), cfg),
                     mixture.predict(embedded.train_x), mixture.confidence(embedded.train_x))
    refined = refined_representation(trained, digits)
    assert refined.test_x.shape == (len(digits.test_x), 10)
    np.testing.assert_allclose(refined.test_x.sum(1), 1.0, atol=1e-5)
    refined_clusters = refined.test_x.argmax(1)
    refined_acc = clustering_accuracy(digits.test_y, refined_clusters)
    # It learned the mixture's clusters (no label was given) and recognises them on unseen rows.
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(mixture.predict(embedded.test_x), refined_clusters) > 0.5
    assert manifold_acc > 0.7 and refined_acc > 0.6, (manifold_acc, refined_acc)
    assert {r["round"] for r in trained.history} == {1, 2}


def test_refine_config_checks_and_round_trips():
    cfg = RefineConfig(hidden=(32,), image_shape=(8, 8), input_dim=64)
    assert RefineConfig.from_json(cfg.to_json()) == cfg
    for bad in ({"confident_share": 0}, {"threshold": 1.0}, {"rounds": 0}, {"shift": 0.6}):
        with pytest.raises(ValueError):
            RefineConfig(**bad)
    with pytest.raises(ValueError, match="augment"):
        RefineConfig(augment="mirror")


def test_a_small_cnn_learns_the_clusters_through_the_data_s_augmentations(digits):
    """With ``augment`` and ``conv``: the kind of data's transformations on every batch (not the
    shift layer), a convolutional network, the same weights under the same seed; a table cannot
    have convolutions."""
    from clustering_dag.core.model import classifier

    cfg = config_for(digits, 10, epochs=15, batch_size=64, rounds=1, augment="auto", conv=(8,), hidden=(32,))
    layers = [type(layer).__name__ for layer in classifier(cfg).layers]
    assert layers[:3] == ["GaussianNoise", "Reshape", "Conv2D"]  # no shift layer: the batches are transformed
    rows = np.arange(len(digits.train_x))
    sure = np.ones(len(rows))
    first = refine(cfg, digits, rows, digits.train_y, sure)  # the clusters to learn: here, the digits
    assert first.config.augment == "digits"  # 'auto': an image dataset's own kind
    probs = refined_representation(first, digits).test_x
    assert clustering_accuracy(digits.test_y, probs.argmax(1)) > 0.6
    again = refined_representation(refine(cfg, digits, rows, digits.train_y, sure), digits).test_x
    np.testing.assert_allclose(again, probs, atol=1e-5)
    table = Splits(digits.train_x, None, digits.test_x, None, meta={"n_clusters": 10})
    with pytest.raises(DataError, match="conv layers need images"):
        refine(config_for(table, 10, epochs=1, conv=(8,)), table, rows, digits.train_y, sure)
