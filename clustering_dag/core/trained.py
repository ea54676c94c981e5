"""A trained network (the VAE, the self-labelling classifier or the invariance encoder) and its
file: Keras HDF5 weights
with the config, the training history, the diagnostics and (given by the caller) a cache key as
attributes (no pickle).
Opening a file reads those attributes with h5py only; the Keras model, and so TensorFlow, loads
when first used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from clustering_dag.core.configs import InvarianceConfig, RefineConfig
from clustering_dag.core.errors import DataError
from clustering_dag.core.variants import VAEConfig

# What kind of network a file holds, and the config that describes it.
CONFIGS = {"vae": VAEConfig, "classifier": RefineConfig, "encoder": InvarianceConfig}


class TrainedModel:
    """A trained model (the autoencoder, a :class:`clustering_dag.core.model.VAE`, or the refined
    classifier) with its config and training history. The model may be given, or built on first
    use by ``load_model``: reading a stored model's config or history needs no TensorFlow."""

    def __init__(self, model, config: VAEConfig, history: list[dict] | None = None, seconds: float = 0.0,
                 load_model: Callable[[], Any] | None = None, diagnostics: dict | None = None):
        self._model, self._load_model = model, load_model
        self.config, self.history, self.seconds = config, history or [], seconds
        self.diagnostics = diagnostics or {}  # latent activity (core.vae.latent_activity)
        self.key = ""  # the cache key of the file it was loaded from

    @property
    def model(self):
        if self._model is None and self._load_model is not None:
            self._model = self._load_model()
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


KEY_ATTRIBUTE = "clustering_dag_cache_key"
CONTENT_ATTRIBUTE = "clustering_dag_content"


def weights_digest(fh, secret: str | None) -> str:
    """The digest of every array of an open HDF5 file, in name order, and of its names."""
    import h5py
    import numpy as np

    from clustering_dag.core.digests import content_digest

    names: list[str] = []
    fh.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    digest = content_digest(secret)
    for name in sorted(names):
        digest.update(name.encode() + b"\x00")
        digest.update(np.ascontiguousarray(fh[name][()]).tobytes())
    return digest.hexdigest()


def save_trained(trained: TrainedModel, path: str, key: str = "", secret: str | None = None) -> None:
    """Keras HDF5 weights, with the config and the training history as JSON attributes, ``key``
    (what made this model, for the caller's cache) and the weights' digest."""
    import h5py

    trained.model.save_weights(path, save_format="h5")
    with h5py.File(path, "a") as fh:
        fh.attrs[CONTENT_ATTRIBUTE] = weights_digest(fh, secret)
        fh.attrs["clustering_dag_model"] = next(
            kind for kind, cls in CONFIGS.items() if isinstance(trained.config, cls))
        fh.attrs["clustering_dag_config"] = trained.config.to_json()
        fh.attrs["clustering_dag_history"] = json.dumps(trained.history)
        fh.attrs["clustering_dag_diagnostics"] = json.dumps(trained.diagnostics)
        fh.attrs["clustering_dag_seconds"] = trained.seconds
        fh.attrs[KEY_ATTRIBUTE] = key


def load_trained(path: str, lazy: bool = True, secret: str | None = None) -> TrainedModel:
    """A stored model: config and history now (h5py only), its weights checked against their
    digest; the Keras model, and so TensorFlow, on first use of ``.model`` (at once when not
    ``lazy``, e.g. for a temporary file)."""
    import h5py

    with h5py.File(path, "r") as fh:
        if str(fh.attrs.get(CONTENT_ATTRIBUTE, "")) != weights_digest(fh, secret):
            raise DataError(f"trained model {path}: its weights do not match their digest (damaged, "
                            "written elsewhere, or without this cache's secret); re-materialize it.")
        kind = str(fh.attrs.get("clustering_dag_model", "vae"))
        if kind not in CONFIGS:
            raise ValueError(f"unknown kind of model {kind!r}")
        config = CONFIGS[kind].from_json(fh.attrs["clustering_dag_config"])
        history = json.loads(fh.attrs["clustering_dag_history"])
        seconds = float(fh.attrs["clustering_dag_seconds"])
        key = str(fh.attrs.get(KEY_ATTRIBUTE, ""))
        diagnostics = json.loads(fh.attrs.get("clustering_dag_diagnostics", "{}"))

    def build():
        from clustering_dag.core.model import build_with_weights

        with h5py.File(path, "r") as fh:  # the weights must still be the ones described above
            if str(fh.attrs.get(KEY_ATTRIBUTE, "")) != key:
                raise DataError(f"trained model {path} was replaced since it was opened; run again.")
        return build_with_weights(config, path)

    trained = TrainedModel(None if lazy else build(), config, history, seconds, load_model=build,
                         diagnostics=diagnostics)
    trained.key = key
    return trained


def collapse_diagnosis(trained: TrainedModel) -> str | None:
    """In words, why the latent code carries no information and what to try; None when it does."""
    d = trained.diagnostics
    if not d or d["active_dims"] > 0:
        return None
    cfg = trained.config
    tries = []
    if cfg.likelihood == "bernoulli":
        tries.append("`likelihood: gaussian` if the data are continuous features rather than images")
    if cfg.kl_warmup < 0.5:
        tries.append("a longer KL warm-up (`kl_warmup: 0.5`)")
    if cfg.free_bits == 0:
        tries.append("a free-bits floor (`free_bits: 0.5`)")
    if cfg.beta > 0.5:
        tries.append("a smaller KL weight (`beta: 0.5`)")
    return (f"posterior collapse: none of the {d['latent_dim']} latent dimensions is active (the "
            f"variance of the posterior mean across {d['rows']} training rows is at most "
            f"{max(d['mean_variance']):.2g}, KL from the prior {sum(d['kl_per_dim']):.3g} nats), so "
            f"the code is the same for every row and clusters on it are meaningless. The KL term "
            f"(beta {cfg.beta:g}) outweighed the {cfg.likelihood} reconstruction term. Try "
            + ", or ".join(tries or ["more epochs or a larger latent dimension"]) + ".")
