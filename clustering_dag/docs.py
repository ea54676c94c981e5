"""Write the results tables of the project's pages from the stored runs they name, or check them.

A page holds a table between two markers that name a stored run (``clustering-dag report
--format json``'s output, kept under ``docs/runs/``) and what to show of it::

    <!-- report docs/runs/2026-12-05-seeds.json dataset=mnist variant=dae -->
    ...written by this command...
    <!-- /report -->

``view=spaces`` (the default) is ``clustering-dag report``'s table of one dataset and variant;
``view=accuracy`` one table of every space's accuracy (``metric=nmi`` for another metric) across
the datasets and variants named (``dataset=a,b``, ``variant=x,y``; default: all of the run's).
Paths are relative to the project's folder. ``--check`` writes nothing and exits 1 when a table
differs from what its run gives: the pages' numbers come from stored runs, never by hand.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from clustering_dag.core.errors import DataError

HELP = "write (or --check) the pages' results tables from the stored runs they name"
EXAMPLES = """examples:
  clustering-dag report --profile seeds --format json --output docs/runs/2026-12-05-seeds.json
  clustering-dag docs            # rewrite every table of README.md and docs/*.md
  clustering-dag docs --check    # exit 1 if a page's table differs from its stored run"""

BLOCK = re.compile(r"(?P<open><!-- report (?P<args>[^\n]*?) -->\n)(?P<body>.*?)(?P<close><!-- /report -->)",
                   re.DOTALL)
OPTIONS = {"dataset", "variant", "view", "metric"}
VIEWS = ("spaces", "accuracy")


def pages(root: Path) -> list[Path]:
    """The pages whose tables come from stored runs: the README and every page under docs/."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def render(args: str, root: Path, where: str) -> str:
    """The table a block's marker asks for (``args``: the stored run's path, then options)."""
    from clustering_dag.report import accuracy_markdown, load_stored, markdown

    words = shlex.split(args)
    options = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    bad = [w for w in words[1:] if "=" not in w] + sorted(set(options) - OPTIONS)
    if not words or bad:
        raise DataError(f"{where}: the marker reads `<!-- report RUN.json [{'=… '.join(sorted(OPTIONS))}=…] "
                        f"-->`; fix {bad or 'its missing run'}.")
    run = (root / words[0]).resolve()
    if not run.is_relative_to(root.resolve()):
        raise DataError(f"{where}: the stored run {words[0]} lies outside the project; "
                        "keep it in docs/runs/.")
    found = load_stored(run)
    wanted = {k: options[k].split(",") for k in ("dataset", "variant") if k in options}
    chosen = [t for t in found if all(t[k] in v for k, v in wanted.items())]
    if not chosen:
        raise DataError(f"{where}: {words[0]} holds no table for {wanted}; it holds "
                        f"{sorted({(t['dataset'], t['variant']) for t in found})}.")
    view = options.get("view", "spaces")
    if view not in VIEWS:
        raise DataError(f"{where}: view={view} is none of {', '.join(VIEWS)}.")
    if view == "spaces":
        return markdown(chosen)
    return accuracy_markdown(chosen, options.get("metric", "accuracy"))


def update(page: Path, root: Path) -> tuple[str, list[str], int]:
    """The page with every block written from its stored run, the blocks that changed, and how
    many blocks it holds."""
    text, changed = page.read_text(), []

    def write(match: re.Match) -> str:
        line = text.count("\n", 0, match.start()) + 1
        where = f"{page.relative_to(root)}:{line}"
        body = render(match["args"], root, where).rstrip("\n") + "\n"
        if body != match["body"]:
            changed.append(where)
        return match["open"] + body + match["close"]

    new, blocks = BLOCK.subn(write, text)
    return new, changed, blocks


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pages", nargs="*", type=Path,
                        help="the pages (default: README.md and docs/*.md of the project folder)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="the project folder (default: here); stored runs' paths are relative to it")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming each table that differs from its stored run")


def run(args: argparse.Namespace) -> int:
    root = args.root.resolve()
    chosen = [p.resolve() for p in args.pages] or pages(root)
    if not chosen:
        raise DataError(f"no README.md or docs/*.md in {root}: run it in the project folder, or name --root.")
    stale, blocks = [], 0
    for page in chosen:
        if not page.is_relative_to(root):
            raise DataError(f"{page} is not a page of the project at {root}; name --root.")
        new, changed, found = update(page, root)
        blocks += found
        stale += changed
        if changed and not args.check:
            page.write_text(new)
    if args.check:
        for where in stale:
            print(f"{where}: the table differs from its stored run; `clustering-dag docs` writes it",
                  file=sys.stderr)
        print(f"{blocks} tables checked, {len(stale)} differ", file=sys.stderr)
        return 1 if stale else 0
    print(f"{blocks} tables, {len(stale)} written", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    from clustering_dag.cli import module_main

    return module_main("docs", argv)


if __name__ == "__main__":
    sys.exit(main())
