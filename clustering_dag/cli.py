"""``clustering-dag``: what a user does outside the Dagster UI, one command with a subcommand each.

    clustering-dag report [--profile P] [--dataset D] [--format markdown|csv|json]
    clustering-dag score FILE --dataset D
    clustering-dag rerun RUN_ID
    clustering-dag cache list | prune
    clustering-dag docs [--check]

Each subcommand is a module of the package with ``HELP`` (one line), ``EXAMPLES``,
``arguments(parser)`` and ``run(args) -> exit status``; ``python -m clustering_dag.<module>`` runs
the same parser. A :class:`~clustering_dag.core.errors.DataError` (a missing cache, a bad file)
is one line on standard error and exit status 1; a bad argument, argparse's usage and status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("report", "score", "rerun", "cache", "docs")


def _configure(parser: argparse.ArgumentParser, name: str) -> None:
    module = importlib.import_module(f"clustering_dag.{name}")
    parser.description = module.__doc__.split("\n\n")[0].replace("::", ":")
    parser.epilog = module.EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    module.arguments(parser)
    parser.set_defaults(run=module.run, command=name)


def parser() -> argparse.ArgumentParser:
    from clustering_dag import __version__

    top = argparse.ArgumentParser(
        prog="clustering-dag", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The clustering_dag pipeline's results, cache and scoring, outside the Dagster UI "
                    "(the UI: `dagster dev`).",
        epilog="`clustering-dag COMMAND --help` shows a command's options and an example.")
    top.add_argument("--version", action="version", version=f"clustering-dag {__version__}")
    commands = top.add_subparsers(metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"clustering_dag.{name}")
        _configure(commands.add_parser(name, help=module.HELP), name)
    return top


def _call(args: argparse.Namespace, prog: str) -> int:
    from clustering_dag.core.errors import DataError

    try:
        return int(args.run(args) or 0)
    except DataError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return _call(args, f"clustering-dag {args.command}")


def module_main(name: str, argv: list[str] | None = None) -> int:
    """``python -m clustering_dag.<name>``: the subcommand's own parser."""
    one = argparse.ArgumentParser(prog=f"python -m clustering_dag.{name}")
    _configure(one, name)
    return _call(one.parse_args(argv), one.prog)


if __name__ == "__main__":
    sys.exit(main())
