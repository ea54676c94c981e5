"""A representation learned for invariance rather than reconstruction (SimCLR, Chen et al. 2020):
an encoder sees two randomly augmented views of each training image and learns to map them close
together and away from the other images of the batch (the NT-Xent loss on a projection head's
output). The augmentations say what should not matter, per kind of data
(:mod:`clustering_dag.core.augment`): for clothes a crop, a flip or a change of brightness, for
digits a small shift or rotation. The code clustered is the encoder's output, L2-normalised (the
loss compares directions).

No label is read: the targets are "which two views come from the same image".
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from clustering_dag.core.arrays import Splits
from clustering_dag.core.configs import InvarianceConfig
from clustering_dag.core.errors import DataError
from clustering_dag.core.tf_env import keras, tf
from clustering_dag.core.trained import TrainedModel


def network(config: InvarianceConfig):
    """Encoder (input -> code, a multi-layer perceptron) then projection head (code -> the space the
    loss is taken in), as one model whose first layer is the encoder (:func:`encoder_of`)."""
    dense = keras.layers.Dense
    encoder = keras.Sequential(
        [dense(h, activation="relu") for h in config.hidden] + [dense(config.code_dim, dtype="float32")],
        name="encoder")
    head = keras.Sequential(
        [dense(h, activation="relu") for h in config.head[:-1]] + [dense(config.head[-1], dtype="float32")],
        name="head")
    model = keras.Sequential([encoder, head], name="invariance")
    model.build((None, config.input_dim))
    return model


def encoder_of(model):
    return model.layers[0]


def nt_xent(z1, z2, temperature: float):
    """The normalised-temperature cross-entropy of two batches of views (row i of each is one
    image): each view must pick its partner among the other 2n - 1."""
    z = tf.math.l2_normalize(tf.concat([z1, z2], 0), axis=1)
    n = tf.shape(z1)[0]
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    logits -= tf.eye(2 * n) * 1e9  # a view is not its own partner
    partners = tf.concat([tf.range(n, 2 * n), tf.range(n)], 0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(partners, logits))


def train_encoder(config: InvarianceConfig, x: np.ndarray, kind: str, device: str = "/CPU:0",
                  on_epoch: Callable[[dict], None] | None = None) -> TrainedModel:
    """Train on the rows ``x`` (float32, n x input_dim) with the augmentations of ``kind``; as
    :func:`clustering_dag.core.vae.train_vae`, one compiled function per epoch over resident data,
    shuffling indices with a seed per epoch."""
    from clustering_dag.core.augment import transform

    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != config.input_dim:
        raise DataError(f"training data has shape {x.shape}; the encoder expects (n, {config.input_dim})")
    n, bs = len(x), min(config.batch_size, len(x))
    steps = n // bs
    if bs < 2:
        raise DataError(f"the invariance encoder needs at least 2 training rows, got {n}")
    shape = config.image_shape
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    with tf.device(device):
        model = network(config)
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
        optimizer.build(model.trainable_variables)
        data = tf.constant(x)

        def view(batch, seed):
            if shape:
                batch = transform(batch, kind, seed, shape)
            if config.noise > 0:
                batch += config.noise * tf.random.stateless_normal(tf.shape(batch), seed + 7)
            return batch

        @tf.function
        def train_epoch(epoch):
            perm = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([config.seed, epoch]))
            total = tf.zeros(())
            for i in tf.range(steps):
                batch = tf.gather(data, perm[i * bs:(i + 1) * bs])
                step = (epoch * 100_003 + i) * 2
                with tf.GradientTape() as tape:
                    loss = nt_xent(model(view(batch, tf.stack([config.seed, step]))),
                                   model(view(batch, tf.stack([config.seed, step + 1]))),
                                   config.temperature)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                total += loss
            return total / tf.cast(steps, tf.float32)

        history, start = [], time.perf_counter()
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            loss = float(train_epoch(tf.constant(epoch)).numpy())
            if not np.isfinite(loss):
                raise FloatingPointError(f"training diverged at epoch {epoch}: loss = {loss}")
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch, "loss": loss, "seconds": seconds, "samples_per_s": steps * bs / seconds}
            history.append(row)
            if on_epoch:
                on_epoch(row)
        trained = TrainedModel(model, config, history, time.perf_counter() - start)
        trained.diagnostics = {"augment": kind, "rows": n}
    return trained


def encode(trained: TrainedModel, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """The L2-normalised code of the rows ``x``."""
    encoder = encoder_of(trained.model)
    codes = [tf.math.l2_normalize(encoder(tf.constant(x[i:i + chunk], tf.float32)), axis=1).numpy()
             for i in range(0, len(x), chunk)]
    if not codes:
        return np.zeros((0, trained.config.code_dim), np.float32)
    return np.concatenate(codes).astype(np.float32)


def invariant_representation(trained: TrainedModel, noisy: Splits) -> Splits:
    """The code of every noisy training and test row."""
    test = encode(trained, noisy.test_x)
    if not np.isfinite(test).all():
        raise FloatingPointError("the invariance code of the test set has NaN/Inf values")
    return noisy.with_x(encode(trained, noisy.train_x), test, representation="invariant")
