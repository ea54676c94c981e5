"""What a VAE is asked to be, without TensorFlow: its config and the two training variants.
Importing this costs nothing, so the Dagster layer can name variants and configs without loading
TensorFlow (that happens in :mod:`clustering_dag.core.vae`).

- ``paper`` reproduces what the authors' code trained: beta = 0 (their KL never reached the loss),
  binary cross-entropy averaged over pixels with the probabilities clipped to [1e-7, 1 - 1e-7]
  (their targets are noisy images outside [0, 1], where unclipped BCE is unbounded below), and
  a *sampled* z as the latent code.
- ``elbo`` is a proper VAE: beta = 1, Bernoulli log-likelihood summed over pixels, trained on the
  clean images, posterior mean as the latent code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class VAEConfig:
    input_dim: int = 784
    hidden: tuple[int, ...] = (128, 64, 32)
    latent_dim: int = 10
    beta: float = 0.0
    likelihood: str = "clipped_bce"  # "clipped_bce" (paper) or "bernoulli" (ELBO)
    code: str = "sample"  # latent code: "sample" from q(z|x) (paper) or its "mean"
    train_on_noisy: bool = True  # the paper trains on its noisy training images
    learning_rate: float = 1e-3
    epochs: int = 60
    batch_size: int = 512
    seed: int = 1234

    def __post_init__(self):
        if self.likelihood not in ("clipped_bce", "bernoulli"):
            raise ValueError(f"likelihood must be 'clipped_bce' or 'bernoulli', got {self.likelihood!r}")
        if self.code not in ("sample", "mean"):
            raise ValueError(f"code must be 'sample' or 'mean', got {self.code!r}")
        if self.latent_dim < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"layer sizes must be positive: hidden={self.hidden}, latent={self.latent_dim}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0 or self.beta < 0:
            raise ValueError("epochs, batch_size and learning_rate must be positive and beta >= 0")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VAEConfig:
        data = json.loads(text)
        data["hidden"] = tuple(data["hidden"])
        return cls(**data)


# The spaces the pipeline clusters: the (noisy) input itself, and the VAE's reconstruction and code.
REPRESENTATIONS = ("original", "reconstructed", "latent")

VARIANTS: dict[str, dict] = {
    "paper": dict(beta=0.0, likelihood="clipped_bce", code="sample", train_on_noisy=True),
    "elbo": dict(beta=1.0, likelihood="bernoulli", code="mean", train_on_noisy=False),
}


def variant_config(variant: str, **overrides) -> VAEConfig:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return VAEConfig(**{**VARIANTS[variant], **overrides})
