"""The VAE as a Keras model: encoder -> q(z|x), decoder -> the parameters of p(x|z), a standard
normal prior (TensorFlow Probability); with ``deterministic`` in its config, a plain autoencoder
whose q(z|x) is a point mass at the encoder's output. Training and use:
:mod:`clustering_dag.core.vae`; the stored file: :mod:`clustering_dag.core.trained`."""

from __future__ import annotations

from clustering_dag.core.configs import RefineConfig
from clustering_dag.core.tf_env import keras, tf, tfd
from clustering_dag.core.variants import VAEConfig


class VAE(keras.Model):
    """Encoder -> q(z|x) = N(mu, diag(sigma^2)), or the point mass at mu (``deterministic``: a
    linear code); decoder -> logits (Bernoulli) or the mean (Gaussian, squared error)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        dense = keras.layers.Dense
        self.encoder = keras.Sequential(
            [dense(h, activation="relu") for h in config.hidden]
            + [dense((1 if config.deterministic else 2) * config.latent_dim, dtype="float32")],
            name="encoder")
        self.decoder = keras.Sequential(
            [dense(h, activation="relu") for h in reversed(config.hidden)]
            + [dense(config.input_dim, dtype="float32")], name="decoder")
        self.encoder.build((None, config.input_dim))
        self.decoder.build((None, config.latent_dim))
        zeros = tf.zeros(config.latent_dim)
        self.prior = tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))

    def encode(self, x) -> tuple[tf.Tensor, tf.Tensor]:
        """Location and scale of q(z|x) (scale 0 for a deterministic encoder)."""
        if self.config.deterministic:
            loc = self.encoder(x)
            return loc, tf.zeros_like(loc)
        loc, log_var = tf.split(self.encoder(x), 2, axis=-1)
        return loc, tf.exp(0.5 * log_var)

    def posterior(self, x) -> tfd.Distribution:
        loc, scale = self.encode(x)
        if self.config.deterministic:
            return tfd.VectorDeterministic(loc=loc)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)

    def mean_of(self, out):
        """E[x|z] from the decoder's output: sigmoid(logits), or the mean itself."""
        return out if self.config.likelihood in ("gaussian", "mse") else tf.sigmoid(out)

    def call(self, x):
        return self.decoder(self.posterior(x).mean())

    def get_config(self) -> dict:
        return {"config": self.config.to_json()}  # what the model is; its weights are saved apart


def classifier(config: RefineConfig) -> keras.Sequential:
    """The self-labelling classifier (:mod:`clustering_dag.core.refine`): raw input -> cluster
    logits, a multi-layer perceptron, after a small convolutional network where ``conv`` asks for
    one. Its augmentations are layers active only in training: random shifts of an image
    (``shift``, when no other ``augment`` replaces them) and Gaussian noise on the input
    (``noise``)."""
    layers = keras.layers
    steps = []
    if config.image_shape and config.shift > 0 and config.augment == "none":
        steps += [layers.Reshape((*config.image_shape, 1)),
                  layers.RandomTranslation(config.shift, config.shift, fill_mode="constant",
                                           seed=config.seed),
                  layers.Flatten()]
    if config.noise > 0:
        steps.append(layers.GaussianNoise(config.noise, seed=config.seed))
    if config.conv:
        steps.append(layers.Reshape((*config.image_shape, 1)))
        for filters in config.conv:
            steps += [layers.Conv2D(filters, 3, padding="same", activation="relu"), layers.MaxPooling2D(2)]
        steps.append(layers.Flatten())
    steps += [layers.Dense(h, activation="relu") for h in config.hidden]
    steps.append(layers.Dense(config.n_clusters, dtype="float32"))
    model = keras.Sequential(steps, name="classifier")
    model.build((None, config.input_dim))
    return model


def build_with_weights(config, path: str):
    """A model of ``config`` (a VAE, the classifier or the invariance encoder) with the weights
    stored in ``path`` (see
    :func:`~clustering_dag.core.trained.load_trained`, which reads the rest of the file without
    TensorFlow)."""
    from clustering_dag.core.configs import InvarianceConfig

    if isinstance(config, InvarianceConfig):
        from clustering_dag.core.invariance import network

        model = network(config)
    else:
        model = classifier(config) if isinstance(config, RefineConfig) else VAE(config)
    model.load_weights(path)
    return model
