"""What a VAE is asked to be, without TensorFlow: its config and the two training variants.
Importing this costs nothing, so the Dagster layer can name variants and configs without loading
TensorFlow (that happens in :mod:`clustering_dag.core.vae`).

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
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

LIKELIHOODS = ("clipped_bce", "bernoulli", "gaussian")


@dataclass(frozen=True)
class VAEConfig:
    input_dim: int = 784
    hidden: tuple[int, ...] = (128, 64, 32)
    latent_dim: int = 10
    beta: float = 0.0
    likelihood: str = "clipped_bce"  # one of LIKELIHOODS
    code: str = "sample"  # latent code: "sample" from q(z|x) (paper) or its "mean"
    train_on_noisy: bool = True  # the paper trains on its noisy training images
    learning_rate: float = 1e-3
    epochs: int = 60
    batch_size: int = 512
    seed: int = 1234
    kl_warmup: float = 0.0  # share of training steps over which the KL weight rises from 0 to beta
    free_bits: float = 0.0  # nats per latent dimension below which the KL is not penalised

    def __post_init__(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if not 0 <= self.kl_warmup <= 1 or self.free_bits < 0:
            raise ValueError(f"kl_warmup must be in [0, 1] and free_bits >= 0, got "
                             f"{self.kl_warmup} and {self.free_bits}")
        if self.code not in ("sample", "mean"):
            raise ValueError(f"code must be 'sample' or 'mean', got {self.code!r}")
        if self.latent_dim < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"layer sizes must be positive: hidden={self.hidden}, latent={self.latent_dim}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0 or self.beta < 0:
            raise ValueError("epochs, batch_size and learning_rate must be positive and beta >= 0")

    def training_data(self, raw, noisy):
        """What this model trains on: the noisy images (``noisy``, the paper's) or the clean ones
        (``raw``), both :class:`~clustering_dag.core.arrays.Splits`."""
        return noisy if self.train_on_noisy else raw

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VAEConfig:
        data = json.loads(text)
        data["hidden"] = tuple(data["hidden"])
        return cls(**data)


# The spaces the pipeline clusters: the (noisy) input itself, and the VAE's reconstruction and code.
REPRESENTATIONS = ("original", "reconstructed", "latent")
# Every space clustered and scored: the paper's three, and the manifold stage (N2D: UMAP of the
# latent code, clusters by a Gaussian mixture), which the paper did not have.
SPACES = (*REPRESENTATIONS, "manifold")

VARIANTS: dict[str, dict] = {
    "paper": dict(beta=0.0, likelihood="clipped_bce", code="sample", train_on_noisy=True),
    "elbo": dict(beta=1.0, likelihood="auto", code="mean", train_on_noisy=False, kl_warmup=0.2),
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
