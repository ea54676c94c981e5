"""The VAE as a Keras model: encoder -> q(z|x), decoder -> the parameters of p(x|z), a standard
normal prior (TensorFlow Probability). Training and use: :mod:`clustering_dag.core.vae`; the stored
file: :mod:`clustering_dag.core.trained`."""

from __future__ import annotations

from clustering_dag.core.tf_env import keras, tf, tfd
from clustering_dag.core.variants import VAEConfig


class VAE(keras.Model):
    """Encoder -> q(z|x) = N(mu, diag(sigma^2)); decoder -> logits (Bernoulli) or mean (Gaussian)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        dense = keras.layers.Dense
        self.encoder = keras.Sequential(
            [dense(h, activation="relu") for h in config.hidden]
            + [dense(2 * config.latent_dim, dtype="float32")], name="encoder")
        self.decoder = keras.Sequential(
            [dense(h, activation="relu") for h in reversed(config.hidden)]
            + [dense(config.input_dim, dtype="float32")], name="decoder")
        self.encoder.build((None, config.input_dim))
        self.decoder.build((None, config.latent_dim))
        zeros = tf.zeros(config.latent_dim)
        self.prior = tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))

    def encode(self, x) -> tuple[tf.Tensor, tf.Tensor]:
        """Location and scale of q(z|x)."""
        loc, log_var = tf.split(self.encoder(x), 2, axis=-1)
        return loc, tf.exp(0.5 * log_var)

    def posterior(self, x) -> tfd.Distribution:
        loc, scale = self.encode(x)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)

    def mean_of(self, out):
        """E[x|z] from the decoder's output: sigmoid(logits), or the Gaussian mean itself."""
        return out if self.config.likelihood == "gaussian" else tf.sigmoid(out)

    def call(self, x):
        return self.decoder(self.posterior(x).mean())

    def get_config(self) -> dict:
        return {"config": self.config.to_json()}  # what the model is; its weights are saved apart


def build_with_weights(config: VAEConfig, path: str) -> VAE:
    """A model of ``config`` with the weights stored in ``path`` (see
    :func:`~clustering_dag.core.trained.load_trained`, which reads the rest of the file without
    TensorFlow)."""
    model = VAE(config)
    model.load_weights(path)
    return model
