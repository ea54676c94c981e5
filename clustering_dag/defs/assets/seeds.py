"""Seeds and spread, once per variant: ``<variant>/seed_spread`` holds the variant's metric table
for every seed (the run's own, plus ``extra_seeds``), each extra seed the whole chain again
(:func:`clustering_dag.core.chain.run_chain`: the steps of the graph's own assets, from the
registry of spaces): autoencoder, every space, its clusters, the metrics. Its metadata shows
mean ± sd per row; the paper comparison and the report read it.

The shared part of the chain (the pixels' clusters, the invariance encoder and its spaces: the
same for every variant) runs once per seed and dataset, in ``shared_seed_spread``; each variant's
``seed_spread`` runs its own part and takes the shared rows from there.

With no extra seeds (the default, and the main command) both only restate what the run made and
cost nothing; the ``seeds`` profile adds two.
"""

from dagster import AssetExecutionContext, Config, MetadataValue, Output
from pydantic import Field

from clustering_dag.core.errors import DataError
from clustering_dag.defs.assets.clustering import MetricsConfig
from clustering_dag.defs.assets.common import table_metadata
from clustering_dag.defs.cached import cached_asset, variant_of
from clustering_dag.defs.executors import QUEUE_TAG, VAE_QUEUE
from clustering_dag.defs.resources import Accelerator
from clustering_dag.defs.versioning import unversioned


class SeedsConfig(Config):
    extra_seeds: list[int] = Field(
        default=[], description="Run the variant's whole chain (autoencoder training, representations, "
                                "UMAP, clusters, refined classifier, metrics) again under each of these "
                                "seeds; the table gets mean ± sd over them and the run's own seed. [] = "
                                "the run's seed only. The shared spaces' rows come from "
                                "shared_seed_spread, which must have run under the same seeds.")


class SharedSeedsConfig(MetricsConfig):
    extra_seeds: list[int] = Field(
        default=[], description="Run the chain's shared part (the pixels' clusters, the invariance "
                                "encoder and its spaces) again under each of these seeds, once for "
                                "every variant's seed_spread; give them the same seeds.")


def _extra(seeds: list[int], main_seed: int) -> list[int]:
    return [s for s in dict.fromkeys(seeds) if s != main_seed]


def shared_spread_asset(chain: tuple[str, ...]):
    """``shared_seed_spread``, reading the data and the shared part of the run's chain."""
    from clustering_dag.core.spaces import chain_functions

    @cached_asset(group="clustering", kinds={"tensorflow"},
                  runs=(Accelerator.select, *chain_functions(shared_only=True)),
                  reads=chain, pool="vae_training", op_tags={QUEUE_TAG: VAE_QUEUE})
    def shared_seed_spread(context: AssetExecutionContext, config: SharedSeedsConfig,
                           accelerator: Accelerator, **values):
        """The shared spaces' metric rows under each extra seed (config `extra_seeds`; the `seeds`
        profile adds two): the shared part of the chain run again with the run's settings, once
        for all variants. Empty without extra seeds."""
        import pandas as pd

        from clustering_dag.core.chain import config_of, run_chain
        from clustering_dag.core.configs import DEFAULT_SEED
        from clustering_dag.core.spaces import DATA

        configs = {name: config_of(name, value) for name, value in values.items() if name not in DATA}
        seeded = [c.seed for c in configs.values() if c is not None and hasattr(c, "seed")]
        extra = _extra(config.extra_seeds, seeded[0] if seeded else DEFAULT_SEED)
        test_rows = len(values["noisy_dataset"].test_x)
        sample = config.silhouette_sample
        sample = sample if sample and sample < test_rows else None
        data = dict(values)  # the data, and the steps that no seed changes
        device = accelerator.select(context.log) if extra else None
        runs = [run_chain(data, configs, s, sample, device, context.log.info, part="shared") for s in extra]
        table = pd.concat(runs, ignore_index=True) if runs else pd.DataFrame(
            {"seed": pd.Series(dtype="int64"), "representation": pd.Series(dtype="str")})
        return Output(table, metadata={"seeds": MetadataValue.json(extra),
                                       "rows": table_metadata(table) if len(table) else "none"})

    return shared_seed_spread


def spread_asset(chain: tuple[str, ...]):
    """``seed_spread``, reading every value of the run's chain (``chain``: the step names)."""
    from clustering_dag.core.spaces import chain_functions

    @cached_asset(per_variant=True, group="clustering", kinds={"tensorflow"},
                  runs=(Accelerator.select, *chain_functions()), reads=chain, pool="vae_training",
                  op_tags={QUEUE_TAG: VAE_QUEUE})  # it trains autoencoders: the GPU workers
    def seed_spread(context: AssetExecutionContext, config: SeedsConfig, accelerator: Accelerator,
                    clustering_metrics, shared_seed_spread, **values):
        """The metric table under several seeds (config `extra_seeds`; the `seeds` profile adds
        two): every row's mean ± sd. Each seed runs the variant's part of the chain again (the
        same steps as the graph's assets) with the run's settings, read from the values the run
        made; the shared spaces' rows under that seed come from shared_seed_spread."""
        import pandas as pd

        from clustering_dag.core.chain import config_of, run_chain, steps
        from clustering_dag.core.spaces import DATA, SPACES

        trained_vae = values["trained_vae"]
        main_seed = trained_vae.config.seed
        extra = _extra(config.extra_seeds, main_seed)
        # The autoencoder's seconds and active latent dimensions of each seed, for every row.
        per_seed = {main_seed: (round(trained_vae.seconds, 2),
                                trained_vae.diagnostics.get("active_dims", -1))}
        tables = [clustering_metrics.assign(seed=main_seed)]
        if extra:
            missing = sorted(set(extra) - set(shared_seed_spread["seed"]))
            if missing:
                raise DataError(f"{variant_of(context)}/seed_spread: shared_seed_spread has no rows for "
                                f"seeds {missing}; give it the same extra_seeds (the seeds profile does).")
            first = clustering_metrics.iloc[0]
            sample = int(first["silhouette_rows"]) if first["silhouette_rows"] < first["test_rows"] else None
            shared_rows = shared_seed_spread[shared_seed_spread["seed"].isin(extra)]
            measured = set(shared_rows["silhouette_rows"].astype(int))
            if measured and measured != {int(first["silhouette_rows"])}:
                raise DataError("shared_seed_spread measured the silhouette on another number of rows "
                                "than clustering_metrics: give both the same silhouette_sample.")
            shared = {step.name for step in steps() if step.shared}
            data = {name: value for name, value in values.items() if name in DATA or name in shared}
            configs = {name: config_of(name, value) for name, value in values.items() if name not in DATA}
            device = accelerator.select(context.log)
            for seed in extra:
                run = run_chain(data, configs, seed, sample, device, context.log.info, part="variant")
                per_seed[seed] = (run["vae_seconds"].iloc[0], run["active_latent_dims"].iloc[0])
                tables.append(run)
            tables.append(shared_rows)
        order = {name: i for i, name in enumerate(SPACES)}
        main = pd.concat(tables, ignore_index=True)
        main = main.assign(_order=main["representation"].map(order)).sort_values(
            ["seed", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
        main["vae_seconds"] = [float(per_seed[s][0]) for s in main["seed"]]
        main["active_latent_dims"] = [int(per_seed[s][1]) for s in main["seed"]]
        return Output(main, metadata=_spread_metadata(main))

    return seed_spread


def _chain(shared_only: bool = False) -> tuple[str, ...]:
    from clustering_dag.core.chain import steps
    from clustering_dag.core.spaces import DATA

    return (*DATA, *(step.name for step in steps() if step.shared or not shared_only))


shared_seed_spread = shared_spread_asset(_chain(shared_only=True))
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
