"""Print the reproduced tables (markdown) from the asset cache, each with the settings it comes
from, the run that made it and its seeds (mean ± sd when there are several), beside the paper's
numbers where the run used the paper's settings.

    .venv/bin/python -m clustering_dag.report                  # the current tables (the latest run's)
    .venv/bin/python -m clustering_dag.report --profile full   # those of the latest run at a profile

A profile's tables are found among the values the cache keeps (every value is kept by its cache
key), so a quick run does not hide the paper's.
"""

import argparse

from dagster import AssetKey
from upath import UPath

from clustering_dag.core.errors import DataError
from clustering_dag.core.paper import PAPER_TABLE, describe_settings
from clustering_dag.core.seeds import mean_sd, spread
from clustering_dag.core.spaces import SPACES
from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.keep import entry_versions, read_record
from clustering_dag.defs.partitions import DATASET_KEYS
from clustering_dag.defs.storage import EXTENSIONS, AssetStorage, file_key, read_parquet
from clustering_dag.settings import absolute, cache_root

SETTINGS = ("profile", "train_rows", "test_rows", "epochs")


def shown_name(space: str) -> str:
    """A space's row name: the paper's own by name, the others with what they are."""
    entry = SPACES.get(space)
    return space if entry is None or entry.paper else f"{space} ({entry.about})"


def tables(storage: AssetStorage, dataset: str, variant: str, profile: str | None = None):
    """(paper_comparison, seed_spread, record of the comparison) of ``dataset`` and ``variant``:
    the current ones, or those of the most recently made or used kept comparison made at
    ``profile``; None if none."""
    comparison_key, spread_key = AssetKey([variant, "paper_comparison"]), AssetKey([variant, "seed_spread"])
    current = storage.path(comparison_key, dataset, "parquet")
    if profile is None:
        spread_path = storage.path(spread_key, dataset, "parquet")
        if not current.exists() or not spread_path.exists():
            return None
        key = file_key(current, "parquet")
        record = read_record(storage.version(comparison_key, dataset, "parquet", key)) if key else {}
        return read_parquet(current), read_parquet(spread_path), record
    for kept in entry_versions(current, "parquet", EXTENSIONS["parquet"], str(current)):
        try:  # a kept table that is damaged, from an older layout, or without its record is passed over
            comparison = read_parquet(kept.path, expect_key=kept.key)
            made_from = kept.record.get("made_from") or {}
            if comparison["profile"].iloc[0] != profile or not made_from.get("seed_spread"):
                continue
            spread_key_kept = made_from["seed_spread"]
            return (comparison, read_parquet(storage.version(spread_key, dataset, "parquet", spread_key_kept),
                                             expect_key=spread_key_kept), kept.record)
        except (DataError, KeyError, IndexError, TypeError):
            continue
    return None


def report(root: UPath, profile: str | None = None) -> str:
    storage, lines = AssetStorage(base_path=str(root)), []
    for dataset in DATASET_KEYS:
        for variant in VARIANTS:
            found = tables(storage, dataset, variant, profile)
            if found is None:
                continue
            comparison, runs, record = found
            table = spread(runs).set_index("representation")
            settings = comparison.iloc[0][list(SETTINGS)].to_dict()
            comparable = bool(comparison["comparable"].all()) if "paper" in comparison else None
            shown = PAPER_TABLE.get(dataset) if comparable else None
            paper_note = "" if shown is None else " (paper)"
            n_seeds = int(table["n_seeds"].max())
            seeds = f"; mean ± sd over {n_seeds} seeds" if n_seeds > 1 else "; one seed"
            made = (f"; made by run {record['run_id'][:8]} on {record['made_at'][:10]}"
                    if record.get("run_id") and record.get("made_at") else "")
            lines += [f"\n**{dataset}, variant `{variant}`** (noisy test set) — "
                      f"{describe_settings(settings, comparable)}{seeds}{made}\n",
                      f"| representation | dim | DBI ↓{paper_note} | SS ↑{paper_note} | CHS ↑{paper_note} "
                      "| accuracy | NMI | ARI |",
                      "|---|---|---|---|---|---|---|---|"]
            for rep, row in table.iterrows():
                paper = (shown or {}).get(rep)
                cells = []
                for i, m in enumerate(("dbi", "silhouette", "chs", "accuracy", "nmi", "ari")):
                    if f"{m}_mean" not in row:
                        cells.append("–")
                        continue
                    digits = 1 if m == "chs" else 3
                    cell = mean_sd(row[f"{m}_mean"], row[f"{m}_sd"], digits)
                    cells.append(f"{cell} ({paper[i]:.{digits}f})" if paper and i < 3 else cell)
                name = shown_name(rep)
                lines.append(f"| {name} | {int(row['dim'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", default=None,
                        help="the cache's folder or URL (default: the project's)")
    parser.add_argument("--profile", help="the tables of the latest run at this profile (full, quick, "
                                          "seeds, ...), not the current ones")
    args = parser.parse_args(argv)
    text = report(UPath(absolute(args.cache) if args.cache else cache_root()), args.profile)
    print(text or (f"no tables{f' made at profile {args.profile}' if args.profile else ''} in the cache: "
                   "materialize `*paper_comparison` first"))


if __name__ == "__main__":
    main()
