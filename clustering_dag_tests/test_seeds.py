"""Seeds and spread: the chain run under the pipeline's own seed gives the pipeline's metric table
(one code path), another seed gives another table, and ``seed_spread`` summarises them."""

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, materialize

from clustering_dag.core.seeds import mean_sd, spread
from clustering_dag.core.spaces import Space, add_space, original, space_names

SPACES = space_names()

METRICS = ["dbi", "silhouette", "chs", "accuracy", "nmi", "ari", "purity"]


def test_spread_is_mean_and_sample_sd_per_space_in_pipeline_order():
    runs = pd.DataFrame([
        {"seed": s, "representation": rep, "dim": 3, "dbi": base + s, "accuracy": 0.5 + 0.1 * s}
        for s in (0, 1, 2) for base, rep in zip(range(10, 100, 10), reversed(SPACES))])
    table = spread(runs).set_index("representation")
    assert list(table.index) == list(SPACES)
    assert table.loc["original", "dbi_mean"] == 10 * len(SPACES) + 1
    assert table.loc["original", "dbi_sd"] == 1.0
    assert table.loc["latent", "accuracy_sd"] == pytest.approx(0.1)
    assert (table["n_seeds"] == 3).all() and "chs_mean" not in table
    one = spread(runs[runs["seed"] == 0])
    assert one["dbi_sd"].isna().all() and (one["n_seeds"] == 1).all()
    assert mean_sd(0.91234, 0.0141) == "0.912 ± 0.014" and mean_sd(0.5, float("nan")) == "0.500"


def test_a_chain_never_has_a_step_without_its_input():
    """A space reading what no step makes before it is refused, naming it: the chain never runs a
    step without its input."""
    with pytest.raises(ValueError, match="manifold_of_nothing"):
        add_space(Space("broken", "reads a space that does not exist", ("manifold_of_nothing",), original))
    assert "broken" not in SPACES


@pytest.mark.slow
def test_the_runs_own_seed_reproduces_its_table_and_another_seed_differs(shared_graph, data_dir):
    """The chain is the pipeline's code path: under the run's seeds (1234 throughout) it gives
    clustering_metrics exactly; under seed 7 the VAE, UMAP and clusters differ."""
    from clustering_dag.core.chain import config_of, run_chain, steps
    from clustering_dag.core.spaces import DATA
    from clustering_dag.definitions import defs  # noqa: F401 (declares every asset: which are shared)
    from clustering_dag.defs.cached import asset_key

    result = shared_graph.result

    def value(name: str):
        return result.output_for_node("__".join(asset_key(name, "elbo").path))

    trained = value("trained_vae")
    data = {name: value(name) for name in DATA}
    configs = {step.name: config_of(step.name, value(step.name)) for step in steps()}
    expected = value("clustering_metrics")

    same = run_chain(data, configs, seed=trained.config.seed)
    pd.testing.assert_frame_equal(same[expected.columns], expected, check_exact=False, rtol=1e-6)

    other = run_chain(data, configs, seed=7).set_index("representation")
    assert (other["seed"] == 7).all() and (other["active_latent_dims"] > 0).all()
    base = expected.set_index("representation")
    assert np.allclose(other.loc["original", ["dbi", "chs"]], base.loc["original", ["dbi", "chs"]], rtol=0.2)
    for space in ("reconstructed", "latent", "manifold", "refined", "invariant"):  # new networks: new numbers
        assert not np.isclose(other.loc[space, "dbi"], base.loc[space, "dbi"], rtol=1e-4), space
    # Still a learned code: as good as the run's own seed's, give or take 0.1 (chance: 0.1).
    assert other.loc["latent", "accuracy"] > base.loc["latent", "accuracy"] - 0.1


def test_a_step_no_seed_changes_is_taken_as_given(shared_graph, monkeypatch):
    """Under another seed, the shared part makes the seeded steps again and takes the scattering
    features (no seed, inputs unchanged) from the run: the same rows, not computed twice."""
    from clustering_dag.core import scattering
    from clustering_dag.core.chain import config_of, run_chain, steps
    from clustering_dag.definitions import defs  # noqa: F401 (declares every asset)
    from clustering_dag.defs.cached import asset_key

    result = shared_graph.result
    shared = [step.name for step in steps() if step.shared]
    values = {name: result.output_for_node("__".join(asset_key(name).path))
              for name in ("raw_dataset", "noisy_dataset", *shared)}
    configs = {name: config_of(name, values[name]) for name in shared}

    def not_again(*args, **kwargs):
        raise AssertionError("the scattering features were made again")

    monkeypatch.setattr(scattering, "scattering_representation", not_again)
    table = run_chain(values, configs, seed=7, part="shared").set_index("representation")
    assert (table["seed"] == 7).all() and "scattering_manifold" in table.index
    with pytest.raises(AssertionError, match="made again"):  # without the run's value it must be made
        run_chain({n: values[n] for n in ("raw_dataset", "noisy_dataset")}, configs, seed=7, part="shared")


@pytest.mark.slow
def test_seed_spread_asset_adds_seeds_and_the_comparison_reads_them(graph_copy):
    from clustering_dag.definitions import all_assets, resources

    key = AssetKey(["paper", "seed_spread"])
    seeds = {"extra_seeds": [1234, 7, 7]}  # 1234: the run's
    alone = materialize(all_assets, selection=[key], partition_key="mnist", resources=resources,
                        run_config={"ops": {"paper__seed_spread": {"config": seeds}}}, raise_on_error=False)
    assert not alone.success  # the shared spaces were not run under seed 7
    error = alone.get_step_failure_events()[0].step_failure_data.error.to_string()
    assert "shared_seed_spread has no rows for seeds [7]" in error
    config = {"ops": {"paper__seed_spread": {"config": seeds}, "shared_seed_spread": {"config": seeds}}}
    result = materialize(all_assets, selection=[AssetKey("shared_seed_spread"), key,
                                                AssetKey(["paper", "paper_comparison"])],
                         partition_key="mnist", run_config=config, resources=resources)
    assert result.success
    runs = result.output_for_node("paper__seed_spread")
    assert sorted(set(runs["seed"])) == [7, 1234] and len(runs) == 2 * len(SPACES)
    assert list(runs["representation"]) == 2 * list(SPACES)  # each seed's rows in the registry's order
    shared = result.output_for_node("shared_seed_spread")  # the shared part ran once, under seed 7
    from clustering_dag.core.spaces import SPACES as REGISTRY

    assert set(shared["seed"]) == {7} and set(shared["representation"]) == {
        name for name, space in REGISTRY.items() if space.shared}
    seven = runs[runs["seed"] == 7].set_index("representation")
    pd.testing.assert_frame_equal(seven.loc[shared["representation"], ["dbi", "accuracy"]],
                                  shared.set_index("representation")[["dbi", "accuracy"]])
    main = graph_copy.result.output_for_node("paper__clustering_metrics")
    pd.testing.assert_frame_equal(runs[runs["seed"] == 1234][main.columns].reset_index(drop=True), main)
    meta = result.asset_materializations_for_node("paper__seed_spread")[0].metadata
    assert meta["n_seeds"].value == 2 and meta["reused"].value is False
    shown = {r.data["representation"]: r.data for r in meta["spread"].records}
    assert set(shown) == set(SPACES) and "±" in shown["latent"]["accuracy"]
    comparison = result.output_for_node("paper__paper_comparison")
    assert (comparison["n_seeds"] == 2).all() and comparison["ours_sd"].notna().all()
    latent_dbi = comparison.query("representation == 'latent' and metric == 'dbi'")["ours_mean"].item()
    assert latent_dbi == pytest.approx(runs.query("representation == 'latent'")["dbi"].mean())
