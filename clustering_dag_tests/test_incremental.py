"""Incremental re-runs, as the cache sees them and as Dagster sees them.

- The cache: nothing changed -> nothing recomputed; a config change -> exactly the assets below it
  are recomputed (each materialization's ``reused`` flag says what ran).
- Dagster: every materialization reports its cache key as its data version, so Dagster's own
  stale-status API and declarative automation follow the cache: a real change leaves exactly the
  assets below it unsynced and requested; a re-run that only reused caches leaves nothing.
"""

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, evaluate_automation_conditions, materialize
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from clustering_dag.definitions import all_assets, defs, resources
from clustering_dag.defs.storage import AssetStorage
from clustering_dag_tests.conftest import graph_config

pytestmark = pytest.mark.slow

CLUSTERS_LATENT = AssetKey(["paper", "clusters_latent"])


# What the change tests below re-run: every asset but the `dae` variant's (whose steps are the same
# code as the others'; the warm-run test covers the whole graph).
CHANGE_RUNS = AssetSelection.all() - AssetSelection.key_prefixes(["dae"])


def in_change_runs(keys: set[str]) -> set[str]:
    return {k.to_user_string() for k in CHANGE_RUNS.resolve(defs.resolve_asset_graph())} & keys


def change_run(config: dict) -> dict[str, bool]:
    """``run`` of CHANGE_RUNS, with the config of its steps only (Dagster refuses any other)."""
    selected = in_change_runs({op.replace("__", "/") for op in config["ops"]})
    return run({"ops": {op: c for op, c in config["ops"].items() if op.replace("__", "/") in selected}},
               CHANGE_RUNS)


def run(config: dict, selection=None, instance=None) -> dict[str, bool]:
    result = materialize(all_assets, selection=selection, partition_key="mnist", run_config=config,
                         resources=resources, instance=instance)
    assert result.success
    return {e.asset_key.to_user_string(): e.materialization.metadata["reused"].value
            for e in result.get_asset_materialization_events()}


def with_op_config(base: dict, op: str, **values) -> dict:
    ops = {k: {"config": dict(v["config"])} for k, v in base["ops"].items()}
    ops.setdefault(op, {"config": {}})["config"].update(values)
    return {"ops": ops}


def downstream_of(key: str) -> set[str]:
    """The asset and everything below it in the lineage graph."""
    selection = AssetSelection.assets(AssetKey.from_user_string(key)).downstream()
    return {k.to_user_string() for k in selection.resolve(defs.resolve_asset_graph())}


@pytest.fixture(scope="module")
def cache_copy(shared_graph, data_dir, tmp_path_factory):
    """One private copy of the shared cold run for this module's runs, which build on each other."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLUSTERING_DAG_DATA_DIR", str(data_dir))
        yield shared_graph.copy_to(tmp_path_factory.mktemp("incremental"), mp)


# --- the cache -----------------------------------------------------------------------------------


def test_cold_run_computes_everything(shared_graph):
    reused = {e.asset_key.to_user_string(): e.materialization.metadata["reused"].value
              for e in shared_graph.result.get_asset_materialization_events()}
    assert set(reused) == {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert not any(reused.values())


def test_a_warm_run_reuses_every_value_and_shows_the_metadata_of_the_run_that_made_it(shared_graph,
                                                                                       graph_copy):
    """A warm re-run of the whole graph in the same instance recomputes nothing and shows what the
    cold run showed: the samples figure, the training history, the metric table, not a poorer
    summary."""
    with DagsterInstance.from_config(str(graph_copy.home)) as instance:
        result = materialize(all_assets, partition_key="mnist", run_config=graph_config(),
                             resources=resources, instance=instance)
    cold = {e.asset_key: e.materialization.metadata
            for e in shared_graph.result.get_asset_materialization_events()}
    for event in result.get_asset_materialization_events():
        warm = event.materialization.metadata
        assert warm["reused"].value, event.asset_key
        assert set(cold[event.asset_key]) <= set(warm), event.asset_key  # nothing the cold run said is lost
    assert "samples" in cold[AssetKey("raw_dataset")]
    assert "loss_curve" in cold[AssetKey(["paper", "trained_vae"])]


def test_kmeans_change_recomputes_only_clustering_and_below(cache_copy):
    config = with_op_config(graph_config(), "paper__clusters_latent", seed=7)
    reused = change_run(config)
    recomputed = {k for k, v in reused.items() if not v}
    assert recomputed == downstream_of("paper/clusters_latent")
    assert recomputed == {"paper/clusters_latent", "paper/cluster_assignments", "paper/clustering_metrics",
                          "paper/seed_spread", "paper/paper_comparison", "paper/figure_latent_centroids",
                          "paper/figure_manifold", "paper/test_scores", "figure_comparison"}
    assert reused["paper/trained_vae"] and reused["paper/latent_representation"]


def test_noise_change_recomputes_the_noisy_set_and_below(cache_copy):
    reused = change_run(with_op_config(graph_config(), "noisy_dataset", sigma=0.1))
    recomputed = {k for k, v in reused.items() if not v}
    # elbo/trained_vae is downstream in the graph but trains on the clean images: its inputs did
    # not change, so it and what only it feeds (its loss curve, its t-SNE of the clean test
    # images) are rightly reused.
    clean_only = {"elbo/trained_vae", "elbo/figure_loss_curve", "elbo/tsne_embeddings", "elbo/figure_tsne"}
    assert recomputed == in_change_runs(downstream_of("noisy_dataset") - clean_only)
    assert {"raw_dataset", "tsne_original", "elbo/trained_vae"} <= {k for k, v in reused.items() if v}
    assert "paper/trained_vae" in recomputed


def test_damaged_cache_file_is_recomputed_not_trusted(cache_copy):
    """A damaged current file is replaced by its kept value when that is whole, and recomputed
    when the kept value is damaged too."""
    config = with_op_config(graph_config(), "noisy_dataset", sigma=0.1)
    change_run(config)  # settle the cache on this config (warm when the test above ran)
    path = Path(os.environ["CLUSTERING_DAG_CACHE_DIR"]) / "tsne_original" / "mnist.parquet"
    test_rows = len(cache_copy.result.output_for_node("noisy_dataset").test_x)

    def damage(file: Path) -> None:
        damaged = file.read_bytes()[:100]
        file.unlink()  # a file of its own: the copy's files are hard links to the shared run's
        file.write_bytes(damaged)

    storage = AssetStorage()
    key = storage.stored_key(AssetKey("tsne_original"), "mnist")
    kept = Path(storage.version(AssetKey("tsne_original"), "mnist", "parquet", key).path)
    damage(path)
    assert all(change_run(config).values())  # the kept copy, whole, made current again
    assert pq.read_table(path).num_rows == test_rows
    damage(path)
    damage(kept)
    reused = change_run(config)
    assert {k for k, v in reused.items() if not v} == {"tsne_original"}
    assert pq.read_table(path).num_rows == test_rows  # rewritten whole
    assert pq.read_table(kept).num_rows == test_rows  # and kept whole


# --- Dagster's view ------------------------------------------------------------------------------


def unsynced(instance) -> set[str]:
    """Assets whose mnist partition Dagster's stale-status API reports as not fresh."""
    graph = defs.resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return {k.to_user_string() for k in graph.materializable_asset_keys
            if resolver.get_status(k, "mnist") != StaleStatus.FRESH}


def requested(evaluation) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys
            if evaluation.get_num_requested(k)}


def test_every_materialization_reports_its_cache_key_as_data_version(shared_graph):
    with DagsterInstance.from_config(str(shared_graph.home)) as instance:
        for key in defs.resolve_all_asset_keys():
            event = instance.get_latest_materialization_event(key)
            tags = event.asset_materialization.tags
            assert tags["dagster/data_version_is_user_provided"] == "true", key
            if key.path[-1].startswith("figure_"):  # PNGs carry the key in a text chunk
                continue
            cache_key = event.asset_materialization.metadata["cache_key"].value
            assert tags["dagster/data_version"] == cache_key, key


def test_unsynced_status_and_automation_follow_the_cache(graph_copy):
    km_config = {"ops": {"paper__clusters_latent": graph_config()["ops"]["paper__clusters_latent"]}}
    with DagsterInstance.from_config(str(graph_copy.home)) as instance:
        assert unsynced(instance) == set()
        tick = evaluate_automation_conditions(defs=defs, instance=instance)

        # Re-materialized with nothing changed: the cache is reused, the data version is the same.
        assert run(km_config, [CLUSTERS_LATENT], instance) == {"paper/clusters_latent": True}
        assert unsynced(instance) == set()
        tick = evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert tick.total_requested == 0

        # A new seed: a new value and data version. Its direct dependents are unsynced (Dagster
        # cannot tell whether a code-provided data version further down will change until those
        # run), and automation requests everything below it.
        changed = {"ops": {"paper__clusters_latent": {"config": {
            **km_config["ops"]["paper__clusters_latent"]["config"], "seed": 7}}}}
        assert run(changed, [CLUSTERS_LATENT], instance) == {"paper/clusters_latent": False}
        below = downstream_of("paper/clusters_latent") - {"paper/clusters_latent"}
        children = {k.to_user_string() for k in defs.resolve_asset_graph().get(CLUSTERS_LATENT).child_keys}
        assert unsynced(instance) == children and children < below
        tick = evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert requested(tick) == below
