"""The mean and standard deviation of every metric over the seeds a chain ran under
(:func:`clustering_dag.core.chain.run_chain` makes the extra seeds' tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clustering_dag.core.spaces import SPACES

# The metrics summarised over seeds (internal, then label metrics where there are labels).
SPREAD_METRICS = ("dbi", "silhouette", "chs", "accuracy", "nmi", "ari", "purity")


def spread(runs: pd.DataFrame) -> pd.DataFrame:
    """Per space (in the registry's order): ``n_seeds`` and, for every metric present, its mean and
    standard deviation over the seeds (``<metric>_mean``, ``<metric>_sd``; sd NaN for one seed)."""
    metrics = [m for m in SPREAD_METRICS if m in runs]
    grouped = runs.groupby("representation", sort=False)
    out = grouped[["dim"]].first()
    out["n_seeds"] = grouped["seed"].nunique()
    for m in metrics:
        out[f"{m}_mean"] = grouped[m].mean()
        out[f"{m}_sd"] = grouped[m].std(ddof=1)
    order = [s for s in SPACES if s in out.index] + [s for s in out.index if s not in SPACES]
    return out.loc[order].reset_index()


def seeds_note(counts) -> str:
    """What a table's cells are, from its tables' seed counts: ``mean ± sd over 3 seeds``, ``one
    seed``, or the counts when they differ."""
    counts = sorted({int(n) for n in counts})
    if len(counts) > 1:
        return f"seeds: {', '.join(map(str, counts))}"
    return "one seed" if counts == [1] else f"mean ± sd over {counts[0]} seeds"


def mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """``0.912 ± 0.014``; the mean alone when there is no spread to show (one seed)."""
    if not np.isfinite(mean):
        return "nan"
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")
