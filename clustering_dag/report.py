"""Print the reproduced tables (markdown) from the asset cache, each with the settings it comes
from, beside the paper's numbers where the run used the paper's settings.

    CLUSTERING_DAG_CACHE_DIR=data .venv/bin/python -m clustering_dag.report
"""

import sys

from upath import UPath

from clustering_dag.core.paper import PAPER_TABLE, describe_settings
from clustering_dag.core.variants import SPACES, VARIANTS
from clustering_dag.defs.partitions import DATASET_KEYS
from clustering_dag.defs.storage import read_parquet
from clustering_dag.settings import cache_root

SETTINGS = ("profile", "train_rows", "test_rows", "epochs")


def report(root: UPath) -> str:
    lines = []
    for dataset in DATASET_KEYS:
        for variant in VARIANTS:
            path = root / variant / "clustering_metrics" / f"{dataset}.parquet"
            comparison_path = root / variant / "paper_comparison" / f"{dataset}.parquet"
            if not path.exists() or not comparison_path.exists():
                continue
            metrics = read_parquet(path).set_index("representation")
            comparison = read_parquet(comparison_path)
            settings = comparison.iloc[0][list(SETTINGS)].to_dict()
            comparable = bool(comparison["comparable"].all()) if "paper" in comparison else None
            shown = PAPER_TABLE.get(dataset) if comparable else None
            paper_note = "" if shown is None else " (paper)"
            lines += [f"\n**{dataset}, variant `{variant}`** (noisy test set) — "
                      f"{describe_settings(settings, comparable)}\n",
                      f"| representation | DBI ↓{paper_note} | SS ↑{paper_note} | CHS ↑{paper_note} "
                      "| accuracy | NMI | ARI |",
                      "|---|---|---|---|---|---|---|"]
            for rep in (r for r in SPACES if r in metrics.index):
                row, paper = metrics.loc[rep], (shown or {}).get(rep)
                cells = [f"{row[m]:.3f} ({paper[i]:.3f})" if paper else f"{row[m]:.3f}"
                         for i, m in enumerate(("dbi", "silhouette", "chs"))]
                cells[2] = f"{row['chs']:.1f} ({paper[2]:.1f})" if paper else f"{row['chs']:.1f}"
                labelled = [f"{row[m]:.3f}" if m in row else "–" for m in ("accuracy", "nmi", "ari")]
                name = f"{rep} (UMAP of latent, GMM)" if rep == "manifold" else rep
                lines.append(f"| {name} | " + " | ".join(cells + labelled) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    root = UPath(sys.argv[1] if len(sys.argv) > 1 else cache_root())
    print(report(root))
