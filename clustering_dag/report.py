"""Print the reproduced tables (markdown) from the asset cache, beside the paper's numbers.

    CLUSTERING_DAG_CACHE_DIR=data .venv/bin/python -m clustering_dag.report
"""

import sys

from upath import UPath

from clustering_dag.core.paper import PAPER_TABLE, REPRESENTATIONS
from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.partitions import DATASET_KEYS
from clustering_dag.defs.storage import read_parquet
from clustering_dag.settings import cache_root


def report(root: UPath) -> str:
    lines = []
    for dataset in DATASET_KEYS:
        for variant in VARIANTS:
            path = root / variant / "clustering_metrics" / f"{dataset}.parquet"
            if not path.exists():
                continue
            metrics = read_parquet(path).set_index("representation")
            lines += [f"\n**{dataset}, variant `{variant}`** (noisy test set)\n",
                      "| representation | DBI ↓ (paper) | SS ↑ (paper) | CHS ↑ (paper) "
                      "| accuracy | NMI | ARI |",
                      "|---|---|---|---|---|---|---|"]
            for rep in REPRESENTATIONS:
                row, paper = metrics.loc[rep], PAPER_TABLE.get(dataset, {}).get(rep)
                cells = [f"{row[m]:.3f} ({paper[i]:.3f})" if paper else f"{row[m]:.3f}"
                         for i, m in enumerate(("dbi", "silhouette", "chs"))]
                cells[2] = f"{row['chs']:.1f} ({paper[2]:.1f})" if paper else f"{row['chs']:.1f}"
                labelled = [f"{row[m]:.3f}" if m in row else "–" for m in ("accuracy", "nmi", "ari")]
                lines.append(f"| {rep} | " + " | ".join(cells + labelled) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    root = UPath(sys.argv[1] if len(sys.argv) > 1 else cache_root())
    print(report(root))
