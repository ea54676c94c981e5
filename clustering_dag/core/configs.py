"""What each stage is asked to do: its settings, declared once, with their defaults, their
descriptions (which the Dagster UI shows) and their checks. Plain dataclasses with no numeric
library behind them, so the Dagster layer builds its run config from them at no import cost."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

# The seed of every random choice (noise, initialisations, samples) unless a config says otherwise.
DEFAULT_SEED = 1234

LIKELIHOODS = ("clipped_bce", "bernoulli", "gaussian", "mse")
# The augmentations of each kind of data (clustering_dag.core.augment): "digits" (shifts and small
# rotations, never a flip), "objects" (crops, horizontal flips, brightness), "features" (a table's
# rows: noise only), or "auto" (the dataset's own kind).
AUGMENTATIONS = ("auto", "none", "digits", "objects", "features")


def about(text: str) -> dict:
    """A field's description, ``field(metadata=about(...))``."""
    return {"description": text}


class StoredConfig:
    """A config stored as JSON beside a trained network's weights (tuples come back as tuples)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str):
        data = json.loads(text)
        for spec in fields(cls):
            if isinstance(data.get(spec.name), list):
                data[spec.name] = tuple(data[spec.name])
        return cls(**data)


@dataclass(frozen=True)
class VAEConfig(StoredConfig):
    """The autoencoder's hyper-parameters; defaults are the paper's VAE. The variant (``paper``,
    ``elbo``, ``dae``) fixes the latent code (sample or mean), the training images (noisy or clean,
    as inputs and as targets) and whether the encoder is a distribution at all, and gives the
    defaults of the rest."""

    input_dim: int = 784
    hidden: tuple[int, ...] = field(default=(128, 64, 32),
                                    metadata=about("Encoder layer sizes (decoder mirrors)."))
    latent_dim: int = 10
    beta: float = field(default=0.0, metadata=about("KL weight."))
    likelihood: str = field(default="clipped_bce", metadata=about(
        "p(x|z): clipped_bce (the paper's loss), bernoulli (images), gaussian (feature tables), mse "
        "(squared error, a deterministic autoencoder's), or auto (bernoulli for images, gaussian "
        "for tables)."))
    code: str = "sample"  # latent code: "sample" from q(z|x) (paper) or its "mean"
    train_on_noisy: bool = True  # the paper trains on its noisy training images
    denoising: bool = False  # targets are the clean images while the inputs are the noisy ones
    deterministic: bool = False  # a plain autoencoder: the code is the encoder's output, no KL
    learning_rate: float = 1e-3
    epochs: int = 60
    batch_size: int = 512
    seed: int = DEFAULT_SEED
    kl_warmup: float = field(default=0.0, metadata=about(
        "Share of training over which the KL weight rises from 0 to beta."))
    free_bits: float = field(default=0.0, metadata=about(
        "Nats per latent dimension the KL may use unpenalised."))
    augment: str = field(default="none", metadata=about(
        "Train on randomly transformed copies of the images (DEC-DA): 'digits' (shifts up to 10 % "
        "and rotations up to 10 degrees), 'objects' (crops, flips, brightness), 'auto' (the "
        "dataset's kind) or 'none'. The input and its target get the same transformation."))
    image_shape: tuple[int, ...] | None = None  # (height, width) of image rows: what augment transforms

    def __post_init__(self):
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
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
        if self.deterministic and (self.beta > 0 or self.code != "mean"):
            raise ValueError("a deterministic autoencoder has no KL term and no sampled code: "
                             "beta must be 0 and code 'mean'")
        if self.denoising and not self.train_on_noisy:
            raise ValueError("denoising trains on the noisy images: set train_on_noisy")

    def training_data(self, raw, noisy):
        """What this model trains on: the noisy images (``noisy``, the paper's) or the clean ones
        (``raw``), both :class:`~clustering_dag.core.arrays.Splits`."""
        return noisy if self.train_on_noisy else raw

    def training_targets(self, raw, noisy):
        """What it learns to output: its inputs, or the clean images when ``denoising``."""
        return raw if self.denoising else self.training_data(raw, noisy)



@dataclass(frozen=True)
class ClusterConfig:
    """The paper's k-means by default; ``method: gmm`` fits a Gaussian mixture instead."""

    method: str = field(default="kmeans", metadata=about("kmeans or gmm (a Gaussian mixture)."))
    n_clusters: int = field(default=10, metadata=about("Number of clusters."))
    n_init: int = field(default=10, metadata=about("Restarts; the best fit is kept."))
    max_iter: int = 500
    seed: int = DEFAULT_SEED
    covariance_type: str = field(default="diag", metadata=about(
        "gmm only: per-cluster variances (diag) or full covariance matrices (full)."))
    reg_covar: float = field(default=1e-4, metadata=about(
        "gmm only: added to the covariances' diagonal, for stability."))

    def __post_init__(self):
        if self.method not in ("kmeans", "gmm"):
            raise ValueError(f"method must be 'kmeans' or 'gmm', got {self.method!r}")
        if self.covariance_type not in ("diag", "full"):
            raise ValueError(f"covariance_type must be 'diag' or 'full', got {self.covariance_type!r}")
        if self.n_clusters < 2 or self.n_init < 1 or self.max_iter < 1 or self.reg_covar < 0:
            raise ValueError("n_clusters must be >= 2, n_init and max_iter >= 1, reg_covar >= 0")


@dataclass(frozen=True)
class ManifoldConfig:
    """UMAP of the latent code (umap-learn): N2D's settings by default."""

    n_components: int = field(default=10, metadata=about("Dimensions of the embedding."))
    n_neighbors: int = 20
    min_dist: float = 0.0
    fit_rows: int | None = field(default=20_000, metadata=about(
        "UMAP is fitted on a seeded sample of this many training codes (its cost grows faster than "
        "the rows; seeded UMAP runs on one thread); None = every row."))
    n_epochs: int | None = field(default=None, metadata=about(
        "UMAP's optimisation epochs; None = its default (500 below 10,000 rows, else 200)."))
    restarts: int = field(default=3, metadata=about(
        "UMAP fits under seeds seed, seed+1, ...; the one whose k-means clusters agree most with "
        "the others' (mean adjusted Rand index on the fit rows) is kept, a choice no label enters. "
        "They run in parallel, one process per core."))
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        if self.restarts < 1:
            raise ValueError(f"restarts must be >= 1, got {self.restarts}")
        if self.n_components < 1 or self.n_neighbors < 2 or self.min_dist < 0:
            raise ValueError("n_components must be >= 1, n_neighbors >= 2, min_dist >= 0")
        if self.fit_rows is not None and self.fit_rows < self.n_neighbors + 1:
            raise ValueError(f"fit_rows must exceed n_neighbors ({self.n_neighbors})")


@dataclass(frozen=True)
class RefineConfig(StoredConfig):
    """Self-labelling (the last step of SCAN, Van Gansbeke et al. 2020): a classifier of the raw
    (noisy) inputs trained on the manifold stage's most confident training assignments, with light
    augmentation, then predicting every row itself."""

    hidden: tuple[int, ...] = field(default=(500, 500), metadata=about("Classifier layer sizes."))
    confident_share: float = field(default=0.8, metadata=about(
        "Share of each cluster's fit rows, the most confident by the mixture's posterior, that "
        "the classifier learns from."))
    rounds: int = field(default=2, metadata=about(
        "Training rounds: the first on the mixture's confident rows, each next one on every "
        "training row the previous classifier predicts with probability >= threshold (and the "
        "confident share of each of its clusters)."))
    threshold: float = field(default=0.99, metadata=about(
        "Rounds after the first learn from the rows predicted at least this confidently."))
    epochs: int = field(default=10, metadata=about("Epochs per round."))
    batch_size: int = 256
    learning_rate: float = 1e-3
    noise: float = field(default=0.05, metadata=about("Gaussian noise added to each training input."))
    shift: float = field(default=0.1, metadata=about(
        "Images only, with augment 'none': random shifts up to this share of the height and width."))
    augment: str = field(default="none", metadata=about(
        "The augmentations of the invariance encoder in place of the shifts: 'digits', 'objects', "
        "'auto' (the dataset's kind), or 'none' (the random shifts of `shift` only). The noise is "
        "added either way."))
    conv: tuple[int, ...] = field(default=(), metadata=about(
        "Images only: filters of each 3x3 convolution (each followed by 2x2 max pooling) before "
        "the dense layers, e.g. [32, 64]; empty: a multi-layer perceptron of the pixels."))
    seed: int = DEFAULT_SEED
    input_dim: int = 784
    n_clusters: int = 10
    image_shape: tuple[int, ...] | None = None

    def __post_init__(self):
        if not 0 < self.confident_share <= 1 or not 0 < self.threshold < 1:
            raise ValueError("confident_share must be in (0, 1] and threshold in (0, 1)")
        if self.rounds < 1 or self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("rounds, epochs, batch_size and learning_rate must be positive")
        if not self.hidden or min(self.hidden) < 1 or self.noise < 0 or not 0 <= self.shift < 0.5:
            raise ValueError("hidden sizes must be positive, noise >= 0, shift in [0, 0.5)")
        if self.augment not in AUGMENTATIONS or min(self.conv, default=1) < 1:
            raise ValueError(f"augment must be one of {AUGMENTATIONS} and conv filters positive")



@dataclass(frozen=True)
class InvarianceConfig(StoredConfig):
    """An encoder learned for invariance (SimCLR, Chen et al. 2020): two randomly augmented views of
    each training image are pulled together and apart from every other image of the batch
    (NT-Xent); the code clustered is the encoder's L2-normalised output."""

    hidden: tuple[int, ...] = field(default=(1024, 1024), metadata=about("Encoder layer sizes."))
    code_dim: int = field(default=64, metadata=about("Width of the code that is clustered."))
    head: tuple[int, ...] = field(default=(256, 64), metadata=about(
        "Projection head's layer sizes: the loss is taken on its output, the code before it."))
    temperature: float = field(default=0.5, metadata=about("NT-Xent temperature."))
    augment: str = field(default="auto", metadata=about(
        "The views' augmentations: 'digits' (shifts, small rotations, no flip), 'objects' (crops "
        "of 75-100 %, horizontal flips, brightness x0.7-1.3), 'features' (noise only), or 'auto' "
        "(the dataset's kind: digits for MNIST, objects for Fashion-MNIST, digits for other "
        "images, features for tables). Every view also gets Gaussian noise (`noise`)."))
    noise: float = field(default=0.05, metadata=about("Gaussian noise added to every view."))
    epochs: int = field(default=20, metadata=about(
        "Passes over the training images (the `augmented` profiles: 40, which measured better)."))
    batch_size: int = 512
    learning_rate: float = 1e-3
    seed: int = DEFAULT_SEED
    input_dim: int = 784
    image_shape: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if min((*self.hidden, *self.head, self.code_dim), default=0) < 1 or not self.hidden or not self.head:
            raise ValueError("layer sizes must be positive")
        if self.temperature <= 0 or self.noise < 0:
            raise ValueError("temperature must be positive and noise >= 0")
        if self.epochs < 1 or self.batch_size < 2 or self.learning_rate <= 0:
            raise ValueError("epochs must be >= 1, batch_size >= 2, learning_rate > 0")


@dataclass(frozen=True)
class ScatteringConfig:
    """Scattering features (:mod:`clustering_dag.core.scattering`): a fixed Morlet filter bank,
    nothing learned."""

    J: int = field(default=3, metadata=about(
        "Scales: the wavelets' widths double J times; the features are averaged over 2**J pixels."))
    L: int = field(default=8, metadata=about("Orientations per scale."))
    log_eps: float = field(default=1e-3, metadata=about(
        "The features are log(log_eps + S): the coefficients' magnitudes span decades."))
    components: int | None = field(default=100, metadata=about(
        "The features' principal components kept (fitted on the training split: 1,953 features "
        "for J=3, L=8 on 28x28 images); None = every feature."))

    def __post_init__(self):
        if not 1 <= self.J <= 5 or not 1 <= self.L <= 16 or self.log_eps <= 0:
            raise ValueError("J must be in 1..5, L in 1..16 and log_eps > 0")
        if self.components is not None and self.components < 1:
            raise ValueError("components must be >= 1 or None")
