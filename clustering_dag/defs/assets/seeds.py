"""Seeds and spread, once per variant: ``<variant>/seed_spread`` holds the variant's metric table
for every seed (the run's own, plus ``extra_seeds``), each extra seed the whole chain again
(:func:`clustering_dag.core.chain.run_chain`: the steps of the graph's own assets, from the
registry of spaces): autoencoder, every space, its clusters, the metrics. Its metadata shows
mean ± sd per row; the paper comparison and the report read it.

With no extra seeds (the default, and the main command) it only restates ``clustering_metrics``
and costs nothing; the ``seeds`` profile adds two.
"""

from dagster import AssetExecutionContext, Config, MetadataValue, Output
from pydantic import Field

from clustering_dag.defs.assets.common import table_metadata
from clustering_dag.defs.cached import cached_asset
from clustering_dag.defs.executors import QUEUE_TAG, VAE_QUEUE
from clustering_dag.defs.resources import Accelerator
from clustering_dag.defs.versioning import unversioned


class SeedsConfig(Config):
    extra_seeds: list[int] = Field(
        default=[], description="Run the variant's whole chain (autoencoder training, representations, "
                                "UMAP, clusters, refined classifier, metrics) again under each of these "
                                "seeds; the table gets mean ± sd over them and the run's own seed. [] = "
                                "the run's seed only.")


def spread_asset(chain: tuple[str, ...]):
    """``seed_spread``, reading every value of the run's chain (``chain``: the step names)."""
    from clustering_dag.core.spaces import chain_functions

    @cached_asset(per_variant=True, group="clustering", kinds={"tensorflow"},
                  runs=(Accelerator.select, *chain_functions()), reads=chain, pool="vae_training",
                  op_tags={QUEUE_TAG: VAE_QUEUE})  # it trains autoencoders: the GPU workers
    def seed_spread(context: AssetExecutionContext, config: SeedsConfig, accelerator: Accelerator,
                    clustering_metrics, **values):
        """The metric table under several seeds (config `extra_seeds`; the `seeds` profile adds
        two): every row's mean ± sd. Each seed runs the chain again (the same steps as the graph's
        assets) with the run's settings, read from the values the run made."""
        import pandas as pd

        from clustering_dag.core.chain import config_of, run_chain
        from clustering_dag.core.spaces import DATA

        trained_vae = values["trained_vae"]
        main_seed = trained_vae.config.seed
        extra = [s for s in dict.fromkeys(config.extra_seeds) if s != main_seed]
        main = clustering_metrics.assign(seed=main_seed, vae_seconds=round(trained_vae.seconds, 2),
                                         active_latent_dims=trained_vae.diagnostics.get("active_dims", -1))
        if extra:
            first = clustering_metrics.iloc[0]
            sample = int(first["silhouette_rows"]) if first["silhouette_rows"] < first["test_rows"] else None
            data = {name: values[name] for name in DATA}
            configs = {name: config_of(name, value) for name, value in values.items() if name not in DATA}
            device = accelerator.select(context.log)
            runs = [run_chain(data, configs, s, sample, device, context.log.info) for s in extra]
            main = pd.concat([main, *runs], ignore_index=True)
        return Output(main, metadata=_spread_metadata(main))

    return seed_spread


def _chain() -> tuple[str, ...]:
    from clustering_dag.core.chain import steps
    from clustering_dag.core.spaces import DATA

    return (*DATA, *(step.name for step in steps()))


seed_spread = spread_asset(_chain())


@unversioned
def _spread_metadata(runs) -> dict:
    from clustering_dag.core.seeds import SPREAD_METRICS, mean_sd, spread

    table = spread(runs)
    shown = table[["representation", "dim", "n_seeds"]].copy()
    for m in SPREAD_METRICS:
        if f"{m}_mean" in table:
            digits = 1 if m == "chs" else 3
            shown[m] = [mean_sd(a, b, digits) for a, b in zip(table[f"{m}_mean"], table[f"{m}_sd"])]
    return {"spread": table_metadata(shown), "seeds": MetadataValue.json(sorted(set(runs["seed"].tolist()))),
            "n_seeds": int(runs["seed"].nunique())}
