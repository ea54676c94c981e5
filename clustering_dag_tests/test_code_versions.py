"""Code versions follow the code: an edit to a core module changes the code version of exactly the
assets that run it, and a run after the edit recomputes those and what lies below them, nothing
above or beside."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from dagster import AssetSelection

from clustering_dag.definitions import defs
from clustering_dag.defs.resources import Accelerator, DatasetSource
from clustering_dag.defs.versioning import PACKAGE_DIR, SourceVersions

GRAPH = defs.resolve_asset_graph()
VAE_USERS = {f"{v}/{a}" for v in ("paper", "elbo") for a in (
    "trained_vae", "reconstructed_representation", "latent_representation", "tsne_embeddings",
    "figure_latent_centroids", "seed_spread")}
METRICS_USERS = {f"{v}/{a}" for v in ("paper", "elbo")
                 for a in ("clustering_metrics", "seed_spread", "paper_comparison")}


RUNS = {"raw_dataset": (DatasetSource.load, DatasetSource.fingerprint),
        **{f"{v}/{a}": (Accelerator.select,)
           for v in ("paper", "elbo") for a in ("trained_vae", "seed_spread")}}


def versions(sources: dict | None = None) -> dict[str, str]:
    """Every asset's code version, derived as the code location does, with ``sources`` replacing
    files' text."""
    derive = SourceVersions(sources)
    out = {}
    for key in GRAPH.materializable_asset_keys:
        fn = GRAPH.get(key).assets_def.op.compute_fn.decorated_fn
        out[key.to_user_string()] = derive.version(fn, RUNS.get(key.to_user_string(), ()))
    return out


def changed_by(path, edit) -> set[str]:
    before = versions()
    after = versions({path: edit(path.read_text())})
    return {k for k in before if before[k] != after[k]}


def below(keys: set[str]) -> set[str]:
    selection = AssetSelection.assets(*(k.split("/") for k in keys)).downstream()
    return {k.to_user_string() for k in selection.resolve(GRAPH)}


def add_code(text: str) -> str:
    return text + "\n\n_EDITED = True\n"


def test_versions_on_disk_are_the_declared_ones():
    declared = {k.to_user_string(): GRAPH.get(k).code_version for k in GRAPH.materializable_asset_keys}
    assert declared == versions()
    assert len(set(declared.values())) > 10  # assets that run different code differ


def test_editing_core_vae_changes_the_vae_assets_only():
    assert changed_by(PACKAGE_DIR / "core" / "vae.py", add_code) == VAE_USERS


def test_editing_core_metrics_changes_the_metric_tables_only():
    assert changed_by(PACKAGE_DIR / "core" / "metrics.py", add_code) == METRICS_USERS


def test_editing_the_dataset_readers_changes_the_raw_data_only():
    assert changed_by(PACKAGE_DIR / "core" / "idx.py", add_code) == {"raw_dataset"}
    assert changed_by(PACKAGE_DIR / "core" / "user_data.py", add_code) == {"raw_dataset"}


def test_editing_figures_leaves_data_and_training_alone():
    changed = changed_by(PACKAGE_DIR / "core" / "figures.py", add_code)
    assert {"tsne_original", "paper/figure_voronoi", "elbo/tsne_embeddings"} <= changed
    assert not changed & {"raw_dataset", "noisy_test_set", "paper/trained_vae", "kmeans_original",
                          "paper/clustering_metrics"}  # their previews are not their values


def test_comments_and_docstrings_do_not_count():
    path = PACKAGE_DIR / "core" / "vae.py"
    assert changed_by(path, lambda t: t.replace('"""A variational', '"""Edited. A variational', 1)
                      .replace("\n", "  # a comment\n", 3)) == set()


def test_editing_a_helper_of_the_dagster_layer_changes_its_users_only():
    path = PACKAGE_DIR / "defs" / "assets" / "figures.py"
    assert changed_by(path, lambda t: t.replace("for i in range(3):", "for i in (0, 1, 2):")) == {
        "tsne_original", "paper/tsne_embeddings", "elbo/tsne_embeddings"}  # users of embed_frame()
    checks = PACKAGE_DIR / "defs" / "assets" / "clustering.py"
    assert changed_by(checks, lambda t: t.replace(  # @unversioned: checks run on every materialization
        '"metrics_finite", passed=not bad', '"metrics_finite", passed=len(bad) == 0')) == set()


def run_edited_copy(graph, tmp_path, module: str) -> dict[str, bool]:
    """Copy the package, add code to ``core/<module>.py``, and materialize the quick graph with
    the copy in a fresh process against a copy of the shared cache: what was reused?"""
    shutil.copytree(PACKAGE_DIR, tmp_path / "src" / "clustering_dag",
                    ignore=shutil.ignore_patterns("__pycache__"))
    edited = tmp_path / "src" / "clustering_dag" / "core" / f"{module}.py"
    edited.write_text(add_code(edited.read_text()))
    script = (
        "import json, clustering_dag\n"
        f"assert clustering_dag.__file__.startswith({str(tmp_path)!r}), clustering_dag.__file__\n"
        "from dagster import materialize\n"
        "from clustering_dag.definitions import all_assets, resources\n"
        "from clustering_dag.profiles import quick\n"
        "r = materialize(all_assets, partition_key='mnist', run_config=quick(), resources=resources)\n"
        "print(json.dumps({e.asset_key.to_user_string(): e.materialization.metadata['reused'].value\n"
        "                  for e in r.get_asset_materialization_events()}))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path / "src", capture_output=True,
                          text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(tmp_path / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("module, edited_users", [("vae", VAE_USERS), ("metrics", METRICS_USERS)])
def test_a_core_edit_recomputes_its_users_and_what_lies_below(graph_copy, tmp_path, module, edited_users):
    reused = run_edited_copy(graph_copy, tmp_path, module)
    recomputed = {k for k, v in reused.items() if not v}
    assert recomputed == below(edited_users)
    if module == "vae":
        assert not recomputed & {"raw_dataset", "noisy_test_set", "kmeans_original", "tsne_original"}
    else:
        assert recomputed == METRICS_USERS
