"""The three training variants of the autoencoder, without TensorFlow (the spaces the pipeline
clusters are :mod:`clustering_dag.core.spaces`).
Importing this costs nothing, so the Dagster layer can name variants and configs without loading
TensorFlow (that happens in :mod:`clustering_dag.core.vae`); the config is
:class:`~clustering_dag.core.configs.VAEConfig`.

- ``paper`` reproduces what the authors' code trained: beta = 0 (their KL never reached the loss),
  binary cross-entropy averaged over pixels with the probabilities clipped to [1e-7, 1 - 1e-7]
  (their targets are noisy images outside [0, 1], where unclipped BCE is unbounded below), and
  a *sampled* z as the latent code.
- ``elbo`` is a proper VAE: beta = 1 reached by a KL warm-up over the first fifth of training, a
  likelihood that fits the data (Bernoulli for images in [0, 1], Gaussian for feature tables),
  trained on the clean inputs, posterior mean as the latent code.

The likelihoods: ``clipped_bce`` (the paper's loss), ``bernoulli`` (summed over features; pixels in
[0, 1]) and ``gaussian`` (summed over features, with the decoder's scale calibrated to the
reconstruction error of each batch, as in sigma-VAE, Rybkin et al. 2021, so that the
reconstruction term keeps its weight against the KL on continuous data). ``auto`` resolves to
``bernoulli`` for images and ``gaussian`` otherwise.
- ``dae`` is a representation learned for clustering, as in N2D and DEC: a deterministic
  denoising autoencoder (no KL, linear 10-d code, N2D's 500-500-2000 layers) that learns to map
  the noisy training images to the clean ones under squared error.
"""

from __future__ import annotations

from clustering_dag.core.configs import LIKELIHOODS, VAEConfig

# Epochs of the denoising autoencoder (about 9 s each on 60,000 images on 2 CPU cores).
DAE_EPOCHS = 10

__all__ = ["LIKELIHOODS", "VAEConfig", "VARIANTS", "variant_config"]

VARIANTS: dict[str, dict] = {
    "paper": dict(beta=0.0, likelihood="clipped_bce", code="sample", train_on_noisy=True),
    "elbo": dict(beta=1.0, likelihood="auto", code="mean", train_on_noisy=False, kl_warmup=0.2),
    "dae": dict(beta=0.0, likelihood="mse", code="mean", train_on_noisy=True, denoising=True,
                deterministic=True, hidden=(500, 500, 2000), epochs=DAE_EPOCHS, batch_size=256),
}


def variant_config(variant: str, images: bool = True, **overrides) -> VAEConfig:
    """The variant's config with ``overrides``; ``likelihood="auto"`` becomes ``bernoulli`` for
    ``images`` (values in [0, 1]) and ``gaussian`` for feature tables."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    settings = {**VARIANTS[variant], **overrides}
    if settings.get("likelihood") == "auto":
        settings["likelihood"] = "bernoulli" if images else "gaussian"
    return VAEConfig(**settings)
