"""Incremental re-runs: nothing changed -> nothing recomputed; a config change -> exactly the
assets below it are recomputed. Asserts on what ran (each materialization's ``reused`` flag)."""

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, AssetSelection, materialize

from clustering_dag.definitions import all_assets, defs, resources
from clustering_dag.profiles import quick


def run(config: dict) -> dict[str, bool]:
    result = materialize(all_assets, partition_key="mnist", run_config=config, resources=resources)
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
def first_run(data_dir, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CLUSTERING_DAG_DATA_DIR", str(data_dir))
    mp.setenv("CLUSTERING_DAG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    reused = run(quick())
    yield reused
    mp.undo()


def test_cold_run_computes_everything(first_run):
    assert set(first_run) == {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert not any(first_run.values())


def test_warm_run_recomputes_nothing(first_run):
    reused = run(quick())
    assert all(reused.values()), [k for k, v in reused.items() if not v]


def test_kmeans_change_recomputes_only_clustering_and_below(first_run):
    config = with_op_config(quick(), "paper__kmeans_latent", seed=7)
    reused = run(config)
    recomputed = {k for k, v in reused.items() if not v}
    assert recomputed == downstream_of("paper/kmeans_latent")
    assert recomputed == {"paper/kmeans_latent", "paper/cluster_assignments", "paper/clustering_metrics",
                          "paper/paper_comparison", "paper/figure_latent_centroids"}
    assert reused["paper/trained_vae"] and reused["paper/latent_representation"]


def test_noise_change_recomputes_the_noisy_set_and_below(first_run):
    reused = run(with_op_config(quick(), "noisy_test_set", sigma=0.1))
    recomputed = {k for k, v in reused.items() if not v}
    # elbo/trained_vae is downstream in the graph but trains on the clean images: its inputs did
    # not change, so it and what only it feeds (its loss curve, its t-SNE of the clean test
    # images) are rightly reused.
    clean_only = {"elbo/trained_vae", "elbo/figure_loss_curve", "elbo/tsne_embeddings", "elbo/figure_tsne"}
    assert recomputed == downstream_of("noisy_test_set") - clean_only
    assert {"raw_dataset", "tsne_original", "elbo/trained_vae"} <= {k for k, v in reused.items() if v}
    assert "paper/trained_vae" in recomputed


def test_damaged_cache_file_is_recomputed_not_trusted(first_run):
    config = with_op_config(quick(), "noisy_test_set", sigma=0.1)
    run(config)  # settle the cache on this config (warm when the test above ran)
    path = Path(os.environ["CLUSTERING_DAG_CACHE_DIR"]) / "tsne_original" / "mnist.parquet"
    with open(path, "r+b") as fh:
        fh.truncate(100)
    reused = run(config)
    assert {k for k, v in reused.items() if not v} == {"tsne_original"}
    assert pq.read_table(path).num_rows == 1000  # rewritten whole
