"""Spaces are data: the registry (clustering_dag.core.spaces) makes the assets, the chain's steps,
the tables' rows and the scored columns, and a space added in one place (a toy: PCA of the pixels)
shows up in the metric table, the seeds' table and a scored batch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from dagster import AssetKey

from clustering_dag.core.spaces import DATA, MODELS, SPACES, Space, add_space, original, scored_with
from clustering_dag.definitions import defs

GRAPH = defs.resolve_asset_graph()
KEYS = {k.to_user_string() for k in GRAPH.materializable_asset_keys}


def test_every_space_has_its_assets_and_one_for_every_variant_when_shared():
    for name, space in SPACES.items():
        made = {k for k in KEYS if k.split("/")[-1] in (space.representation, space.clustering)}
        per_asset = 2 if space.clustering else 1
        assert len(made) == per_asset * (1 if space.shared else 3), (name, made)
    assert "clusters_original" in KEYS and "paper/clusters_manifold" in KEYS
    assert not any(k.endswith("clusters_refined") for k in KEYS)  # a classifier's space: its own clusters


def test_the_tables_and_the_scoring_read_every_space_of_the_registry():
    for table in ("cluster_assignments", "clustering_metrics"):
        parents = {k.path[-1] for k in GRAPH.get(AssetKey(["dae", table])).parent_keys}
        assert {s.representation for s in SPACES.values()} <= parents
    scorable = [s for s in SPACES.values() if s.scorable]
    assert [s.name for s in scorable] == ["original", "reconstructed", "latent", "refined", "invariant"]
    assert scored_with(scorable) == ("clusters_original", "trained_vae", "clusters_reconstructed",
                                     "clusters_latent", "refined_classifier", "trained_encoder",
                                     "clusters_invariant")


def test_the_chain_runs_each_step_after_what_it_reads():
    from clustering_dag.core.chain import steps

    done = set(DATA)
    order = steps()
    for step in order:
        assert set(step.inputs) <= done, step
        done.add(step.name)
    assert {s.name for s in order} == {*MODELS, *(s.representation for s in SPACES.values()),
                                       *(s.clustering for s in SPACES.values() if s.clustering)}


def test_the_model_assets_read_what_the_chain_gives_their_models():
    for name, model in MODELS.items():
        key = AssetKey(name) if model.shared else AssetKey(["elbo", name])
        parents = {k.path[-1] for k in GRAPH.get(key).parent_keys}
        assert parents == set(model.inputs), name


def test_a_space_is_registered_once_and_must_say_how_it_is_clustered():
    with pytest.raises(ValueError, match="registered already"):
        add_space(SPACES["latent"])
    with pytest.raises(ValueError, match="clusters must be one of"):
        Space("bad", "clustered by hand", ("noisy_dataset",), original, clusters="by hand")
    assert list(SPACES)[-1] == "scattering_manifold"


def test_a_shared_space_reads_shared_assets_only_and_none_comes_after_the_graph_is_made():
    with pytest.raises(ValueError, match="latent_representation.*nothing shared makes"):
        add_space(Space("umap_of_codes", "shared, but reads a variant's code", ("latent_representation",),
                        original, shared=True))
    with pytest.raises(RuntimeError, match="comes too late"):  # this module loaded the definitions
        add_space(Space("late", "the pixels again", ("noisy_dataset",), original, shared=True))
    assert "late" not in SPACES and "umap_of_codes" not in SPACES


# A space of one's own, as docs/development.md shows: this script is all it takes.
TOY_SPACE = '''
import numpy as np

from clustering_dag.core.spaces import Space, add_space


def _pca(noisy_dataset):
    from sklearn.decomposition import PCA

    return PCA(10, svd_solver="full").fit(noisy_dataset.train_x)


def pca(noisy_dataset, config=None):
    """PCA of the noisy pixels to 10 dimensions, fitted on the training split."""
    fitted = _pca(noisy_dataset)
    return noisy_dataset.with_x(fitted.transform(noisy_dataset.train_x).astype(np.float32),
                                fitted.transform(noisy_dataset.test_x).astype(np.float32),
                                representation="pca")


def project_pca(values, x, memo):
    return _pca(values["noisy_dataset"]).transform(x).astype(np.float32)


add_space(Space("pca", "PCA of the pixels to 10 dimensions", ("noisy_dataset",), pca, shared=True,
                project=project_pca, project_inputs=("noisy_dataset",)))
'''

RUN = '''
import json
import numpy as np
from dagster import AssetKey, DagsterInstance, MultiPartitionKey, materialize

from clustering_dag.definitions import all_assets, resources
from clustering_dag.profiles import PROFILES

selection = [AssetKey(k) for k in (["pca_representation"], ["clusters_pca"], ["paper", "cluster_assignments"],
             ["paper", "clustering_metrics"], ["shared_seed_spread"], ["paper", "seed_spread"],
             ["paper", "test_scores"])]
names = {"__".join(key.path) for key in selection}
ops = {op: c for op, c in PROFILES["smoke"]()["ops"].items() if op in names}  # clusters_pca's n_init
ops["paper__seed_spread"] = ops["shared_seed_spread"] = {"config": {"extra_seeds": [7]}}
with DagsterInstance.get() as instance:
    run = materialize(all_assets, selection=selection, partition_key="mnist", instance=instance,
                      run_config={"ops": ops}, resources=resources)
    assert run.success
    reused = {e.asset_key.to_user_string(): e.materialization.metadata["reused"].value
              for e in run.get_asset_materialization_events()}
    metrics = run.output_for_node("paper__clustering_metrics")
    spread = run.output_for_node("paper__seed_spread")

    from clustering_dag import batches
    instance.add_dynamic_partitions(batches.batch_files.name, ["batch.npz"])
    scored = materialize(batches.all_assets, selection=[AssetKey(["paper", "scored_batch"])],
                         instance=instance, resources=batches.resources,
                         partition_key=MultiPartitionKey({"dataset": "mnist", "file": "batch.npz"}))
    assert scored.success
    batch = scored.output_for_node("paper__scored_batch")
    assigned = run.output_for_node("paper__cluster_assignments")
print(json.dumps({
    "reused": reused, "metric_rows": metrics["representation"].tolist(),
    "pca_dim": int(metrics.set_index("representation").loc["pca", "dim"]),
    "spread": sorted(map(list, spread[["representation", "seed"]].drop_duplicates().itertuples(index=False))),
    "batch_columns": list(batch.columns),
    "batch_matches": bool((batch["pca_cluster"].to_numpy() == assigned["pca"].to_numpy()[:len(batch)]).all()),
}))
'''


@pytest.mark.slow
def test_a_space_added_in_one_place_reaches_the_tables_the_seeds_and_scoring(graph_copy, tmp_path):
    """PCA of the pixels, registered by a script before the code location loads: no other module
    edited. Its row is in the metric table and the seeds' table (two seeds), and a batch (the
    noisy test split's first rows) is scored in it as the run clustered those rows."""
    from clustering_dag.defs.storage import AssetStorage

    noisy = AssetStorage(base_path=str(graph_copy.cache)).load(AssetKey("noisy_dataset"), "mnist", "parquet")
    inbox = tmp_path / "inbox"
    (inbox / "mnist").mkdir(parents=True)
    np.savez(inbox / "mnist" / "batch.npz", x=noisy.test_x[:200].reshape(-1, 28, 28))
    script = TOY_SPACE + RUN
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "CLUSTERING_DAG_INBOX": str(inbox)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["metric_rows"] == [*SPACES, "pca"] and out["pca_dim"] == 10
    assert ["pca", 1234] in out["spread"] and ["pca", 7] in out["spread"]
    assert {"pca_cluster", "pca_distance", "pca_far"} <= set(out["batch_columns"])
    assert out["batch_matches"]
    # Every selected asset reads the new space: each ran again, from the stored values of the rest.
    assert set(out["reused"]) == {"pca_representation", "clusters_pca", "shared_seed_spread", *(
        f"paper/{a}" for a in ("cluster_assignments", "clustering_metrics", "seed_spread", "test_scores"))}
    assert not any(out["reused"].values())
