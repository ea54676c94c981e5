"""The paper's reported numbers and the comparison of a run against them."""

from __future__ import annotations

import pandas as pd

from clustering_dag.core.metrics import INTERNAL
from clustering_dag.core.spaces import SPACES, paper_spaces

# Agarap & Azcarraga (2019), Tables 1-2: (DBI, Silhouette, Calinski-Harabasz).
PAPER_TABLE = {
    "mnist": {
        "original": (2.857, 0.061, 391.245),
        "reconstructed": (2.300, 0.099, 563.361),
        "latent": (1.557, 0.186, 1497.287),
    },
    "fashion_mnist": {
        "original": (1.811, 0.155, 1269.635),
        "reconstructed": (1.419, 0.216, 2010.841),
        "latent": (1.328, 0.238, 3609.196),
    },
}


# What the paper ran: the whole datasets, its VAE (784-128-64-32-10) for 60 epochs in batches of
# 512, N(0, 0.05^2) noise, k = 10. Its numbers are only comparable with a run of these settings.
PAPER_SETTINGS = {"train_rows": 60_000, "test_rows": 10_000, "epochs": 60, "batch_size": 512,
                  "hidden": [128, 64, 32], "latent_dim": 10, "sigma": 0.05, "n_clusters": 10}


def settings_differences(settings: dict) -> list[str]:
    """How a run's settings differ from the paper's, e.g. ``['epochs 2 (paper 60)']``."""
    return [f"{key} {settings.get(key)} (paper {value})" for key, value in PAPER_SETTINGS.items()
            if settings.get(key) != value]


def describe_settings(settings: dict, comparable: bool | None) -> str:
    """One line for a results table: profile, rows and epochs, and whether the paper's numbers
    apply (``comparable``; None for a dataset the paper did not use)."""
    text = (f"profile `{settings.get('profile', 'custom')}`: {int(settings['train_rows']):,} train / "
            f"{int(settings['test_rows']):,} test rows, {int(settings['epochs'])} epochs")
    if comparable is None:
        return text
    return text + (" (the paper's settings)" if comparable
                   else "; not the paper's settings, so the paper's numbers are not comparable")


def paper_frame(dataset: str) -> pd.DataFrame | None:
    table = PAPER_TABLE.get(dataset)
    if table is None:
        return None
    return pd.DataFrame(
        [(rep, *vals) for rep, vals in table.items()],
        columns=["representation", "dbi", "silhouette", "chs"],
    )


def best_representation(frame: pd.DataFrame, metric: str) -> str:
    """The representation that scores best on ``metric`` (lowest DBI, highest SS/CHS)."""
    values = frame.set_index("representation")[metric]
    return str(values.idxmin() if INTERNAL[metric] == "lower" else values.idxmax())


def latent_beats_original(frame: pd.DataFrame) -> dict[str, bool]:
    v = frame.set_index("representation")
    out = {}
    for metric, better in INTERNAL.items():
        lat, orig = v.loc["latent", metric], v.loc["original", metric]
        out[metric] = bool(lat < orig if better == "lower" else lat > orig)
    return out


def compare_with_paper(ours: pd.DataFrame, dataset: str, settings: dict) -> pd.DataFrame:
    """Our internal metrics (mean and sd over the rows of each representation) beside the paper's.

    ``ours`` has columns representation, dbi, silhouette, chs, one row per seed; ``settings`` what
    the run used (keys of :data:`PAPER_SETTINGS`, plus ``profile``). Returns one row per
    representation (the paper's three, then any other space ``ours`` has) and metric: ours_mean,
    ours_sd, n_seeds, the settings (profile, train_rows, test_rows, epochs), and for the paper's
    datasets the paper's value (NaN for a space the paper did not have), whether the run is
    ``comparable`` (at the paper's settings) and, only then, the relative difference.
    """
    comparable = not settings_differences(settings)
    spaces = [s for s in SPACES if s in set(ours["representation"])]
    grouped = ours.groupby("representation")[list(INTERNAL)]
    mean, sd, n = grouped.mean(), grouped.std(ddof=1), grouped.size()
    paper = paper_frame(dataset)
    rows = []
    for rep in spaces:
        for metric in INTERNAL:
            row = {"representation": rep, "metric": metric, "ours_mean": mean.loc[rep, metric],
                   "ours_sd": sd.loc[rep, metric], "n_seeds": int(n.loc[rep]),
                   **{k: settings.get(k) for k in ("profile", "train_rows", "test_rows", "epochs")}}
            if paper is not None:
                known = paper.set_index("representation")[metric]
                theirs = float(known[rep]) if rep in known else float("nan")
                row["paper"] = theirs
                row["comparable"] = comparable
                row["relative_diff"] = ((row["ours_mean"] - theirs) / abs(theirs) if comparable
                                        else float("nan"))
            rows.append(row)
    return pd.DataFrame(rows)


def ranking_summary(comparison: pd.DataFrame) -> dict:
    """Which representation is best on each metric, for us and the paper, and whether the
    paper's ranking (latent best on all three) holds: ``ranking_matches_paper`` is True or False
    for a run at the paper's settings, and the string "not comparable" otherwise."""
    def wide(column: str) -> pd.DataFrame:  # the paper's three representations
        table = comparison.pivot(index="representation", columns="metric", values=column)
        return table.loc[list(paper_spaces())].reset_index()

    ours = wide("ours_mean")
    summary = {
        "ours_best": {m: best_representation(ours, m) for m in INTERNAL},
    }
    summary["latent_best_on_all"] = all(v == "latent" for v in summary["ours_best"].values())
    if "paper" in comparison:
        paper = wide("paper")
        summary["paper_best"] = {m: best_representation(paper, m) for m in INTERNAL}
        summary["ranking_matches_paper"] = (summary["ours_best"] == summary["paper_best"]
                                            if comparison["comparable"].all() else "not comparable")
    return summary
