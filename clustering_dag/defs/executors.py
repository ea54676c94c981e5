"""Steps as Celery tasks: Dagster's Celery executor (``dagster-celery``), plus a bound on waiting
for a worker that has gone.

Each step is a task on a queue: the steps that train (``trained_vae``, ``seed_spread``) on
``vae`` (the queue GPU nodes serve, via Dagster's ``dagster-celery/queue`` op tag), every other
step on Celery's default queue, ``dagster``. Workers start with ``dagster-celery worker start
-A dagster_celery.app -y <yaml> -q <queue>``; the run and the workers read the same YAML
(``clustering_dag/deploy/celery.yaml``), so they meet at the same broker.

What Dagster's Celery executor leaves open: a worker that dies mid-step (machine lost, SIGKILL,
OOM killer on the whole worker) never reports back, and the run waits for it forever; so does a
step whose queue no worker consumes. Here the run watches its steps: a started step's Celery
state names the worker running it (``task_track_started``), and every few seconds the run asks
the workers which tasks they run and which queues they consume. A step its worker has stopped
listing, or a queued step no live worker would take, fails after ``worker_lost_after`` seconds
with a message saying which and what to do — unless the run's event log shows that the step
succeeded (its worker died after finishing it, before handing back the result): then the step
counts as done, with the events its worker logged. Steps that can still run go on; the run then fails,
and re-executing it from failure (UI, or ``python -m clustering_dag.rerun``) runs the lost steps
and what follows them, reusing every step that had finished.
"""

import time

from dagster import Field, executor, multiple_process_executor_requirements, serialize_value

# Private Dagster APIs, each where no public one exists: `RetryMode` parses the `retries` config
# that `CeleryExecutor` requires (dagster_celery's own executor function does the same), and the
# lost-step failure below is built as Dagster builds a step failure (an event, its data, an error).
from dagster._core.execution.retries import RetryMode
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor

QUEUE_TAG = "dagster-celery/queue"  # dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG
VAE_QUEUE = "vae"
DEFAULT_QUEUE = "dagster"  # dagster_celery's task_default_queue
# Worker-side settings the watch relies on (they belong in the workers' YAML too, see deploy/).
WATCHED_SETTINGS = {
    "task_track_started": True,  # a started task's state names its worker
    "worker_disable_prefetch": True,  # a worker holds no queued step it cannot start yet
}
POLL_SECONDS = 5.0


class WorkerLost(Exception):
    """The Celery worker running a step, or every worker of its queue, is gone."""


class WorkerWatch:
    """What the workers are doing, asked of all of them at most every ``POLL_SECONDS``: the tasks
    each is running and the queues each consumes (Celery's remote control, over the broker)."""

    def __init__(self, app, lost_after: float):
        self.app, self.lost_after = app, lost_after
        self.active: dict[str, set[str]] = {}
        self.queues: dict[str, set[str]] = {}
        self._asked = -POLL_SECONDS

    def refresh(self) -> None:
        if time.monotonic() - self._asked < POLL_SECONDS:
            return
        inspect = self.app.control.inspect(timeout=2.0)
        self.active = {w: {t.get("id") for t in tasks} for w, tasks in (inspect.active() or {}).items()}
        self.queues = {w: {q.get("name") for q in qs} for w, qs in (inspect.active_queues() or {}).items()}
        self._asked = time.monotonic()


class WatchedResult:
    """A Celery ``AsyncResult`` as the executor's loop uses it (``ready``/``get``/``revoke``) that
    also becomes ready, as a step failure, when its step can no longer finish: the worker that
    started it stopped listing it, or (not started yet) no worker consumes its queue, for
    ``lost_after`` seconds in a row."""

    def __init__(self, result, watch: WorkerWatch, plan_context, step, queue: str):
        self.result, self.watch, self.plan_context, self.step, self.queue = (
            result, watch, plan_context, step, queue)
        self.lost: str | None = None
        self.recorded: list | None = None  # the step's events, when its worker logged its success
        self._missing_since: float | None = None

    def _recorded_success(self) -> list | None:
        """The step's events from the run's event log when they include its success: the worker
        finished the step, and stored its outputs and events, but died before handing the result
        back. None when the step did not finish."""
        instance, run_id = self.plan_context.instance, self.plan_context.run_id
        records = [r for r in instance.all_logs(run_id) if r.step_key == self.step.key and r.dagster_event]
        if not any(r.dagster_event.is_step_success for r in records):
            return None
        return [r.dagster_event for r in records]

    def _problem(self) -> str | None:
        """What keeps the step from finishing now, or None while all is well."""
        self.watch.refresh()
        if self.result.state == "STARTED":
            info = self.result.info  # a second read of the backend: the task may have finished since
            if not isinstance(info, dict):  # its result (the events), no longer its worker
                return None
            worker = info.get("hostname")
            if self.result.id in self.watch.active.get(worker, ()):
                return None
            return f'Celery worker "{worker}" started step "{self.step.key}" and stopped running it'
        if any(self.queue in queues for queues in self.watch.queues.values()):
            return None  # queued, and a live worker consumes its queue
        return f'no Celery worker consumes queue "{self.queue}", where step "{self.step.key}" waits'

    def ready(self) -> bool:
        if self.lost or self.recorded or self.result.ready():
            return True
        problem = self._problem()
        if problem is None or self.result.ready():
            self._missing_since = None
            return self.result.ready()
        now = time.monotonic()
        self._missing_since = self._missing_since or now
        if now - self._missing_since < self.watch.lost_after:
            return False
        self.recorded = self._recorded_success()
        if self.recorded:
            return True
        self.lost = (
            f"{problem} (for {now - self._missing_since:.0f} s; worker_lost_after: "
            f"{self.watch.lost_after:g} s). A worker was probably killed or lost its machine. "
            "Start the workers again (README, 'Scale-out'), then re-execute this run from failure "
            "(the UI's 'Re-execute from failure', or `python -m clustering_dag.rerun <run id>`): "
            "the steps that finished are reused, not run again.")
        return True

    def get(self):
        if self.recorded:
            return [serialize_value(event) for event in self.recorded]
        if not self.lost:
            return self.result.get()
        from dagster import DagsterEvent
        from dagster._core.execution.plan.objects import ErrorSource, StepFailureData
        from dagster._utils.error import SerializableErrorInfo

        self.result.revoke()
        error = SerializableErrorInfo(self.lost, stack=[], cls_name=WorkerLost.__name__)
        failure = DagsterEvent.step_failure_event(
            self.plan_context.for_step(self.step),
            StepFailureData(error=error, user_failure_data=None, error_source=ErrorSource.FRAMEWORK_ERROR),
            message=self.lost)
        return [serialize_value(failure)]

    def revoke(self) -> None:
        self.result.revoke()


class WatchedCeleryExecutor(CeleryExecutor):
    def __init__(self, worker_lost_after: float, **kwargs):
        super().__init__(**kwargs)
        self.worker_lost_after = worker_lost_after

    def execute(self, plan_context, execution_plan):
        from dagster_celery.core_execution_loop import core_celery_execution_loop

        # dagster_celery's own submission of a step (private: its loop takes the function that
        # submits, and the watch wraps what it returns).
        from dagster_celery.executor import _submit_task

        watches = {}

        def submit(app, plan_context, step, queue, priority, known_state):
            result = _submit_task(app, plan_context, step, queue, priority, known_state)
            watch = watches.setdefault(id(app), WorkerWatch(app, self.worker_lost_after))
            return WatchedResult(result, watch, plan_context, step, queue)

        return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)


@executor(
    name="celery",
    config_schema={
        **CELERY_CONFIG,
        "worker_lost_after": Field(
            float, default_value=30.0, is_required=False,
            description="Seconds a started step may go unlisted by its worker before it fails as "
                        "lost (the worker died). Run config only: the workers' YAML must not "
                        "carry it (`dagster-celery worker start` validates Dagster's own schema)."),
    },
    requirements=multiple_process_executor_requirements(),
)
def celery_executor(init_context):
    """Dagster's Celery executor (each step a Celery task; the ``dagster-celery/queue`` op tag picks
    its queue) that fails a step whose worker died instead of waiting for it forever."""
    config = init_context.executor_config
    return WatchedCeleryExecutor(
        worker_lost_after=config["worker_lost_after"],
        broker=config.get("broker"),
        backend=config.get("backend"),
        include=config.get("include"),
        config_source={**WATCHED_SETTINGS, **(config.get("config_source") or {})},
        retries=RetryMode.from_config(config["retries"]),
    )
