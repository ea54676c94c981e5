"""Re-execute a failed run from failure (the UI's "Re-execute from failure"): only the steps that
failed or did not run.

    clustering-dag rerun RUN_ID

Runs, in the instance of ``$DAGSTER_HOME``, the failed run's job again with its run config, tags
and executor, but only the steps that failed or did not run: every step that had finished is
reused (its output read back from the asset cache), not executed again. Prints the new run's id
and status; exits 1 if it fails too.
"""

import argparse
import sys

from clustering_dag.core.errors import DataError

HELP = "re-execute a failed run from failure (the steps that failed or did not run)"
EXAMPLES = """example:
  dagster run list                     # the failed run's id
  clustering-dag rerun 5f3c2a1e-...    # in the same DAGSTER_HOME"""


def job_named(name: str):
    """The code location's job ``name`` (what each process of a re-executed run rebuilds)."""
    from clustering_dag.definitions import defs

    return defs.resolve_job_def(name)


def rerun_from_failure(run_id: str, instance):
    """Execute ``run_id``'s job from failure; the new run's :class:`~dagster.JobExecutionResult`."""
    from dagster import ReexecutionOptions, build_reconstructable_job, execute_job

    parent = instance.get_run_by_id(run_id)
    if parent is None:
        raise DataError(f"run {run_id!r} is not in this instance (DAGSTER_HOME); "
                        "see `dagster run list` for the ids")
    job = build_reconstructable_job("clustering_dag.rerun", "job_named",
                                    reconstructable_args=(parent.job_name,))
    return execute_job(job, instance, run_config=parent.run_config, tags=parent.tags,
                       reexecution_options=ReexecutionOptions.from_failure(run_id, instance))


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", help="the failed run's id (`dagster run list`)")


def run(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        result = rerun_from_failure(args.run_id, instance)
        status = "SUCCESS" if result.success else "FAILURE"
        sys.stdout.write(f"re-executed {args.run_id} from failure as {result.run_id}: {status}\n")
    return 0 if result.success else 1


def main(argv=None) -> int:
    from clustering_dag.cli import module_main

    return module_main("rerun", argv)


if __name__ == "__main__":
    sys.exit(main())
