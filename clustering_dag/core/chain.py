"""One variant's chain as steps, from the registry of :mod:`clustering_dag.core.spaces`: its
models, each space's rows and each space's clusters, in the order their inputs need.

Every step's function here is what its Dagster asset calls: :func:`make_space`,
:func:`fit_space`, a model's ``fit``, :func:`assign` and :func:`metric_rows`. :func:`run_chain`
calls the same functions, in memory, under another seed (the extra seeds of ``seed_spread``): one
code path, whether Dagster runs a step or the chain does.

A seed replaces every seed of the chain: the autoencoder's initialisation, batch order and
sampled code, UMAP's, the cluster initialisations and the classifier's. The data stay as they
are, the noise of the test set included.

The chain has two parts: the *shared* steps, made from the data alone (the pixels' clusters, the
invariance encoder and its spaces), the same for every variant, and each variant's own. The seeds
of a dataset run the shared part once (``part="shared"``) and each variant's part once per variant
(``part="variant"``), not the shared part again per variant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

from clustering_dag.core.spaces import DATA, MODELS, SPACES, Space


@dataclass(frozen=True)
class Step:
    """One step of the chain: the asset it makes, what it reads, and
    ``run(inputs, config, device, log)``."""

    name: str
    inputs: tuple[str, ...]
    run: Callable
    shared: bool = False


def make_space(space: Space, inputs: dict, config=None):
    """The space's rows, made from ``inputs`` (its assets' values, by name) under ``config``,
    which the rows' metadata records (``config``): what the chain reads back to run it again."""
    made = space.make(**{name: inputs[name] for name in space.inputs}, config=config)
    if config is not None:
        made.meta["config"] = asdict(config)
    return made


def fit_space(representation, config):
    """The clusters of a space, fitted on its training split: k-means or a Gaussian mixture as
    ``config`` says (a :class:`~clustering_dag.core.clustering.ClusterModel`)."""
    from clustering_dag.core.clustering import fit_clusters

    return fit_clusters(representation.train_x, config)


def steps() -> list[Step]:
    """Every step of the chain after the data, each after the steps it reads."""
    found: dict[str, Step] = {}
    for name, model in MODELS.items():
        found[name] = Step(name, model.inputs, lambda inputs, cfg, device, log, m=model: m.fit(
            **{n: inputs[n] for n in m.inputs}, config=cfg, device=device, log=log), model.shared)
    for space in SPACES.values():
        found[space.representation] = Step(
            space.representation, space.inputs,
            lambda inputs, cfg, device, log, s=space: make_space(s, inputs, cfg), space.shared)
        if space.clustering:
            found[space.clustering] = Step(
                space.clustering, (space.representation,),
                lambda inputs, cfg, device, log, s=space: fit_space(inputs[s.representation], cfg).to_frame(),
                space.shared)
    ordered, done = [], set(DATA)
    while len(ordered) < len(found):
        ready = [s for s in found.values() if s.name not in done and set(s.inputs) <= done]
        if not ready:
            raise ValueError(f"the chain's steps read what no step makes: "
                             f"{ {s.name: s.inputs for s in found.values() if s.name not in done} }")
        ordered += ready
        done |= {s.name for s in ready}
    return ordered


def config_of(name: str, value):
    """The config a step's stored value was made under (None: a space without settings)."""
    if name in MODELS:
        return value.config
    space = next((s for s in SPACES.values() if name in (s.representation, s.clustering)), None)
    if space is None:
        raise ValueError(f"{name} is no step of the chain; its steps: {[s.name for s in steps()]}")
    if name == space.clustering:
        from clustering_dag.core.clustering import ClusterModel

        return ClusterModel.from_frame(value).config
    return space.config(**value.meta["config"]) if space.config else None


def space_k(space: Space, values: dict) -> int:
    """How many clusters ``space`` was asked for: its fitted clusters', or its classifier's
    classes."""
    return len(values[space.clustering]) if space.clustering else values[space.representation].dim


def assign(space: Space, representation, clustering):
    """The cluster of each test row of a space: the fitted clusters' prediction, or the space's own
    most probable class."""
    if space.clusters == "classifier":
        return representation.test_x.argmax(1)
    from clustering_dag.core.clustering import ClusterModel

    return ClusterModel.from_frame(clustering).predict(representation.test_x)


def metric_rows(spaces: list[Space], values: dict, assignments, silhouette_sample: int | None) -> list[dict]:
    """A metric table's rows, one per space of ``spaces`` (``values``: the assets' values by name;
    ``assignments``: each space's test clusters, by space name)."""
    import numpy as np

    from clustering_dag.core.metrics import space_row

    return [space_row(space.name, values[space.representation], np.asarray(assignments[space.name]),
                      space_k(space, values), silhouette_sample) for space in spaces]


PARTS = ("all", "shared", "variant")


def run_chain(data: dict, configs: dict, seed: int, silhouette_sample: int | None = None,
              device: str = "/CPU:0", log=None, part: str = "all"):
    """The metric table of the chain run again under ``seed``: every step of :func:`steps` (of
    ``part``: the shared steps, a variant's own, or all) from ``data`` (``raw_dataset``,
    ``noisy_dataset``; for a variant's part, the shared values it reads too) with its config in
    ``configs`` (by step name; what :func:`config_of` reads from a run's values) reseeded; a row
    per space of that part, with ``seed``, and where an autoencoder was trained its seconds and
    its active latent dimensions. A step ``data`` gives whose config has no seed and whose
    inputs are all given too (the scattering features, the pixels) is not made again: it would
    come out the same."""
    import pandas as pd

    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    say = log or (lambda _: None)
    start, values = time.perf_counter(), dict(data)
    given = set(data)  # the values as ``data`` gives them, none made again under this seed
    chosen = lambda shared: part == "all" or shared == (part == "shared")  # noqa: E731
    for step in (s for s in steps() if chosen(s.shared)):
        config = configs.get(step.name)
        seeded = config is not None and "seed" in {f.name for f in fields(config)}
        if step.name in given and not seeded and set(step.inputs) <= given:
            continue  # no seed and the same inputs: the same value under every seed
        given.discard(step.name)
        if seeded:
            config = replace(config, seed=seed)
        values[step.name] = step.run(values, config, device, say)
        if step.name == "trained_vae":
            trained = values[step.name]
            say(f"seed {seed}: autoencoder trained in {trained.seconds:.1f} s, "
                f"{trained.diagnostics['active_dims']} of {config.latent_dim} latent dimensions active")
    spaces = [s for s in SPACES.values() if chosen(s.shared)]
    assignments = {s.name: assign(s, values[s.representation], values.get(s.clustering)) for s in spaces}
    frame = pd.DataFrame(metric_rows(spaces, values, assignments, silhouette_sample))
    frame.insert(0, "seed", seed)
    if part != "shared":
        trained = values["trained_vae"]
        frame["vae_seconds"] = round(trained.seconds, 2)
        frame["active_latent_dims"] = trained.diagnostics["active_dims"]
    frame["seconds"] = round(time.perf_counter() - start, 2)
    return frame
