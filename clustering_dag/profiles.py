"""Named run-config presets: ``full`` (the paper's settings), ``seeds`` (the paper's settings
under three seeds), ``quick`` (a demo/CI run), ``smoke`` (every asset in about a minute: an
installation or a change checked end to end) and ``small`` (a user's table of a few hundred rows);
and ``force``, added to any of them to recompute what the run selects.

The YAML files under ``clustering_dag/profiles/`` are written from here
(``python -m clustering_dag.profiles``) and are what ``dagster asset materialize -c`` takes.
"""

import sys
import textwrap
from pathlib import Path

import yaml

from clustering_dag.core.configs import ManifoldConfig
from clustering_dag.core.spaces import SPACES
from clustering_dag.core.variants import VARIANTS, variant_config

PROFILE_DIR = Path(__file__).parent / "profiles"


def _ops(config_by_op: dict) -> dict:
    return {"ops": {op: {"config": cfg} for op, cfg in config_by_op.items()}}


def _kmeans(**config) -> dict:
    """``config`` for the k-means of every space clustered by k-means, by op name."""
    kmeans = [s for s in SPACES.values() if s.clusters == "kmeans"]
    return {**{s.clustering: dict(config) for s in kmeans if s.shared},
            **{f"{v}__{s.clustering}": dict(config) for s in kmeans if not s.shared for v in VARIANTS}}


def full() -> dict:
    """The paper's run: every default (60 epochs, 60k training images, k-means n_init 10)."""
    return {}


# The seeds the `seeds` profile adds to the run's own (1234).
EXTRA_SEEDS = [1, 2]


def seeds() -> dict:
    """The paper's settings, with each variant's whole chain (VAE, UMAP, clusters) run again under
    two more seeds: every metric as mean ± sd over three seeds (seed_spread)."""
    return _ops({"shared_seed_spread": {"extra_seeds": list(EXTRA_SEEDS)},
                 **{f"{v}__seed_spread": {"extra_seeds": list(EXTRA_SEEDS)} for v in VARIANTS}})


def _manifolds(**config) -> dict:
    """``config`` for every UMAP stage (each variant's, and the invariance code's), by op name."""
    umap = [s for s in SPACES.values() if s.config is ManifoldConfig]
    return {**{s.representation: dict(config) for s in umap if s.shared},
            **{f"{v}__{s.representation}": dict(config) for s in umap if not s.shared for v in VARIANTS}}


# The `augmented` profile's networks: DEC-DA's recipe for the `dae` autoencoder (longer training
# on transformed copies), and the invariance encoder trained twice as long as in the main command.
AUGMENTED_EPOCHS = {"dae__trained_vae": 60, "trained_encoder": 40}
# ... and SCAN's last step as SCAN takes it: a small convolutional network self-trained through the
# same transformations (and the noise), in place of the perceptron with random shifts.
AUGMENTED_REFINER = {"augment": "auto", "conv": [32, 64], "hidden": [128]}


def augmented() -> dict:
    """The paper's settings, with the `dae` autoencoder trained 60 epochs (not 10) on randomly
    transformed copies of its images, per kind of data (digits: shifts and small rotations;
    clothes: crops, flips, brightness), as DEC-DA does, its refined classifier a small
    convolutional network self-trained through the same transformations, and the invariance
    encoder 40 epochs (not 20)."""
    return _ops({"dae__trained_vae": {"epochs": AUGMENTED_EPOCHS["dae__trained_vae"], "augment": "auto"},
                 "dae__refined_classifier": dict(AUGMENTED_REFINER),
                 "trained_encoder": {"epochs": AUGMENTED_EPOCHS["trained_encoder"]}})


def augmented_seeds() -> dict:
    """The `augmented` profile under three seeds, as `seeds` is the paper's settings under
    three."""
    return _ops({op: v["config"] for build in (seeds, augmented) for op, v in build()["ops"].items()})


def quick() -> dict:
    """10,000 training and 1,000 test images, 10 epochs (the invariance encoder 5), light
    clustering, UMAP fitted on 2,000 codes (two restarts), 5 epochs per refinement round; t-SNE as
    in the full run (500 iterations, past the early-exaggeration phase), so the figures show real
    structure."""
    ops: dict = {"raw_dataset": {"train_rows": 10_000, "test_rows": 1000}, **_kmeans(n_init=2),
                 **_manifolds(fit_rows=2000, n_epochs=200, restarts=2),
                 "trained_encoder": {"epochs": 5, "batch_size": 256}}
    for v in VARIANTS:
        ops[f"{v}__trained_vae"] = {"epochs": 10, "batch_size": 128}
        ops[f"{v}__figure_k_sweep"] = {"k_max": 12}
        ops[f"{v}__refined_classifier"] = {"epochs": 5}
    return _ops(ops)


def smoke() -> dict:
    """3,000 training and 500 test images, 5 epochs in batches of 64 (the invariance encoder 2 in
    batches of 256), one k-means restart, UMAP
    fitted on 1,000 codes (two restarts, 50 epochs), 10 epochs in batches of 32 per refinement
    round, t-SNE at its shortest (250 iterations): every asset of the graph in about a minute, to
    check that an installation or a change works end to end. Its numbers say little about the
    method."""
    ops: dict = {"raw_dataset": {"train_rows": 3000, "test_rows": 500}, **_kmeans(n_init=1),
                 **_manifolds(fit_rows=1000, n_epochs=50, restarts=2),
                 "trained_encoder": {"epochs": 2, "batch_size": 256}, "tsne_original": {"max_iter": 250}}
    for v in VARIANTS:
        ops[f"{v}__trained_vae"] = {"epochs": 5, "batch_size": 64}
        ops[f"{v}__tsne_embeddings"] = {"max_iter": 250}
        ops[f"{v}__figure_k_sweep"] = {"k_max": 12}
        ops[f"{v}__refined_classifier"] = {"epochs": 10, "batch_size": 32}
    return _ops(ops)


def small() -> dict:
    """For datasets of a few hundred rows: batches of 32, 300 epochs for the autoencoders and 100
    per refinement round and for the invariance encoder, so the networks take enough steps."""
    ops: dict = {"trained_encoder": {"epochs": 100, "batch_size": 32}}
    for v in VARIANTS:
        ops[f"{v}__trained_vae"] = {"epochs": 300, "batch_size": 32}
        ops[f"{v}__refined_classifier"] = {"epochs": 100, "batch_size": 32}
    return _ops(ops)


PROFILES = {"full": full, "seeds": seeds, "augmented": augmented, "augmented_seeds": augmented_seeds,
            "quick": quick, "smoke": smoke, "small": small}


def force() -> dict:
    """Added to a profile (``-c <profile>.yaml -c force.yaml``): recompute every asset the run
    selects, even those whose value is kept; each new value replaces the kept one once its step
    succeeds."""
    return {"resources": {"asset_storage": {"config": {"force": True}}}}


# Run config that goes with any profile rather than being one.
ADDITIONS = {"force": force}


def matching_profile(settings: dict, variant: str = "paper") -> str:
    """The profile a run of ``variant`` matches by its settings (epochs, batch size, the rows it
    kept: a profile that cuts none needs every row of the dataset, and the number of seeds, 1
    unless stated), or ``custom``."""
    settings = {"n_seeds": 1, **settings}
    default = variant_config(variant)
    for name, build in PROFILES.items():
        ops = {op: v["config"] for op, v in build().get("ops", {}).items()}
        raw, vae = ops.get("raw_dataset", {}), ops.get(f"{variant}__trained_vae", {})
        extra = ops.get(f"{variant}__seed_spread", {}).get("extra_seeds", [])
        expected = {"epochs": vae.get("epochs", default.epochs),
                    "batch_size": vae.get("batch_size", default.batch_size), "all_rows": not raw,
                    "n_seeds": 1 + len(extra)}
        expected.update({k: raw[k] for k in ("train_rows", "test_rows") if k in raw})
        if all(settings.get(k) == v for k, v in expected.items()):
            return name
    return "custom"


def profile_path(name: str) -> Path:
    return PROFILE_DIR / f"{name}.yaml"


def write_profiles() -> None:
    PROFILE_DIR.mkdir(exist_ok=True)
    for name, build in {**PROFILES, **ADDITIONS}.items():
        what = "profile" if name in PROFILES else "addition"
        about = textwrap.fill(f"Run config {what} '{name}': {' '.join(build.__doc__.split())}", 96)
        header = textwrap.indent(about, "# ") + "\n# Generated by `python -m clustering_dag.profiles`.\n"
        profile_path(name).write_text(header + yaml.safe_dump(build() or {"ops": {}}, sort_keys=True))


if __name__ == "__main__":
    write_profiles()
    sys.stdout.write("\n".join(str(profile_path(n)) for n in {**PROFILES, **ADDITIONS}) + "\n")
