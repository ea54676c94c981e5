"""Steps as Celery tasks: Dagster's Celery executor (``dagster-celery``), plus a bound on waiting
for a worker that has gone.

Each step is a task on a queue: the steps that train (``trained_vae``, ``refined_classifier``,
``seed_spread``) on
``vae`` (the queue GPU nodes serve, via Dagster's ``dagster-celery/queue`` op tag), every other
step on Celery's default queue, ``dagster``. Workers start with ``dagster-celery worker start
-A dagster_celery.app -y <yaml> -q <queue>``; the run and the workers read the same YAML
(``clustering_dag/deploy/celery.yaml``), so they meet at the same broker.

What Dagster's Celery executor leaves open: a worker that dies mid-step (machine lost, SIGKILL,
OOM killer on the whole worker) never reports back, and the run waits for it forever; so does a
step whose queue no worker consumes, and one whose task a restarted broker lost. Here the run
watches its steps: every few seconds it asks the workers which tasks they run or hold and which
queues they consume (so the workers' own `task_track_started` and prefetch settings do not
matter). A step its worker has stopped listing, a queued step no live worker would take, one
that waits while a worker of its queue sits idle, or any step while the broker or the result
backend does not answer, fails after ``worker_lost_after`` seconds in a row with a message
saying which and what to do, and its task is revoked with ``terminate`` (a worker that still
runs it, unseen, stops it) — unless the run's event log shows that the step succeeded (its
worker died after finishing it, before handing back the result): then the step counts as done,
with the events its worker logged. A broker back within that time loses nothing. Steps that can
still run go on; the run then fails, and re-executing it from failure (UI, or ``python -m
clustering_dag.rerun``) runs the lost steps and what follows them, reusing every step that had
finished.
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
# Settings of the run's Celery app that the watch relies on; they win over the run config's
# `config_source`. The watch does not rely on the workers' own YAML: it finds a step's worker in
# the workers' lists of running and reserved tasks, whatever their `task_track_started` or
# prefetch settings (deploy/celery.yaml sets both as the watch would like, for Flower and logs).
WATCHED_SETTINGS = {
    "task_track_started": True,  # a started task's state names its worker
    "worker_disable_prefetch": True,  # a worker holds no queued step it cannot start yet
}
POLL_SECONDS = 5.0
ASK_SECONDS = 1.0  # how long each question to the workers waits for their answers


class WorkerLost(Exception):
    """The Celery worker running a step, or every worker of its queue, is gone."""


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


class WorkerWatch:
    """What the workers are doing, asked of all of them at most every ``POLL_SECONDS`` (Celery's
    remote control, over the broker): which worker holds each task (running it, or reserved for
    it), the queues each consumes, and which have a free slot. ``unreachable`` says why the broker
    did not answer, when it did not."""

    def __init__(self, app, lost_after: float):
        self.app, self.lost_after = app, lost_after
        self.holder: dict[str, str] = {}  # task id -> the worker running or holding it
        self.queues: dict[str, set[str]] = {}
        self.free: set[str] = set()  # workers running fewer tasks than their pool's size
        self.unreachable: str | None = None
        self._slots: dict[str, int] = {}
        self._asked = -POLL_SECONDS

    def refresh(self) -> None:
        if time.monotonic() - self._asked < POLL_SECONDS:
            return
        self._asked = time.monotonic()
        try:
            with self.app.connection_for_write() as connection:
                # Fail fast while the broker is down (the remote control itself retries for ever).
                connection.ensure_connection(max_retries=1, timeout=2.0)
                inspect = self.app.control.inspect(timeout=ASK_SECONDS, connection=connection)
                reserved = inspect.reserved() or {}  # before `active`: a task moves that way
                active = inspect.active() or {}
                queues = inspect.active_queues() or {}
                if set(queues) - set(self._slots):
                    for worker, stats in (inspect.stats() or {}).items():
                        self._slots[worker] = int(stats.get("pool", {}).get("max-concurrency") or 1)
        except Exception as exc:  # noqa: BLE001 (whatever the transport raises: the broker is away)
            self.holder, self.queues, self.free = {}, {}, set()
            self.unreachable = _said(exc)
            return
        self.unreachable = None
        self.holder = {t.get("id"): w for listing in (reserved, active)
                       for w, tasks in listing.items() for t in tasks}
        self.queues = {w: {q.get("name") for q in qs} for w, qs in queues.items()}
        self.free = {w for w in self.queues
                     if len(active.get(w, ())) < self._slots.get(w, 1) and not reserved.get(w)}


class WatchedResult:
    """A Celery ``AsyncResult`` as the executor's loop uses it (``ready``/``get``/``revoke``) that
    also becomes ready, as a step failure, when its step can no longer finish, for ``lost_after``
    seconds in a row: the worker that held it stopped listing it; no live worker consumes its
    queue; a worker of its queue sits idle while it waits (the broker lost the task: a restart
    without persistence); or the broker and result backend do not answer."""

    def __init__(self, result, watch: WorkerWatch, plan_context, step, queue: str):
        self.result, self.watch, self.plan_context, self.step, self.queue = (
            result, watch, plan_context, step, queue)
        self.lost: str | None = None
        self.recorded: list | None = None  # the step's events, when its worker logged its success
        self.worker: str | None = None  # the last worker seen holding the task
        self._missing_since: float | None = None

    def _logged(self) -> tuple[list | None, str | None]:
        """What the run's event log says of the step: its events when they include its success
        (the worker finished the step, stored its outputs and events, but died before handing the
        result back), else None; and the worker that said it started the step, if one did."""
        instance, run_id = self.plan_context.instance, self.plan_context.run_id
        records = [r for r in instance.all_logs(run_id) if r.step_key == self.step.key and r.dagster_event]
        started = [r.dagster_event.engine_event_data.metadata.get("Celery worker") for r in records
                   if r.dagster_event.is_engine_event and r.dagster_event.engine_event_data
                   and "Celery worker" in (r.dagster_event.engine_event_data.metadata or {})]
        worker = getattr(started[-1], "value", started[-1]) if started else None
        if not any(r.dagster_event.is_step_success for r in records):
            return None, worker
        return [r.dagster_event for r in records], worker

    def _problem(self) -> str | None:
        """What keeps the step from finishing now, or None while all is well."""
        step = self.step.key
        try:
            state = self.result.state
            info = self.result.info if state == "STARTED" else None
        except Exception as exc:  # noqa: BLE001 (the result backend's client errors)
            return f'the Celery result backend does not answer ({_said(exc)}) while step "{step}" runs'
        self.watch.refresh()
        if self.watch.unreachable:
            return f'the Celery broker does not answer ({self.watch.unreachable}) while step "{step}" runs'
        holder = self.watch.holder.get(self.result.id)
        if holder:
            self.worker = holder
            return None
        if state == "STARTED" and isinstance(info, dict):  # a later read may hold the result instead
            self.worker = info.get("hostname") or self.worker
        if self.worker:
            return f'Celery worker "{self.worker}" started step "{step}" and stopped running it'
        if state != "PENDING":
            return None  # finished since it was read
        consumers = {w for w, queues in self.watch.queues.items() if self.queue in queues}
        if not consumers:
            return f'no Celery worker consumes queue "{self.queue}", where step "{step}" waits'
        idle = sorted(consumers & self.watch.free)
        if idle:
            return (f'step "{step}" waits on queue "{self.queue}" while worker "{idle[0]}" has a free '
                    "slot: the broker no longer holds its task (restarted without persistence, "
                    "or its data lost)")
        return None  # queued behind other tasks of a live worker

    def _ready(self) -> bool:
        try:
            return self.result.ready()
        except Exception:  # noqa: BLE001 (the backend is away: _problem says so)
            return False

    def ready(self) -> bool:
        if self.lost or self.recorded or self._ready():
            return True
        problem = self._problem()
        if problem is None or self._ready():  # well, or finished while _problem read its state
            self._missing_since = None
            return problem is not None
        now = time.monotonic()
        self._missing_since = self._missing_since or now
        if now - self._missing_since < self.watch.lost_after:
            return False
        self.recorded, worker = self._logged()
        if self.recorded:
            return True
        if worker and not self.worker:  # it started unseen (the workers' lists are polled)
            self.worker = worker
            problem = self._problem() or problem
        self.lost = (
            f"{problem} (for {now - self._missing_since:.0f} s; worker_lost_after: "
            f"{self.watch.lost_after:g} s). A worker was probably killed or lost its machine, or "
            "the broker restarted. Start the workers (and the broker) again (README, 'Scale-out'), "
            "then re-execute this run from failure (the UI's 'Re-execute from failure', or "
            "`clustering-dag rerun <run id>`): the steps that finished are reused, not "
            "run again.")
        return True

    def get(self):
        if self.recorded:
            return [serialize_value(event) for event in self.recorded]
        if not self.lost:
            return self.result.get()
        from dagster import DagsterEvent
        from dagster._core.execution.plan.objects import ErrorSource, StepFailureData
        from dagster._utils.error import SerializableErrorInfo

        self.revoke()  # wherever it may still run, it stops: its re-execution must not meet it
        error = SerializableErrorInfo(self.lost, stack=[], cls_name=WorkerLost.__name__)
        failure = DagsterEvent.step_failure_event(
            self.plan_context.for_step(self.step),
            StepFailureData(error=error, user_failure_data=None, error_source=ErrorSource.FRAMEWORK_ERROR),
            message=self.lost)
        return [serialize_value(failure)]

    def revoke(self) -> None:
        """Revoke the task and terminate it where it runs (a broadcast: a worker that still runs
        the step, unseen, kills its process; one that receives it later discards it)."""
        try:
            self.result.revoke(terminate=True)
        except Exception:  # noqa: BLE001 (the broker is away: nothing can be told to the workers)
            pass


def submit_within(lost_after: float, submit, describe: str):
    """``submit()``, retried while the broker cannot be reached, for at most ``lost_after``
    seconds; then one error saying what happened and what to do."""
    from kombu.exceptions import OperationalError

    started = time.monotonic()
    while True:
        try:
            return submit()
        except (OperationalError, ConnectionError) as exc:  # kombu's, and the transport's
            if time.monotonic() - started >= lost_after:
                raise WorkerLost(
                    f"the Celery broker did not take {describe} for {lost_after:g} s "
                    f"({_said(exc)}). Start the broker again (README, 'Scale-out'), then re-execute "
                    "this run from failure: the steps that finished are reused.") from exc
            time.sleep(min(2.0, lost_after))


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
            result = submit_within(
                self.worker_lost_after,
                lambda: _submit_task(app, plan_context, step, queue, priority, known_state),
                f'step "{step.key}"')
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
        config_source={**(config.get("config_source") or {}), **WATCHED_SETTINGS},
        retries=RetryMode.from_config(config["retries"]),
    )
