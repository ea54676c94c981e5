"""Print the reproduced tables (markdown) from the asset cache, each with the settings it comes
from and its seeds (mean ± sd when there are several), beside the paper's numbers where the run
used the paper's settings.

    CLUSTERING_DAG_CACHE_DIR=data .venv/bin/python -m clustering_dag.report
"""

import sys

from upath import UPath

from clustering_dag.core.paper import PAPER_TABLE, describe_settings
from clustering_dag.core.seeds import mean_sd, spread
from clustering_dag.core.spaces import SPACES
from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.partitions import DATASET_KEYS
from clustering_dag.defs.storage import read_parquet
from clustering_dag.settings import cache_root

SETTINGS = ("profile", "train_rows", "test_rows", "epochs")

def shown_name(space: str) -> str:
    """A space's row name: the paper's own by name, the others with what they are."""
    entry = SPACES.get(space)
    return space if entry is None or entry.paper else f"{space} ({entry.about})"


def report(root: UPath) -> str:
    lines = []
    for dataset in DATASET_KEYS:
        for variant in VARIANTS:
            path = root / variant / "seed_spread" / f"{dataset}.parquet"
            comparison_path = root / variant / "paper_comparison" / f"{dataset}.parquet"
            if not path.exists() or not comparison_path.exists():
                continue
            table = spread(read_parquet(path)).set_index("representation")
            comparison = read_parquet(comparison_path)
            settings = comparison.iloc[0][list(SETTINGS)].to_dict()
            comparable = bool(comparison["comparable"].all()) if "paper" in comparison else None
            shown = PAPER_TABLE.get(dataset) if comparable else None
            paper_note = "" if shown is None else " (paper)"
            n_seeds = int(table["n_seeds"].max())
            seeds = f"; mean ± sd over {n_seeds} seeds" if n_seeds > 1 else "; one seed"
            lines += [f"\n**{dataset}, variant `{variant}`** (noisy test set) — "
                      f"{describe_settings(settings, comparable)}{seeds}\n",
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


if __name__ == "__main__":
    root = UPath(sys.argv[1] if len(sys.argv) > 1 else cache_root())
    print(report(root))
