"""The results tables, from the asset cache or from a stored run: per dataset and variant, every
space's DBI, SS, CHS, accuracy, NMI and ARI (mean ± sd when the run had several seeds), beside the
paper's numbers where the run used the paper's settings, each with the settings, run, commit and
date it comes from.

By default the current tables (those of the latest run); ``--profile`` gives those of the latest
run at a profile, found among the values the cache keeps (every value is kept by its cache key),
so a quick run does not hide the paper's. ``--format json`` stores a run's tables (what the pages'
tables are made from: ``clustering-dag docs``); ``--from`` reads such a file back.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

HELP = "print the results tables (markdown, CSV or JSON) from the cache or a stored run"
EXAMPLES = """examples:
  clustering-dag report                          # the latest run's tables
  clustering-dag report --profile quick --dataset mnist
  clustering-dag report --profile seeds --format json --output docs/runs/seeds.json
  clustering-dag report --from docs/runs/seeds.json --format csv"""

SETTINGS = ("profile", "train_rows", "test_rows", "epochs")
METRICS = ("dbi", "silhouette", "chs", "accuracy", "nmi", "ari")
HEADERS = {"dbi": "DBI ↓", "silhouette": "SS ↑", "chs": "CHS ↑", "accuracy": "accuracy", "nmi": "NMI",
           "ari": "ARI"}
# What a stored run keeps of each seed's row: enough to print every view again.
STORED_COLUMNS = ("seed", "representation", "dim", "dbi", "silhouette", "chs", "accuracy", "nmi", "ari",
                  "purity")
FORMAT = "clustering_dag.report/1"
MAX_STORED_BYTES = 4 << 20


def shown_name(space: str) -> str:
    """A space's row name: the paper's own by name, the others with what they are."""
    from clustering_dag.core.spaces import SPACES

    entry = SPACES.get(space)
    return space if entry is None or entry.paper else f"{space} ({entry.about})"


def tables(storage, dataset: str, variant: str, profile: str | None = None):
    """(paper_comparison, seed_spread, record of the comparison) of ``dataset`` and ``variant``:
    the current ones, or those of the most recently made or used kept comparison made at
    ``profile``; None if none."""
    from dagster import AssetKey

    from clustering_dag.core.errors import DataError
    from clustering_dag.defs.keep import entry_versions, read_record
    from clustering_dag.defs.storage import EXTENSIONS, file_key, read_parquet

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


def _plain(value):
    """A cell as JSON holds it: a float that is not finite is null."""
    import math

    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def collect(root, profile: str | None = None, datasets: list[str] | None = None,
            variants: list[str] | None = None) -> list[dict]:
    """The tables of the cache at ``root`` (a folder or URL), one per dataset and variant that has
    one, as plain data: dataset, variant, settings, whether the paper's numbers apply, the run that
    made it (id, date, commit) and every seed's row."""
    from clustering_dag.core.variants import VARIANTS
    from clustering_dag.defs.partitions import DATASET_KEYS
    from clustering_dag.defs.storage import AssetStorage

    storage, out = AssetStorage(base_path=str(root)), []
    for dataset in datasets or DATASET_KEYS:
        for variant in variants or VARIANTS:
            found = tables(storage, dataset, variant, profile)
            if found is None:
                continue
            comparison, runs, record = found
            first = comparison.iloc[0]
            out.append({
                "dataset": dataset, "variant": variant,
                "settings": {k: _plain(first[k]) for k in SETTINGS},
                "comparable": bool(comparison["comparable"].all()) if "paper" in comparison else None,
                "run": {"id": record.get("run_id"), "made_at": record.get("made_at"),
                        "commit": record.get("commit")},
                "rows": [{c: _plain(row[c]) for c in STORED_COLUMNS if c in row}
                         for row in runs.to_dict("records")]})
    return out


def load_stored(path: str | Path) -> list[dict]:
    """The tables of a stored run (``--format json``'s output), read bounded and checked."""
    from clustering_dag.core.errors import DataError

    path = Path(path)
    fix = "store it again with `clustering-dag report --format json --output FILE`"
    if not path.is_file():
        raise DataError(f"stored run {path} does not exist: name a file that "
                        f"`clustering-dag report --format json` wrote, or {fix}.")
    with open(path, "rb") as f:
        raw = f.read(MAX_STORED_BYTES + 1)
    if len(raw) > MAX_STORED_BYTES:
        raise DataError(f"stored run {path} is over {MAX_STORED_BYTES:,} bytes; it holds tables, not data.")
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError(f"its format is {doc.get('format')!r}, not {FORMAT!r}")
        found = doc["tables"]
        for table in found:
            missing = {"dataset", "variant", "settings", "comparable", "run", "rows"} - set(table)
            if missing:
                raise ValueError(f"a table lacks {sorted(missing)}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"stored run {path} is not a stored run ({exc}); {fix}.") from None
    return found


def _spread(table: dict):
    import pandas as pd

    from clustering_dag.core.seeds import spread

    return spread(pd.DataFrame(table["rows"])).set_index("representation")


def _made(run: dict) -> str:
    if not run.get("id") or not run.get("made_at"):
        return ""
    commit = f" at commit {run['commit']}" if run.get("commit") else ""
    return f"; made by run {run['id'][:8]}{commit} on {run['made_at'][:10]}"


def markdown(found: list[dict]) -> str:
    """Each table as the pages show it: a heading line with its settings, then a row per space."""
    from clustering_dag.core.paper import PAPER_TABLE, describe_settings
    from clustering_dag.core.seeds import mean_sd, seeds_note

    lines = []
    for table in found:
        spread = _spread(table)
        comparable = table["comparable"]
        paper = PAPER_TABLE.get(table["dataset"]) if comparable else None
        note = "" if paper is None else " (paper)"
        seeds = seeds_note([spread["n_seeds"].max()])
        lines += [f"\n**{table['dataset']}, variant `{table['variant']}`** (noisy test set) — "
                  f"{describe_settings(table['settings'], comparable)}; {seeds}{_made(table['run'])}\n",
                  "| representation | dim | " + " | ".join(
                      HEADERS[m] + (note if i < 3 else "") for i, m in enumerate(METRICS)) + " |",
                  "|---|---|---|---|---|---|---|---|"]
        for rep, row in spread.iterrows():
            published, cells = (paper or {}).get(rep), []
            for i, m in enumerate(METRICS):
                if f"{m}_mean" not in row:
                    cells.append("–")
                    continue
                digits = 1 if m == "chs" else 3
                cell = mean_sd(row[f"{m}_mean"], row[f"{m}_sd"], digits)
                cells.append(f"{cell} ({published[i]:.{digits}f})" if published and i < 3 else cell)
            lines.append(f"| {shown_name(rep)} | {int(row['dim'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines).lstrip("\n")


def accuracy_markdown(found: list[dict], metric: str = "accuracy") -> str:
    """One table of ``metric`` (mean ± sd) for every space (rows) and dataset and variant
    (columns), the best of each column in bold."""
    import numpy as np

    from clustering_dag.core.datasets import dataset_title
    from clustering_dag.core.seeds import mean_sd

    columns = [(f"{dataset_title(t['dataset'])} `{t['variant']}`", _spread(t)) for t in found]
    spaces = list(dict.fromkeys(rep for _, s in columns for rep in s.index))
    lines = ["| representation | " + " | ".join(name for name, _ in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for rep in spaces:
        cells = []
        for _, spread in columns:
            if rep not in spread.index or f"{metric}_mean" not in spread:
                cells.append("–")
                continue
            mean, sd = spread.loc[rep, f"{metric}_mean"], spread.loc[rep, f"{metric}_sd"]
            cell = mean_sd(mean, sd)
            best = np.nanmax(spread[f"{metric}_mean"].to_numpy(dtype=float))
            cells.append(f"**{cell}**" if mean == best else cell)
        lines.append(f"| {rep} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + provenance(found)


def provenance(found: list[dict]) -> str:
    """One line saying where a table of several runs' numbers comes from: profiles, seeds, the
    runs' commits and dates."""
    from clustering_dag.core.seeds import seeds_note

    def listed(values) -> str:
        return ", ".join(sorted({str(v) for v in values if v})) or "unknown"

    spread = seeds_note(len({r["seed"] for r in t["rows"]}) for t in found)
    return (f"Profile {listed(t['settings'].get('profile') for t in found)}, {spread}; made at commit "
            f"{listed(t['run'].get('commit') for t in found)} on "
            f"{listed((t['run'].get('made_at') or '')[:10] for t in found)}.")


def csv_text(found: list[dict]) -> str:
    """A row per dataset, variant and space: its settings, run and every metric's mean and sd."""
    import pandas as pd

    frames = []
    for table in found:
        spread = _spread(table).reset_index()
        head = {"dataset": table["dataset"], "variant": table["variant"], **table["settings"],
                "run_id": table["run"].get("id"), "commit": table["run"].get("commit"),
                "made_at": table["run"].get("made_at")}
        frames.append(spread.assign(**head)[[*head, *spread.columns]])
    out = io.StringIO()
    if frames:
        pd.concat(frames, ignore_index=True).to_csv(out, index=False, float_format="%.6g")
    return out.getvalue()


def json_text(found: list[dict]) -> str:
    return json.dumps({"format": FORMAT, "tables": found}, indent=1, allow_nan=False) + "\n"


FORMATS = {"markdown": markdown, "csv": csv_text, "json": json_text}


def report(root, profile: str | None = None) -> str:
    """The markdown tables of the cache at ``root`` (those of ``profile``'s latest run, if given)."""
    return markdown(collect(root, profile))


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cache", nargs="?", default=None,
                        help="the cache's folder or URL (default: $CLUSTERING_DAG_CACHE_DIR or data/)")
    parser.add_argument("--profile", help="the tables of the latest run at this profile (full, quick, "
                                          "seeds, ...), not the current ones")
    parser.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    parser.add_argument("--variant", action="append", help="only this variant (repeatable)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="markdown",
                        help="markdown (default), csv (a row per dataset, variant and space) or json "
                             "(every seed's row: a stored run)")
    parser.add_argument("--from", dest="stored", metavar="FILE",
                        help="a stored run (--format json's output) instead of the cache")
    parser.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")


def run(args: argparse.Namespace) -> int:
    from upath import UPath

    from clustering_dag.core.errors import DataError
    from clustering_dag.core.variants import VARIANTS
    from clustering_dag.settings import absolute, cache_root

    unknown = sorted(set(args.variant or ()) - set(VARIANTS))
    if unknown:
        raise DataError(f"no variant {', '.join(unknown)}: the variants are {', '.join(VARIANTS)}.")
    if args.stored:
        if args.cache or args.profile:
            raise DataError("--from reads a stored run: leave out the cache folder and --profile.")
        found = [t for t in load_stored(args.stored) if (not args.dataset or t["dataset"] in args.dataset)
                 and (not args.variant or t["variant"] in args.variant)]
    else:
        root = UPath(absolute(args.cache) if args.cache else cache_root())
        if not root.exists():
            raise DataError(f"the cache {root} does not exist: run the pipeline first (README, 'The two "
                            "commands'), or name the cache folder (--help).")
        found = collect(root, args.profile, args.dataset, args.variant)
    if not found:
        what = f" made at profile {args.profile}" if args.profile else ""
        where = args.stored or "the cache"
        raise DataError(f"no tables{what} in {where}"
                        + (f" for {', '.join(args.dataset)}" if args.dataset else "")
                        + ": materialize `*paper_comparison` first (README, 'The two commands').")
    text = FORMATS[args.format](found)
    if args.output:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n")
        print(f"{len(found)} tables written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def main(argv=None) -> int:
    from clustering_dag.cli import module_main

    return module_main("report", argv)


if __name__ == "__main__":
    sys.exit(main())
