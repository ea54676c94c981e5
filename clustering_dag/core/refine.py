"""Self-labelling refinement, the last step of SCAN (Van Gansbeke et al. 2020): a classifier of
the raw (noisy) inputs, trained on the clusters it is given where they are surest, then on its
own surest predictions, and used to predict every row itself.

Round 1 learns from the manifold stage's fit rows that its mixture assigns most confidently (the
``confident_share`` of each cluster, so every cluster is taught); each next round learns from
every training row the classifier itself predicts with probability >= ``threshold``, and from the
most confident share of each cluster it predicts (so no cluster goes untaught). Inputs are
augmented while it learns (random shifts of an image, Gaussian noise), so it must recognise a
cluster, not memorise its rows. It is the one stored model that maps a raw input straight to a
cluster. No label is read: the targets are cluster numbers.
"""

from __future__ import annotations

import time

import numpy as np

from clustering_dag.core.arrays import Splits
from clustering_dag.core.configs import RefineConfig
from clustering_dag.core.errors import DataError
from clustering_dag.core.trained import TrainedModel


def confident_rows(clusters: np.ndarray, confidence: np.ndarray, share: float, k: int) -> np.ndarray:
    """Indices of the ``share`` most confident rows of each of the ``k`` clusters (at least one
    row of every non-empty cluster), sorted."""
    keep = []
    for c in range(k):
        members = np.flatnonzero(clusters == c)
        if len(members):
            n = max(1, int(round(share * len(members))))
            keep.append(members[np.argsort(-confidence[members], kind="stable")[:n]])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def train_classifier(config: RefineConfig, x: np.ndarray, rows: np.ndarray, targets: np.ndarray,
                     log=None, device: str = "/CPU:0") -> TrainedModel:
    """Train on inputs ``x[rows]`` with cluster numbers ``targets``, then ``rounds - 1`` times on
    the rows of ``x`` it predicts at least ``threshold`` surely, as it predicts them."""
    from clustering_dag.core.model import classifier
    from clustering_dag.core.tf_env import keras, tf

    say = log or (lambda _: None)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != config.input_dim:
        raise DataError(f"classifier inputs have shape {x.shape}; expected (n, {config.input_dim})")
    if config.conv and not config.image_shape:
        raise DataError("refined_classifier: conv layers need images, and this dataset is a table; "
                        "set conv to [] for it.")
    if len(rows) < config.n_clusters:
        raise DataError(f"only {len(rows)} confident rows to learn {config.n_clusters} clusters from")
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    with tf.device(device):
        return _train(config, classifier(config), x, rows, targets, say)


def _train(config: RefineConfig, model, x, rows, targets, say) -> TrainedModel:
    from clustering_dag.core.tf_env import keras

    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history, start = [], time.perf_counter()
    for round_ in range(1, config.rounds + 1):
        t0 = time.perf_counter()
        data, settings = _batches(config, x[rows], targets.astype(np.int64))
        fit = model.fit(*data, **settings, epochs=config.epochs, verbose=0)
        for epoch, (loss, acc) in enumerate(zip(fit.history["loss"], fit.history["accuracy"]), 1):
            history.append({"round": round_, "epoch": epoch, "loss": float(loss),
                            "agreement": float(acc), "rows": int(len(rows))})
        say(f"refinement round {round_}: {len(rows):,} rows, {config.epochs} epochs in "
            f"{time.perf_counter() - t0:.1f} s, final loss {history[-1]['loss']:.4f}")
        if round_ < config.rounds:
            probs = predict_proba(model, x)
            predicted, sureness = probs.argmax(1), probs.max(1)
            sure = np.union1d(np.flatnonzero(sureness >= config.threshold),
                              confident_rows(predicted, sureness, config.confident_share, config.n_clusters))
            rows, targets = sure, predicted[sure]
    trained = TrainedModel(model, config, history, time.perf_counter() - start)
    trained.diagnostics = {"rows_learned": int(len(rows))}
    return trained


def _batches(config: RefineConfig, x: np.ndarray, targets: np.ndarray) -> tuple:
    """``model.fit``'s data: the rows in shuffled batches, each batch's images transformed by
    ``config.augment`` (a kind of :mod:`clustering_dag.core.augment`) under a seed of its own."""
    from clustering_dag.core.augment import KINDS, transform
    from clustering_dag.core.tf_env import tf

    if config.augment == "none" or not config.image_shape or not KINDS[config.augment].geometric:
        return (x, targets), {"batch_size": config.batch_size, "shuffle": True}
    rows = tf.data.Dataset.from_tensor_slices((x, targets)).shuffle(
        len(x), seed=config.seed, reshuffle_each_iteration=True).batch(config.batch_size)
    seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
    batches = tf.data.Dataset.zip(rows, seeds).map(
        lambda xy, seed: (transform(xy[0], config.augment, seed, config.image_shape), xy[1]))
    return (batches.prefetch(2),), {}


def predict_proba(model, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Cluster probabilities (softmax of the classifier's logits) of ``x``, augmentation off."""
    from clustering_dag.core.tf_env import tf

    out = [tf.nn.softmax(model(tf.constant(x[i:i + chunk], tf.float32), training=False)).numpy()
           for i in range(0, len(x), chunk)]
    if not out:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    return np.concatenate(out).astype(np.float32)


def refine(config: RefineConfig, inputs: Splits, fit_rows: np.ndarray, fit_clusters: np.ndarray,
           fit_confidence: np.ndarray, log=None, device: str = "/CPU:0") -> TrainedModel:
    """The classifier of ``inputs`` (the noisy images) learned from the clusters of the training
    rows ``fit_rows`` (``fit_clusters``, surely as ``fit_confidence`` says)."""
    from dataclasses import replace

    from clustering_dag.core.augment import resolve

    config = replace(config, augment=resolve(config.augment, inputs))  # 'auto': the data's kind
    rows = confident_rows(fit_clusters, fit_confidence, config.confident_share, config.n_clusters)
    return train_classifier(config, inputs.train_x, fit_rows[rows], fit_clusters[rows], log, device)


def refined_representation(trained: TrainedModel, inputs: Splits) -> Splits:
    """The classifier's cluster probabilities of every training and test row: the ``refined``
    space, whose clusters are its most probable classes."""
    model = trained.model
    return inputs.with_x(predict_proba(model, inputs.train_x), predict_proba(model, inputs.test_x),
                         representation="refined")


def config_for(inputs: Splits, n_clusters: int, **settings) -> RefineConfig:
    """The classifier's config for ``inputs``: their width, image shape and cluster count."""
    shape = inputs.image_shape
    return RefineConfig(**settings, input_dim=inputs.dim, n_clusters=n_clusters,
                        image_shape=tuple(shape) if shape else None)
