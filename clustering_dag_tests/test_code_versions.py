"""Code versions follow the code: an edit to a core module changes the code version of exactly the
assets that run it, and a run after the edit recomputes those and what lies below them, nothing
above or beside."""

import ast
import inspect
import json
import os
import shutil
import subprocess
import sys

import pytest
from dagster import AssetSelection

from clustering_dag.core.spaces import SPACES
from clustering_dag.core.variants import VARIANTS
from clustering_dag.definitions import defs
from clustering_dag.defs.versioning import PACKAGE_DIR, SourceVersions
from clustering_dag_tests.conftest import GRAPH_PROFILE

GRAPH = defs.resolve_asset_graph()
GRAPH_KEYS = {k.to_user_string() for k in GRAPH.materializable_asset_keys}
VAE_USERS = {f"{v}/{a}" for v in VARIANTS for a in (
    "trained_vae", "reconstructed_representation", "latent_representation", "tsne_embeddings",
    "figure_latent_centroids", "seed_spread", "test_scores")}
METRICS_USERS = {"shared_seed_spread"} | {f"{v}/{a}" for v in VARIANTS
                                          for a in ("clustering_metrics", "seed_spread", "paper_comparison")}
DECODE_USERS = {f"{v}/figure_latent_centroids" for v in VARIANTS}


def versions(sources: dict | None = None) -> dict[str, str]:
    """Every asset's code version, derived as the code location does, with ``sources`` replacing
    files' text."""
    derive = SourceVersions(sources)
    out = {}
    for key in GRAPH.materializable_asset_keys:
        fn = inspect.unwrap(GRAPH.get(key).assets_def.op.compute_fn.decorated_fn)  # the asset's body
        out[key.to_user_string()] = derive.version(fn, fn.__runs__)  # and what its declaration names
    return out


def changed_by(path, edit) -> set[str]:
    before = versions()
    after = versions({path: edit(path.read_text())})
    return {k for k in before if before[k] != after[k]}


def below(keys: set[str]) -> set[str]:
    selection = AssetSelection.assets(*(k.split("/") for k in keys)).downstream()
    return {k.to_user_string() for k in selection.resolve(GRAPH)}


def edit(*names: str):
    """An edit of the code itself: a statement added at the end of each named function or method
    (``"decode"``, ``"VAE.__init__"``) of a module's text."""
    def apply(text: str) -> str:
        tree, lines = ast.parse(text), text.splitlines(keepends=True)
        spots = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
        spots += [m for c in tree.body if isinstance(c, ast.ClassDef) for m in c.body
                  if isinstance(m, ast.FunctionDef) and f"{c.name}.{m.name}" in names]
        assert len(spots) == len(names), f"not all of {names} found"
        for node in sorted(spots, key=lambda n: -n.end_lineno):
            lines.insert(node.end_lineno, " " * node.body[-1].col_offset + "_edited = True\n")
        return "".join(lines)

    return apply


def edit_constant(name: str):
    """An edit of a module-level constant's value (``INTERNAL = {...}`` -> ``{**{}, ...}``)."""
    return lambda text: text.replace(f"{name} = {{", f"{name} = {{**{{}}, ", 1)


# The edits the run tests make, and whose assets they recompute (with what lies below them).
EDITS = {
    "vae": ("model", edit("VAE.__init__"), VAE_USERS),  # the model every VAE asset builds or runs
    "metrics": ("metrics", lambda t: edit("internal_metrics")(edit_constant("INTERNAL")(t)), METRICS_USERS),
    "decode": ("vae", edit("decode"), DECODE_USERS),  # used by the decoded-centroid figures only
}


def test_versions_on_disk_are_the_declared_ones():
    declared = {k.to_user_string(): GRAPH.get(k).code_version for k in GRAPH.materializable_asset_keys}
    assert declared == versions()
    assert len(set(declared.values())) > 10  # assets that run different code differ


def test_editing_core_vae_changes_the_vae_assets_only():
    assert changed_by(PACKAGE_DIR / "core" / "model.py", edit("VAE.__init__")) == VAE_USERS


def test_an_edit_changes_the_users_of_that_function_not_of_its_module():
    path = PACKAGE_DIR / "core" / "vae.py"
    assert changed_by(path, edit("decode")) == DECODE_USERS
    assert changed_by(path, lambda t: t + "\n\n_UNUSED = True\n") == set()  # used by no asset
    assert changed_by(path, edit("represent")) == VAE_USERS - {
        f"{v}/{a}" for v in VARIANTS for a in ("trained_vae", "figure_latent_centroids")}
    # A constant counts: the floor of the Gaussian decoder's scale is used in training only.
    assert changed_by(path, lambda t: t.replace("MIN_SCALE = 0.05", "MIN_SCALE = 0.06")) == {
        f"{v}/{a}" for v in VARIANTS for a in ("trained_vae", "seed_spread")}


def test_editing_core_metrics_changes_the_metric_tables_only():
    path = PACKAGE_DIR / "core" / "metrics.py"
    assert changed_by(path, EDITS["metrics"][1]) == METRICS_USERS
    # The paper comparison reads the metric names only; the tables run the metrics themselves.
    comparisons = {f"{v}/paper_comparison" for v in VARIANTS}
    assert changed_by(path, edit_constant("INTERNAL")) == comparisons
    assert changed_by(path, edit("internal_metrics")) == METRICS_USERS - comparisons


def test_editing_the_dataset_readers_changes_the_raw_data_only():
    assert changed_by(PACKAGE_DIR / "core" / "idx.py", edit("load_image_dataset")) == {"raw_dataset"}
    assert changed_by(PACKAGE_DIR / "core" / "user_data.py", edit("load_user_dataset")) == {"raw_dataset"}


def test_editing_figures_leaves_data_and_training_alone():
    changed = changed_by(PACKAGE_DIR / "core" / "figures.py", edit("tsne_embeddings", "voronoi_figure"))
    assert {"tsne_original", "paper/figure_voronoi", "elbo/tsne_embeddings"} <= changed
    assert not changed & {"raw_dataset", "noisy_dataset", "paper/trained_vae", "clusters_original",
                          "paper/clustering_metrics"}  # their previews are not their values


def test_comments_and_docstrings_do_not_count():
    path = PACKAGE_DIR / "core" / "vae.py"
    assert changed_by(path, lambda t: t.replace('"""A variational', '"""Edited. A variational', 1)
                      .replace("\n", "  # a comment\n", 3)) == set()


def test_editing_a_helper_of_the_dagster_layer_changes_its_users_only():
    path = PACKAGE_DIR / "defs" / "assets" / "figures.py"
    assert changed_by(path, lambda t: t.replace("for i in range(3):", "for i in (0, 1, 2):")) == {
        "tsne_original", *(f"{v}/tsne_embeddings" for v in VARIANTS)}  # users of embed_frame()
    checks = PACKAGE_DIR / "defs" / "assets" / "clustering.py"
    assert changed_by(checks, lambda t: t.replace(  # @unversioned: checks run on every materialization
        '"metrics_finite", passed=not bad', '"metrics_finite", passed=len(bad) == 0')) == set()


# The assets the run tests materialize: those of no variant, and the `paper` variant's (the other
# variants run the same code under other settings; the version tests above cover every asset).
RUN_VARIANT = "paper"


def in_run(keys: set[str]) -> set[str]:
    return {k for k in keys if k.split("/")[0] not in set(VARIANTS) - {RUN_VARIANT}}


def run_edited_copy(graph, tmp_path, module: str, change) -> dict[str, bool]:
    """Copy the package, apply ``change`` to ``core/<module>.py``, and materialize the shared graph
    (the assets ``in_run``) with the copy in a fresh process against a copy of the shared cache:
    what was reused?"""
    shutil.copytree(PACKAGE_DIR, tmp_path / "src" / "clustering_dag",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PACKAGE_DIR.parent / "pyproject.toml", tmp_path / "src")  # the project the defs load from
    edited = tmp_path / "src" / "clustering_dag" / "core" / f"{module}.py"
    edited.write_text(change(edited.read_text()))
    script = (
        "import json, clustering_dag\n"
        f"assert clustering_dag.__file__.startswith({str(tmp_path)!r}), clustering_dag.__file__\n"
        "from dagster import AssetKey, materialize\n"
        "from clustering_dag.definitions import all_assets, resources\n"
        "from clustering_dag.profiles import PROFILES\n"
        f"keys = {sorted(in_run(GRAPH_KEYS))!r}\n"
        f"ops = {{op: c for op, c in PROFILES[{GRAPH_PROFILE!r}]()['ops'].items()\n"
        "       if op.replace('__', '/') in keys}\n"
        "r = materialize(all_assets, selection=[AssetKey.from_user_string(k) for k in keys],\n"
        "                partition_key='mnist', run_config={'ops': ops}, resources=resources)\n"
        "print(json.dumps({e.asset_key.to_user_string(): e.materialization.metadata['reused'].value\n"
        "                  for e in r.get_asset_materialization_events()}))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path / "src", capture_output=True,
                          text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(tmp_path / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    reused = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(reused) == in_run(GRAPH_KEYS)
    return reused


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_core_edit_recomputes_its_users_and_what_lies_below(graph_copy, tmp_path, name):
    module, change, edited_users = EDITS[name]
    reused = run_edited_copy(graph_copy, tmp_path, module, change)
    recomputed = {k for k, v in reused.items() if not v}
    assert recomputed == in_run(below(edited_users))
    if name == "vae":
        assert not recomputed & {"raw_dataset", "noisy_dataset", "clusters_original", "tsne_original"}
    else:  # the metric tables and the figure drawn from them, or the decoded-centroid figures
        drawn = {"figure_comparison"} if name == "metrics" else set()
        assert recomputed == in_run(edited_users | drawn)


def test_a_users_function_outside_the_package_counts_its_helpers_and_libraries(tmp_path):
    """A space of one's own lives outside the package: its function's version still follows the
    helpers of its module it calls (not the others) and the libraries it uses."""
    import importlib.util

    def load(folder: str, helper: str, unrelated: str = "1"):
        path = tmp_path / folder / "user_space.py"
        path.parent.mkdir()
        path.write_text("import numpy as np\n\n\n"
                        f"def _helper(x):\n    return x * {helper}\n\n\n"
                        f"def _unrelated():\n    return {unrelated}\n\n\n"
                        "def make(noisy_dataset, config=None):\n"
                        "    from sklearn.decomposition import PCA\n"
                        "    return PCA(2).fit_transform(_helper(np.asarray(noisy_dataset)))\n")
        spec = importlib.util.spec_from_file_location("user_space", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return SourceVersions().components(module.make)

    base = load("a", "2")
    assert {"lib:numpy", "lib:scikit-learn", "fn:user_space:_helper"} <= set(base)
    assert "fn:user_space:_unrelated" not in base
    assert load("b", "3") != base  # the helper it calls changed
    assert load("c", "2", unrelated="2") == base  # a function it does not call changed


@pytest.mark.parametrize("library", ["numba", "pynndescent", "umap-learn", "scikit-learn", "tensorflow"])
def test_a_library_upgrade_rekeys_the_assets_that_compute_with_it_and_only_those(monkeypatch, library):
    """An upgrade of a library on the numeric path (UMAP's numba and pynndescent too, which the
    project never imports itself) changes the code version of the assets that use it, no other."""
    from importlib import metadata

    from clustering_dag.defs import versioning

    derive = SourceVersions()

    def runs(key) -> set[str]:
        fn = inspect.unwrap(GRAPH.get(key).assets_def.op.compute_fn.decorated_fn)
        return {c for f in (fn, *fn.__runs__) for c in derive.components(f)}

    users = {k.to_user_string() for k in GRAPH.materializable_asset_keys if f"lib:{library}" in runs(k)}
    assert users, library
    before = versions()
    real = metadata.version
    versioning._library_version.cache_clear()
    monkeypatch.setattr(metadata, "version", lambda d: "999.0" if d == library else real(d))
    try:
        after = versions()
    finally:
        versioning._library_version.cache_clear()
    assert {k for k in before if before[k] != after[k]} == users
    if library in ("numba", "pynndescent"):  # UMAP's: the manifold stage and the chain that reruns it
        shared_umap = {s.representation for s in SPACES.values() if s.shared and "umap" in s.kinds}
        assert shared_umap == {"invariant_manifold_representation", "scattering_manifold_representation"}
        assert users == shared_umap | {"shared_seed_spread"} | {
            f"{v}/{a}" for v in VARIANTS for a in ("manifold_representation", "seed_spread")}
