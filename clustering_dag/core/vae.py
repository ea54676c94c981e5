"""A variational autoencoder in TensorFlow Probability, and the two ways the project trains it.

The encoder maps an input to a diagonal-Gaussian posterior q(z|x); the decoder maps a code z to
the parameters of p(x|z) (Bernoulli logits, or a Gaussian mean); the prior is a standard normal.
The loss is

    reconstruction(x, decoder(z ~ q(z|x))) + beta_t * KL(q(z|x) || p(z))

with the KL from TFP, beta_t rising linearly to beta over the config's ``kl_warmup`` share of the
steps, and an optional free-bits floor per latent dimension. The training variants, ``paper``, ``elbo``
and ``dae``, and the config live in :mod:`clustering_dag.core.variants`, which needs no TensorFlow;
the Keras model itself in :mod:`clustering_dag.core.model`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from clustering_dag.core.arrays import Splits
from clustering_dag.core.augment import transform
from clustering_dag.core.model import VAE
from clustering_dag.core.tf_env import keras, tf, tfd
from clustering_dag.core.trained import TrainedModel
from clustering_dag.core.variants import VARIANTS, VAEConfig, variant_config

BCE_EPSILON = 1e-7  # the clip Keras 2 applies inside binary_crossentropy
MIN_SCALE = 0.05  # floor of the Gaussian decoder's calibrated scale (data span about [0, 1])
ACTIVE_VARIANCE = 0.01  # a latent dimension is active when Var_x E[z|x] exceeds this (Burda et al.)


def reconstruction_loss(x, out, likelihood: str):
    """Per-example reconstruction loss (negative log-likelihood) of targets ``x`` given the
    decoder's output ``out`` (logits, or the Gaussian mean)."""
    if likelihood == "clipped_bce":
        p = tf.clip_by_value(tf.sigmoid(out), BCE_EPSILON, 1.0 - BCE_EPSILON)
        return -tf.reduce_mean(x * tf.math.log(p) + (1.0 - x) * tf.math.log(1.0 - p), axis=-1)
    if likelihood == "mse":
        return tf.reduce_mean(tf.square(x - out), axis=-1)
    if likelihood == "gaussian":
        # The one scale that maximises the likelihood of this batch (sigma-VAE's calibrated
        # decoder): the root-mean-square error, floored, held constant for the gradient. One scale
        # for all features, so that near-constant features do not take over the loss.
        scale = tf.stop_gradient(tf.maximum(
            tf.sqrt(tf.reduce_mean(tf.square(x - out), axis=0)), MIN_SCALE))
        return -tfd.Independent(tfd.Normal(out, scale), reinterpreted_batch_ndims=1).log_prob(x)
    return -tfd.Independent(tfd.Bernoulli(logits=out), reinterpreted_batch_ndims=1).log_prob(x)


def kl_per_dimension(model: VAE, x):
    """KL(q(z|x) || p(z)) of each latent dimension, averaged over the batch (shape: latent_dim);
    zeros for a deterministic encoder, which has no prior to diverge from."""
    loc, scale = model.encode(x)
    if model.config.deterministic:
        return tf.zeros(model.config.latent_dim)
    return tf.reduce_mean(tfd.kl_divergence(tfd.Normal(loc, scale), tfd.Normal(0.0, 1.0)), axis=0)


def loss_terms(model: VAE, x, target, seed, beta=None):
    """(loss, reconstruction, kl), each averaged over the batch; z is sampled with ``seed``.
    ``beta`` (default: the config's) weighs the KL, floored per dimension at ``free_bits``."""
    cfg = model.config
    q = model.posterior(x)
    out = model.decoder(q.sample(seed=seed))
    rec = tf.reduce_mean(reconstruction_loss(target, out, cfg.likelihood))
    if cfg.deterministic:
        return rec, rec, tf.zeros(())
    if cfg.free_bits > 0:
        per_dim = kl_per_dimension(model, x)
        kl, penalised = tf.reduce_sum(per_dim), tf.reduce_sum(tf.maximum(per_dim, cfg.free_bits))
    else:
        kl = penalised = tf.reduce_mean(tfd.kl_divergence(q, model.prior))
    return rec + (cfg.beta if beta is None else beta) * penalised, rec, kl


def train_vae(config: VAEConfig, x: np.ndarray, device: str = "/CPU:0",
              on_epoch: Callable[[dict], None] | None = None,
              targets: np.ndarray | None = None) -> TrainedModel:
    """Train on ``x`` (float32, n x input_dim) to output ``targets`` (the inputs themselves unless
    given: a denoising autoencoder's are the clean rows of its noisy inputs).

    Batches come from memory: one compiled function runs a whole epoch, shuffling *indices*
    (seeded per epoch) and gathering each batch from the resident array. This measured 1.45 s per
    epoch on 2 CPU cores against 2.2 s for a ``tf.data`` pipeline iterated inside the function.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != config.input_dim:
        raise ValueError(f"training data has shape {x.shape}; the model expects (n, {config.input_dim})")
    if not np.isfinite(x).all():
        raise ValueError("training data contains NaN or Inf")
    targets = x if targets is None else np.ascontiguousarray(targets, dtype=np.float32)
    if targets.shape != x.shape:
        raise ValueError(f"targets have shape {targets.shape}, the inputs {x.shape}")
    n = len(x)
    steps = n // config.batch_size
    if steps == 0:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {n} training rows")

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    with tf.device(device):
        model = VAE(config)
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
        mixed = keras.mixed_precision.global_policy().name == "mixed_float16"
        if mixed:
            optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        data = tf.constant(x)
        wanted = data if targets is x else tf.constant(targets)
        sampler = tf.random.Generator.from_seed(config.seed)
        bs = config.batch_size
        augment = config.augment not in ("none", "features") and config.image_shape
        warmup_steps = config.kl_warmup * config.epochs * steps

        @tf.function
        def train_epoch(epoch):
            # Shuffle indices, not rows, and run the whole epoch in one graph: no Python per batch.
            perm = tf.random.experimental.stateless_shuffle(
                tf.range(n), seed=tf.stack([config.seed, epoch]))
            totals = tf.zeros(3)
            for i in tf.range(steps):
                rows = perm[i * bs:(i + 1) * bs]
                batch, target = tf.gather(data, rows), tf.gather(wanted, rows)
                if augment:  # one random map per row, the same for its input and its target
                    both = transform(tf.concat([batch, target], 1), config.augment,
                                     tf.stack([config.seed, epoch * 100_003 + i]), config.image_shape)
                    batch, target = both[:, :config.input_dim], both[:, config.input_dim:]
                beta = config.beta
                if warmup_steps > 0:  # KL warm-up: the weight rises linearly over the first steps
                    done = tf.cast((epoch - 1) * steps + i + 1, tf.float32)
                    beta = config.beta * tf.minimum(1.0, done / warmup_steps)
                with tf.GradientTape() as tape:
                    loss, rec, kl = loss_terms(
                        model, batch, target, tf.cast(sampler.make_seeds(1)[:, 0], tf.int32), beta)
                    scaled = optimizer.get_scaled_loss(loss) if mixed else loss
                grads = tape.gradient(scaled, model.trainable_variables)
                if mixed:
                    grads = optimizer.get_unscaled_gradients(grads)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                totals += tf.stack([loss, rec, kl])
            return totals / tf.cast(steps, tf.float32)

        history = []
        start = time.perf_counter()
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            loss, rec, kl = (float(v) for v in train_epoch(tf.constant(epoch)).numpy())
            seconds = time.perf_counter() - t0
            if not np.isfinite(loss):
                raise FloatingPointError(f"training diverged at epoch {epoch}: loss = {loss}")
            row = {"epoch": epoch, "loss": loss, "reconstruction": rec, "kl": kl,
                   "seconds": seconds, "samples_per_s": steps * config.batch_size / seconds}
            history.append(row)
            if on_epoch:
                on_epoch(row)
        seconds = time.perf_counter() - start
        trained = TrainedModel(model, config, history, seconds)
        trained.diagnostics = latent_activity(trained, x)
    return trained


def latent_activity(trained: TrainedModel, x: np.ndarray, rows: int = 10_000) -> dict:
    """How much of the latent code the model uses, on up to ``rows`` rows of ``x``: the variance
    across rows of each dimension's posterior mean (a dimension is *active* above
    ``ACTIVE_VARIANCE``, Burda et al. 2016) and each dimension's mean KL from the prior."""
    model = trained.model
    sample = x[np.random.default_rng(trained.config.seed).permutation(len(x))[:rows]]
    locs, kls = [], []
    for start in range(0, len(sample), 8192):
        chunk = tf.constant(sample[start:start + 8192], tf.float32)
        locs.append(model.encode(chunk)[0].numpy())
        kls.append(kl_per_dimension(model, chunk).numpy() * len(chunk))
    variance = np.concatenate(locs).var(axis=0)
    kl = np.sum(kls, axis=0) / len(sample)
    return {"active_dims": int((variance > ACTIVE_VARIANCE).sum()), "latent_dim": len(variance),
            "mean_variance": [round(float(v), 6) for v in variance],
            "kl_per_dim": [round(float(v), 6) for v in kl], "rows": len(sample)}


def represent(trained: TrainedModel, x: np.ndarray, seed: int | None = None,
              chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """(latent code, reconstruction) of ``x``.

    The code is a seeded sample of q(z|x) or its mean, per the config; the reconstruction is
    E[x | code], so the two always describe the same point.
    """
    model, cfg = trained.model, trained.config
    seed = cfg.seed if seed is None else seed
    codes, recons = [], []
    for i, start in enumerate(range(0, len(x), chunk)):
        q = model.posterior(tf.constant(x[start:start + chunk], tf.float32))
        z = q.sample(seed=tf.constant([seed, i], tf.int32)) if cfg.code == "sample" else q.mean()
        codes.append(z.numpy())
        recons.append(model.mean_of(model.decoder(z)).numpy())
    if not codes:
        return np.zeros((0, cfg.latent_dim), np.float32), np.zeros((0, cfg.input_dim), np.float32)
    return np.concatenate(codes).astype(np.float32), np.concatenate(recons).astype(np.float32)


def representations(trained: TrainedModel, raw: Splits, noisy: Splits, **meta) -> tuple[Splits, Splits]:
    """The VAE's two representations of a dataset, (reconstructed, latent): of the training images
    it was trained on (noisy or clean, per its config) and of the noisy test images, with the
    test code sampled under another seed than the training code; ``meta`` joins their metadata."""
    cfg = trained.config
    z_train, r_train = represent(trained, cfg.training_data(raw, noisy).train_x, seed=cfg.seed)
    z_test, r_test = represent(trained, noisy.test_x, seed=cfg.seed + 1)
    for name, arr in (("latent code", z_test), ("reconstruction", r_test)):
        if not np.isfinite(arr).all():
            raise FloatingPointError(f"the {name} of the test set has NaN/Inf values")
    return (noisy.with_x(r_train, r_test, representation="reconstructed", **meta),
            noisy.with_x(z_train, z_test, representation="latent", **meta))


def decode(trained: TrainedModel, z: np.ndarray) -> np.ndarray:
    """E[x|z] (pixel probabilities, for the Bernoulli likelihoods) for latent codes ``z``."""
    model = trained.model
    return model.mean_of(model.decoder(tf.constant(z, tf.float32))).numpy()


__all__ = ["VAEConfig", "VARIANTS", "variant_config", "VAE", "TrainedModel", "train_vae",
           "represent", "representations", "decode", "loss_terms", "latent_activity"]
