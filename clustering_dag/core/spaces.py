"""The representation spaces the pipeline clusters, as data: one :class:`Space` per space says
what it is made from, how it is clustered, whether new rows can be scored in it and how it is
drawn. The Dagster layer makes its assets from this registry (``<space>_representation``,
``clusters_<space>``, a row of every metric table, a column of every scored batch), the chain that
the extra seeds run walks it (:mod:`clustering_dag.core.chain`), and the report and the seeds'
tables list its spaces in its order.

Adding a space is one :func:`add_space` call (or one entry below) and its ``make`` function::

    def pca(noisy_dataset, config=None):
        ...  # fit on noisy_dataset.train_x, return noisy_dataset.with_x(train, test)

    add_space(Space("pca", "PCA of the noisy pixels", inputs=("noisy_dataset",), make=pca, shared=True))

Importing this costs nothing: TensorFlow, UMAP and scikit-learn load inside the functions. The
Dagster layer reads the registry when the code location loads and hands each asset the spaces it
works on; an asset's code version counts the functions of those spaces only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clustering_dag.core.configs import InvarianceConfig, ManifoldConfig, ScatteringConfig

# How a space is clustered: k-means (its clusters asset fits it on the training split), a Gaussian
# mixture (full covariance by default), or the space itself says it (a classifier's
# probabilities: the most probable class is the cluster; no clusters asset).
CLUSTERERS = ("kmeans", "mixture", "classifier")
# The figures a space can be drawn in: the Voronoi diagram of its 2-D PCA (the paper's Figures 5-6).
DRAWINGS = ("voronoi",)


@dataclass(frozen=True)
class Space:
    """A representation space.

    ``inputs``: the assets ``make`` reads, by name (``raw_dataset``, ``noisy_dataset``, a model
    such as ``trained_vae``, another space's ``<name>_representation`` or ``clusters_<name>``).
    ``make(**inputs, config=...)`` returns the space's :class:`~clustering_dag.core.arrays.Splits`:
    every training and noisy test row in it. ``config``: the dataclass of ``make``'s settings (the
    Dagster config of its asset), or None. ``clusters``: one of :data:`CLUSTERERS`.
    ``project(values, x, memo)``: the points of new rows ``x`` in this space from the stored
    ``values`` of ``project_inputs`` (``memo`` is shared by the spaces scoring one batch); None
    when the space cannot score new rows. ``shared``: made without a variant's autoencoder, so one
    asset serves every variant. ``paper``: a row of the paper's tables. ``drawn``: the figures that
    draw it (:data:`DRAWINGS`). ``kinds``: what the UI shows it runs on.
    """

    name: str
    about: str  # a few words: the tables show it beside the name of a space that is not the paper's
    inputs: tuple[str, ...]
    make: Callable
    clusters: str = "kmeans"
    config: type | None = None
    project: Callable | None = None
    project_inputs: tuple[str, ...] = ()
    shared: bool = False
    paper: bool = False
    drawn: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def __post_init__(self):
        if self.clusters not in CLUSTERERS:
            raise ValueError(f"space {self.name!r}: clusters must be one of {CLUSTERERS}, "
                             f"got {self.clusters!r}")
        if not set(self.drawn) <= set(DRAWINGS):
            raise ValueError(f"space {self.name!r}: drawn must be among {DRAWINGS}, got {self.drawn}")

    @property
    def representation(self) -> str:
        """The asset holding the space's rows."""
        return f"{self.name}_representation"

    @property
    def clustering(self) -> str | None:
        """The asset holding its fitted clusters (None: the space's own most probable class)."""
        return None if self.clusters == "classifier" else f"clusters_{self.name}"

    @property
    def scorable(self) -> bool:
        return self.project is not None


# --- the spaces' functions ------------------------------------------------------------------------

def original(noisy_dataset, config=None):
    """The paper's 'original' space: the noisy pixels themselves."""
    return noisy_dataset.with_x(noisy_dataset.train_x, noisy_dataset.test_x, representation="original")


def reconstructed(trained_vae, raw_dataset, noisy_dataset, config=None):
    """decoder(code) of the training images the autoencoder learned from and of the noisy test
    images."""
    from clustering_dag.core.vae import representations

    return representations(trained_vae, raw_dataset, noisy_dataset)[0]


def latent(trained_vae, raw_dataset, noisy_dataset, config=None):
    """The autoencoder's code of the same rows."""
    from clustering_dag.core.vae import representations

    return representations(trained_vae, raw_dataset, noisy_dataset)[1]


def manifold(latent_representation, config):
    """UMAP of the latent code (N2D), fitted on a seeded sample of the training codes, applied to
    every noisy test code."""
    from clustering_dag.core.manifold import embed

    return embed(latent_representation, config)


def invariant(trained_encoder, noisy_dataset, config=None):
    """The invariance encoder's L2-normalised code of every noisy training and test image."""
    from clustering_dag.core.invariance import invariant_representation

    return invariant_representation(trained_encoder, noisy_dataset)


def _manifold_of(codes, config, name: str):
    """The manifold stage (UMAP fitted on the training split) on another space's rows, named."""
    from clustering_dag.core.manifold import embed

    made = embed(codes, config)
    made.meta["representation"] = name
    return made


def invariant_manifold(invariant_representation, config):
    """UMAP of the invariance code, as the manifold stage does for an autoencoder's."""
    return _manifold_of(invariant_representation, config, "invariant_manifold")


def scattered(noisy_dataset, config):
    """Scattering features of the noisy images (a fixed wavelet cascade), on principal axes fitted
    on the training split."""
    from clustering_dag.core.scattering import scattering_representation

    return scattering_representation(noisy_dataset, config)


def scattering_manifold(scattering_representation, config):
    """UMAP of the scattering features, as the manifold stage does for an autoencoder's code."""
    return _manifold_of(scattering_representation, config, "scattering_manifold")


def refined(refined_classifier, noisy_dataset, config=None):
    """The refined classifier's cluster probabilities of every noisy training and test image."""
    from clustering_dag.core.refine import refined_representation

    return refined_representation(refined_classifier, noisy_dataset)


def project_original(values: dict, x, memo: dict):
    return x


def _autoencoded(values: dict, x, memo: dict):
    """(code, reconstruction) of new rows, once per batch: the code sampled, for a sampling
    variant, under the seed of the test split's code."""
    if "autoencoded" not in memo:
        from clustering_dag.core.vae import represent

        vae = values["trained_vae"]
        memo["autoencoded"] = represent(vae, x, seed=vae.config.seed + 1)
    return memo["autoencoded"]


def project_reconstructed(values: dict, x, memo: dict):
    return _autoencoded(values, x, memo)[1]


def project_latent(values: dict, x, memo: dict):
    return _autoencoded(values, x, memo)[0]


def project_invariant(values: dict, x, memo: dict):
    from clustering_dag.core.invariance import encode

    return encode(values["trained_encoder"], x)


def project_refined(values: dict, x, memo: dict):
    from clustering_dag.core.refine import predict_proba

    return predict_proba(values["refined_classifier"].model, x)


# Read by name here and there; the assets that run their functions name those for their code
# versions (clustering_dag.defs.versioning).
__registries__ = ("SPACES", "MODELS")


def chain_functions(shared_only: bool = False) -> tuple:
    """What the whole chain runs (or its shared part): every model's ``fit`` and every space's
    ``make`` (not how new rows are scored)."""
    return (*(m.fit for m in MODELS.values() if m.shared or not shared_only),
            *(s.make for s in SPACES.values() if s.shared or not shared_only))


# --- the models spaces are made with ------------------------------------------------------------

@dataclass(frozen=True)
class Model:
    """A trained model some spaces are made with: ``fit(**inputs, config=..., device=..., log=...)``
    returns a :class:`~clustering_dag.core.trained.TrainedModel` whose ``config`` says how it was
    trained. ``shared``: made from the data alone (no variant's autoencoder), one for every
    variant."""

    name: str
    inputs: tuple[str, ...]
    fit: Callable
    shared: bool = False


def train_autoencoder(raw_dataset, noisy_dataset, config, device: str = "/CPU:0", log=None,
                      on_epoch=None):
    """The autoencoder of ``config`` (a variant's :class:`~clustering_dag.core.configs.VAEConfig`)
    trained on the images its variant learns from (noisy or clean) towards its targets; batches of
    at most the training rows."""
    from dataclasses import replace

    from clustering_dag.core.augment import resolve
    from clustering_dag.core.vae import train_vae

    rows, shape = len(raw_dataset.train_x), raw_dataset.image_shape
    config = replace(config, augment=resolve(config.augment, raw_dataset),
                     image_shape=tuple(shape) if shape else None)
    if config.batch_size > rows:
        if log:
            log(f"batch_size {config.batch_size} > {rows} training rows: using {rows}")
        config = replace(config, batch_size=rows)
    train = config.training_data(raw_dataset, noisy_dataset).train_x
    targets = config.training_targets(raw_dataset, noisy_dataset).train_x
    return train_vae(config, train, device=device, on_epoch=on_epoch, targets=targets)


def train_invariance(noisy_dataset, config: InvarianceConfig, device: str = "/CPU:0", log=None,
                     on_epoch=None):
    """The invariance encoder of ``config`` trained on the noisy training images, with the
    augmentations of the dataset's kind (``augment: auto``) or those ``config`` names; batches of
    at most the training rows."""
    from dataclasses import replace

    from clustering_dag.core.augment import resolve
    from clustering_dag.core.invariance import train_encoder

    rows, shape = len(noisy_dataset.train_x), noisy_dataset.image_shape
    config = replace(config, input_dim=noisy_dataset.dim, image_shape=tuple(shape) if shape else None,
                     augment=resolve(config.augment, noisy_dataset), batch_size=min(config.batch_size, rows))
    if log:
        log(f"invariance encoder on {rows:,} rows, {config.augment} augmentations: {config}")
    return train_encoder(config, noisy_dataset.train_x, config.augment, device=device, on_epoch=on_epoch)


def train_refined(noisy_dataset, manifold_representation, clusters_manifold, config,
                  device: str = "/CPU:0", log=None):
    """A classifier of the noisy images learned from the manifold mixture's most confident
    training assignments (the rows UMAP was fitted on), then from its own surest predictions."""
    from clustering_dag.core.clustering import ClusterModel
    from clustering_dag.core.manifold import fit_sample
    from clustering_dag.core.refine import refine

    mixture, points = ClusterModel.from_frame(clusters_manifold), manifold_representation.train_x
    rows = fit_sample(len(noisy_dataset.train_x), ManifoldConfig(**manifold_representation.meta["umap"]))
    return refine(config, noisy_dataset, rows, mixture.predict(points), mixture.confidence(points),
                  log=log, device=device)


# What the graph starts from (shared by every variant): the dataset and its noisy copy.
DATA = ("raw_dataset", "noisy_dataset")
MODELS: dict[str, Model] = {
    "trained_vae": Model("trained_vae", DATA, train_autoencoder),
    "refined_classifier": Model("refined_classifier",
                                ("noisy_dataset", "manifold_representation", "clusters_manifold"),
                                train_refined),
    "trained_encoder": Model("trained_encoder", ("noisy_dataset",), train_invariance, shared=True),
}

# --- the registry -------------------------------------------------------------------------------

_VAE = ("trained_vae", "raw_dataset", "noisy_dataset")

def add_space(space: Space) -> Space:
    """Register ``space`` after those already known (before the code location loads: its assets
    are made when it does). What it reads must be made before it: data, models, earlier spaces."""
    if space.name in SPACES:
        raise ValueError(f"space {space.name!r} is registered already")
    _check_inputs(space, SPACES)
    if _FROZEN:
        raise RuntimeError(f"space {space.name!r} comes too late: the code location has made its "
                           "assets from the registry already; add spaces before it loads (in the "
                           "module that imports clustering_dag.definitions, before that import).")
    SPACES[space.name] = space
    return space


def _check_inputs(space: Space, before: dict) -> None:
    """Everything ``space`` reads is made before it; a shared space reads shared assets only."""
    earlier = [s for s in before.values() if s.shared or not space.shared]
    models = [name for name, model in MODELS.items() if model.shared or not space.shared]
    known = {*DATA, *models, *(s.representation for s in earlier),
             *(s.clustering for s in earlier if s.clustering)}
    unknown = [name for name in space.inputs if name not in known]
    unknown += [name for name in space.project_inputs if name not in known | {space.representation}]
    if unknown:
        raise ValueError(f"space {space.name!r} reads {unknown}, which nothing "
                         f"{'shared ' if space.shared else ''}makes before it; known: {sorted(known)}")


def _registry(*spaces: Space) -> dict[str, Space]:
    registry: dict[str, Space] = {}
    for space in spaces:
        _check_inputs(space, registry)
        registry[space.name] = space
    return registry


SPACES: dict[str, Space] = _registry(
    Space("original", "the noisy pixels", ("noisy_dataset",), original, project=project_original,
          shared=True, paper=True, drawn=("voronoi",)),
    Space("reconstructed", "the autoencoder's reconstruction", _VAE, reconstructed,
          project=project_reconstructed, project_inputs=("trained_vae",), paper=True,
          drawn=("voronoi",)),
    Space("latent", "the autoencoder's latent code", _VAE, latent, project=project_latent,
          project_inputs=("trained_vae",), paper=True, drawn=("voronoi",)),
    Space("manifold", "UMAP of latent, GMM",
          ("latent_representation",), manifold, clusters="mixture", config=ManifoldConfig,
          kinds=("umap",)),
    Space("refined", "classifier self-trained on the manifold clusters",
          ("refined_classifier", "noisy_dataset"), refined, clusters="classifier",
          project=project_refined, project_inputs=("refined_classifier",)),
    Space("invariant", "code learned for invariance to augmentations",
          ("trained_encoder", "noisy_dataset"), invariant, project=project_invariant,
          project_inputs=("trained_encoder",), shared=True, drawn=("voronoi",)),
    Space("invariant_manifold", "UMAP of invariant, GMM", ("invariant_representation",),
          invariant_manifold, clusters="mixture", config=ManifoldConfig, shared=True, kinds=("umap",)),
    Space("scattering", "wavelet scattering of the pixels, PCA", ("noisy_dataset",), scattered,
          config=ScatteringConfig, shared=True),
    Space("scattering_manifold", "UMAP of scattering, GMM", ("scattering_representation",),
          scattering_manifold, clusters="mixture", config=ManifoldConfig, shared=True, kinds=("umap",)),
)


_FROZEN = False


def freeze() -> None:
    """Refuse spaces from now on: the code location has made its assets from the registry."""
    global _FROZEN
    _FROZEN = True


def space_names() -> tuple[str, ...]:
    return tuple(SPACES)


def paper_spaces() -> tuple[str, ...]:
    """The paper's three spaces, in its order."""
    return tuple(name for name, space in SPACES.items() if space.paper)


def scorable_spaces() -> list[Space]:
    return [space for space in SPACES.values() if space.scorable]


def scored_with(spaces: list[Space]) -> tuple[str, ...]:
    """The stored values that score new rows in ``spaces``: what each projects them with, and its
    clusters."""
    names = [n for s in spaces for n in (*s.project_inputs, s.clustering) if n]
    return tuple(dict.fromkeys(names))
