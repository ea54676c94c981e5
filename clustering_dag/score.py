"""Score a file of new rows with a dataset's stored models, without Dagster: every row's cluster
and distance in every space, and whether the rows look like the test split.

    clustering-dag score --dataset mnist digits.npz [--variant dae] [--out scores.parquet]

It does what the ``<variant>/scored_batch`` asset does (the same function,
:func:`clustering_dag.core.scoring.score_file`), reading the models from the asset cache
(``$CLUSTERING_DAG_CACHE_DIR`` or ``data/``), and writes one parquet table: a ``variant`` column,
then every row's cluster and distance per space and its drift flags. It prints a JSON summary
(rows, seconds, clusters used, drift shares and the verdict). Nothing is trained or fitted; a
dataset whose models are not stored yet is told which asset to materialize first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from clustering_dag.core.variants import VARIANTS

HELP = "score a file of new rows with a dataset's stored models (no training)"
EXAMPLES = """example:
  clustering-dag score --dataset mnist new_digits.npz --variant dae --out new_digits.scores.parquet"""


def stored(storage, dataset: str, variant: str) -> dict:
    """The stored values a variant scores with, for ``dataset``; a clear error for a missing one."""
    from clustering_dag.definitions import defs
    from clustering_dag.defs.assets.scoring import SCORED_WITH
    from clustering_dag.defs.cached import IO_MANAGERS

    kind_of = {manager: kind for kind, manager in IO_MANAGERS.items()}
    declared = {key.path[-1]: (key, kind_of[definition.get_io_manager_key_for_asset_key(key)])
                for definition in defs.assets for key in definition.keys  # as the location declares them
                if key.path[-1] in SCORED_WITH and key.path[0] in (variant, key.path[-1])}
    values = {}
    for name in SCORED_WITH:  # the dataset's own data first: the first thing missing is named
        key, kind = declared[name]
        if not (path := storage.path(key, dataset, kind)).exists():
            raise storage.not_stored(key, dataset, path)
        values[name] = storage.load(key, dataset, kind)
    return values


def score_with_stored(path: Path, dataset: str, variants: list[str], storage=None):
    """(one table of every variant's scores, a summary) for the batch file ``path``."""
    import pandas as pd

    from clustering_dag.core.scoring import (
        BatchLayout,
        drift_shares,
        drift_verdict,
        read_batch,
        score_batch,
        unsure_spaces,
    )
    from clustering_dag.defs.assets.scoring import SCORED_SPACES
    from clustering_dag.defs.storage import AssetStorage

    storage = storage or AssetStorage()
    frames, summary = [], {"file": str(path), "dataset": dataset, "variants": {}}
    stored_values = {variant: stored(storage, dataset, variant) for variant in variants}
    start = time.perf_counter()
    batch = read_batch(path, BatchLayout.of(stored_values[variants[0]]["raw_dataset"]))
    summary["read_seconds"] = round(time.perf_counter() - start, 3)
    for variant, values in stored_values.items():
        start = time.perf_counter()
        frame = score_batch(batch, SCORED_SPACES, values, values["test_scores"])
        shares = drift_shares(frame)
        looks_alike, verdict = drift_verdict(shares, unsure_spaces(frame))
        summary["rows"] = len(frame)
        summary["variants"][variant] = {
            "seconds": round(time.perf_counter() - start, 3),
            "clusters_used": {c.removesuffix("_cluster"): int(frame[c].nunique())
                              for c in frame.columns if c.endswith("_cluster")},
            "drift_shares": {s: round(v, 4) for s, v in shares.items()},
            "looks_like_test_split": looks_alike, "verdict": verdict}
        frames.append(frame.assign(variant=variant)[["variant", *frame.columns]])
    return pd.concat(frames, ignore_index=True), summary


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the batch file (IDX, .npz, CSV or parquet)")
    parser.add_argument("--dataset", required=True, help="the dataset whose models score it (a partition)")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS),
                        help="a training variant (repeatable; default: every one)")
    parser.add_argument("--out", type=Path,
                        help="the parquet file written (default: <file name>.scores.parquet here)")


def run(args: argparse.Namespace) -> int:
    out = args.out or Path(f"{args.file.name}.scores.parquet")
    table, summary = score_with_stored(args.file, args.dataset, args.variant or list(VARIANTS))
    import pyarrow as pa
    from upath import UPath

    from clustering_dag.defs.storage import write_parquet

    write_parquet(UPath(str(out.resolve())), pa.Table.from_pandas(table, preserve_index=False), None)
    print(json.dumps({**summary, "out": str(out)}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    from clustering_dag.cli import module_main

    return module_main("score", argv)


if __name__ == "__main__":
    sys.exit(main())
