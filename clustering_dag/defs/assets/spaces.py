"""Each representation space's rows, one asset per space of the registry
(:mod:`clustering_dag.core.spaces`): ``<space>_representation``, made by the space's own function
from the assets it names. A space made without the autoencoder (``original``) is one asset for
every variant; the others exist once per variant."""

import time

from dagster import AssetExecutionContext, Config, Output

from clustering_dag.core.spaces import SPACES, Space
from clustering_dag.defs.cached import cached_asset, flat, variant_of
from clustering_dag.defs.config import core_config, dagster_config
from clustering_dag.defs.versioning import unversioned


@unversioned
def describe(space: Space, made, seconds: float) -> dict:
    """What the UI shows of a space's rows: their width and rows, and what its maker recorded
    (UMAP's fitted rows, an autoencoder's code)."""
    import numpy as np
    from dagster import MetadataValue

    meta = {"dim": made.dim, "train_rows": len(made.train_x), "test_rows": len(made.test_x),
            "test_std": float(made.test_x.std()), "seconds": round(seconds, 2)}
    for name in ("fit_rows", "of_train_rows", "chosen_seed", "scattered"):
        if name in made.meta:
            meta[name] = made.meta[name]
    if "restart_agreement" in made.meta:
        meta["restart_agreement"] = MetadataValue.json(made.meta["restart_agreement"])
    if space.clusters == "classifier":  # its rows are class probabilities
        meta["test_mean_confidence"] = float(made.test_x.max(1).mean())
        meta["test_clusters_used"] = int(len(np.unique(made.test_x.argmax(1))))
    return meta


def representation_asset(space: Space):
    """The asset of ``space``'s rows."""
    config_type = dagster_config(space.config, f"{space.name.title()}Config") if space.config else Config

    @cached_asset(name=space.representation, per_variant=not space.shared,
                  group="data" if space.shared else "representations", reads=space.inputs,
                  runs=(space.make,), kinds=set(space.kinds) or None, description=space.about)
    def representation(context: AssetExecutionContext, config: config_type, **inputs):
        from clustering_dag.core.chain import make_space

        start = time.perf_counter()
        cfg = core_config(space.config, config) if space.config else None
        made = make_space(space, inputs, cfg)
        if not space.shared:
            made.meta["variant"] = variant_of(context)
        context.log.info(f"{space.name} ({space.about}): {made.dim} dimensions, "
                         f"{len(made.train_x):,} training and {len(made.test_x):,} test rows")
        return Output(made, metadata=describe(space, made, time.perf_counter() - start))

    return representation


representations = [a for space in SPACES.values() for a in flat(representation_asset(space))]
