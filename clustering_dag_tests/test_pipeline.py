"""The whole graph, from raw data to comparison and figures (the shared cold run of
``conftest.shared_graph``), and, in the quality tier, what the quick profile's numbers show."""

import pytest
from dagster import AssetKey, FloatMetadataValue

from clustering_dag.core.arrays import Splits
from clustering_dag.core.spaces import space_names
from clustering_dag.core.variants import VARIANTS
from clustering_dag.definitions import defs
from clustering_dag_tests.conftest import GRAPH_PROFILE, graph_config

SPACES = space_names()

pytestmark = pytest.mark.slow

OPS = {op: c["config"] for op, c in graph_config()["ops"].items()}
TRAIN, TEST = OPS["raw_dataset"]["train_rows"], OPS["raw_dataset"]["test_rows"]
EPOCHS, FIT_ROWS = OPS["paper__trained_vae"]["epochs"], OPS["paper__manifold_representation"]["fit_rows"]
SETTINGS = f"profile `{GRAPH_PROFILE}`: {TRAIN:,} train / {TEST:,} test rows, {EPOCHS} epochs"


@pytest.fixture(scope="module")
def graph_run(shared_graph):
    return shared_graph.result, shared_graph.cache


def test_every_asset_materializes(graph_run):
    result, _ = graph_run
    assert result.success
    done = {m.asset_key for m in result.get_asset_materialization_events()
            for m in [m.event_specific_data.materialization]}
    assert done == set(defs.resolve_all_asset_keys())


def test_representations(graph_run):
    result, _ = graph_run
    for variant in VARIANTS:
        latent = result.output_for_node(f"{variant}__latent_representation")
        recon = result.output_for_node(f"{variant}__reconstructed_representation")
        assert isinstance(latent, Splits)
        assert latent.train_x.shape == (TRAIN, 10) and latent.test_x.shape == (TEST, 10)
        assert recon.test_x.shape == (TEST, 784)
        assert latent.meta["variant"] == variant


def test_metrics_table_and_checks(graph_run):
    result, _ = graph_run
    for variant in VARIANTS:
        table = result.output_for_node(f"{variant}__clustering_metrics")
        assert table["representation"].tolist() == list(SPACES)
        assert table[["dbi", "silhouette", "chs", "accuracy", "nmi", "ari", "purity"]].notna().all().all()
        # refined: its 10 cluster probabilities; invariant: the encoder's 64-d code; scattering:
        # its 100 principal axes
        assert (table["dim"] == [784, 784, 10, 10, 10, 64, 10, 100, 10]).all()
        assert table["train_rows"].tolist() == [TRAIN, TRAIN, TRAIN, FIT_ROWS, TRAIN, TRAIN, FIT_ROWS,
                                                TRAIN, FIT_ROWS]
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
                  if e.asset_key == AssetKey([variant, "clustering_metrics"])}
        assert checks["metrics_finite"] and checks["clusters_non_empty"]
        assert "latent_beats_original" in checks
        shown = result.asset_materializations_for_node(f"{variant}__clustering_metrics")[0].metadata["table"]
        types = {c.name: c.type for c in shown.schema.columns}
        assert types["representation"] == "string" and types["dbi"] == types["accuracy"] == "float"
        assert types["n_clusters_used"] == "int"
        assert [r.data["dbi"] for r in shown.records] == [round(v, 3) for v in table["dbi"]]
        # Each space's metrics are numbers of their own too, which Dagster plots over runs.
        meta = result.asset_materializations_for_node(f"{variant}__clustering_metrics")[0].metadata
        for row in table.to_dict("records"):
            for metric in ("accuracy", "nmi", "ari", "dbi"):
                plotted = meta[f"{row['representation']}_{metric}"]
                assert isinstance(plotted, FloatMetadataValue) and plotted.value == row[metric]
        comparison = result.output_for_node(f"{variant}__paper_comparison")
        assert len(comparison) == 3 * len(SPACES) and (comparison["n_seeds"] == 1).all()  # x 3 metrics
        assert comparison["paper"].isna().tolist() == [False] * 9 + [True] * (3 * len(SPACES) - 9)  # its 3
        spread = result.output_for_node(f"{variant}__seed_spread")  # no extra seeds: the table itself
        assert spread.drop(columns=["seed", "vae_seconds", "active_latent_dims"]).equals(table)
        # A small profile is not the paper's run: its numbers are marked, not compared.
        assert (comparison["profile"] == GRAPH_PROFILE).all() and (comparison["epochs"] == EPOCHS).all()
        assert not comparison["comparable"].any() and comparison["relative_diff"].isna().all()
        meta = result.asset_materializations_for_node(f"{variant}__paper_comparison")[0].metadata
        assert meta["ranking_matches_paper"].value == "not comparable"
        assert meta["settings"].value.startswith(SETTINGS)


def test_figures_written_and_inline(graph_run):
    result, cache = graph_run
    names = ["reconstructions", "tsne", "tsne_2d", "manifold", "manifold_2d", "voronoi", "latent_centroids",
             "loss_curve", "k_sweep"]
    for variant in VARIANTS:
        for name in names:
            png = cache / "figures" / variant / name / "mnist.png"
            assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
        meta = result.asset_materializations_for_node(f"{variant}__figure_voronoi")[0].metadata
        assert meta["figure"].value.startswith("![voronoi](data:image/png;base64,")
    assert (cache / "paper" / "trained_vae" / "mnist.weights.h5").is_file()
    # One figure of the dataset sets every variant and space side by side.
    assert (cache / "figures" / "comparison" / "mnist.png").read_bytes()[:4] == b"\x89PNG"
    meta = result.asset_materializations_for_node("figure_comparison")[0].metadata
    assert meta["figure"].value.startswith("![comparison](data:image/png;base64,")


def test_comparison_figure_has_a_bar_per_variant_and_space_with_the_seeds_spread():
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from clustering_dag.core.figures import comparison_figure
    from clustering_dag.core.seeds import spread

    runs = pd.DataFrame({"seed": [1, 2, 1, 2], "dim": [784, 784, 10, 10],
                         "representation": ["original", "original", "latent", "latent"],
                         "accuracy": [0.5, 0.5, 0.7, 0.8], "nmi": [0.4, 0.4, 0.6, 0.6]})
    fig = comparison_figure({"paper": spread(runs), "dae": spread(runs.assign(accuracy=0.9))}, "MNIST")
    accuracy, nmi = fig.axes
    bars = [p.get_height() for p in accuracy.patches]
    assert len(bars) == 4 and bars[:2] == [0.5, 0.75] and bars[2:] == [0.9, 0.9]  # paper's, then dae's
    assert len(nmi.patches) == 4
    assert [t.get_text() for t in accuracy.get_xticklabels()] == ["original", "latent"]
    assert "mean ± sd over 2 seeds" in fig._suptitle.get_text()
    from matplotlib.container import BarContainer

    paper = next(c for c in accuracy.containers if isinstance(c, BarContainer))
    (_, low), (_, high) = paper.errorbar.lines[2][0].get_segments()[1]  # latent: 0.75 ± the seeds' sd
    sd = np.std([0.7, 0.8], ddof=1)
    assert low == pytest.approx(0.75 - sd) and high == pytest.approx(0.75 + sd)
    plt.close(fig)


def test_report_prints_every_variant(graph_run):
    from upath import UPath

    from clustering_dag.report import report

    _, cache = graph_run
    text = report(UPath(cache))
    n = len(VARIANTS)
    assert all(f"**mnist, variant `{v}`**" in text for v in VARIANTS)
    assert text.count("| latent |") == n
    assert text.count(f"{SETTINGS}; not the paper's") == n
    assert text.count("| manifold (UMAP of latent, GMM) | 10 |") == n and text.count("; one seed") == n
    assert text.count("| refined (classifier self-trained on the manifold clusters) | 10 |") == n
    assert "(1.557)" not in text and "(paper)" not in text  # no comparison with the paper's numbers


@pytest.mark.quality
def test_a_successful_quick_run_logs_no_error(quick_graph):
    """A user reads an error line as a failure: a run that succeeds writes none, neither to its
    event log nor, from the C++ libraries (TensorFlow, XLA), to the process's standard error."""
    import logging
    import re

    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(quick_graph.home)) as instance:
        records = instance.all_logs(quick_graph.result.run_id)
    assert len(records) > 100  # the whole run's events were read
    errors = [r.user_message for r in records if r.level >= logging.ERROR]
    assert not errors, errors
    native = re.findall(r"^(?:E\d{4} |.*\b(?:ERROR|FATAL)\b).*$", quick_graph.stderr, re.MULTILINE)
    assert not native, native


@pytest.mark.quality
def test_quick_profile_shows_real_structure(quick_graph):
    """What a newcomer sees first is not degenerate: t-SNE past its early-exaggeration phase
    spreads the points in every component and keeps the classes apart, and the learned latent
    code clusters far better than chance."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    result = quick_graph.result
    original = result.output_for_node("tsne_original")
    latent = result.output_for_node("paper__tsne_embeddings").query("representation == 'latent'")
    for frame in (original, latent):
        coords = frame[["c0", "c1", "c2"]].to_numpy()
        assert (coords.std(axis=0) > 1.0).all()  # not a line, not a flat streak
    knn = cross_val_score(KNeighborsClassifier(5), original[["c0", "c1", "c2"]], original["label"], cv=5)
    assert knn.mean() > 0.6  # 10 classes: chance is 0.1
    metrics = result.output_for_node("elbo__clustering_metrics").set_index("representation")
    assert metrics.loc["latent", "accuracy"] > 0.35 and metrics.loc["latent", "nmi"] > 0.3
