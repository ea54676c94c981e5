"""The Celery executor's watch on its steps, without a broker: a started step its worker stopped
listing fails as lost with what to do, unless the run's event log already holds the step's
success (the worker died after finishing it), in which case the logged events stand; the same
whatever the workers' YAML says, for a task the broker lost, and while the backend is away. The
real services' version of each fault is in test_faults.py."""

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from dagster import DagsterEvent
from dagster._core.events import DagsterEventType, StepSuccessData
from dagster._serdes import deserialize_value

from clustering_dag.defs.executors import WatchedResult


@dataclass
class StartedTask:
    """A Celery result whose task a worker started and never finished."""

    id: str = "task-1"
    state: str = "STARTED"
    info: dict = field(default_factory=lambda: {"hostname": "default@host"})
    revoked: dict | None = None

    def ready(self) -> bool:
        return False

    def revoke(self, **how) -> None:
        self.revoked = how


class NoWorkers:
    """A watch whose workers list no task and consume no queue; a step is lost at once."""

    lost_after, unreachable = 0.0, None

    def __init__(self):
        self.holder, self.queues, self.free = {}, {}, set()

    def refresh(self) -> None:
        pass


class Log:
    def __init__(self, records):
        self.records = records

    def all_logs(self, run_id):
        return self.records


def success(step_key: str) -> DagsterEvent:
    return DagsterEvent(event_type_value=DagsterEventType.STEP_SUCCESS.value, job_name="celery_run",
                        step_key=step_key, event_specific_data=StepSuccessData(duration_ms=12.0))


def watched(records) -> tuple[WatchedResult, StartedTask]:
    task = StartedTask()
    step = SimpleNamespace(key="paper__manifold_representation")
    context = SimpleNamespace(instance=Log(records), run_id="run-1")
    return WatchedResult(task, NoWorkers(), context, step, "dagster"), task


def test_a_step_whose_success_is_logged_counts_as_done_with_its_events():
    logged = success("paper__manifold_representation")
    other = SimpleNamespace(step_key="raw_dataset", dagster_event=success("raw_dataset"))
    result, task = watched([other, SimpleNamespace(step_key="paper__manifold_representation",
                                                   dagster_event=logged)])
    assert result.ready() and result.lost is None
    events = [deserialize_value(e, DagsterEvent) for e in result.get()]
    assert [(e.step_key, e.is_step_success) for e in events] == [("paper__manifold_representation", True)]
    assert task.revoked is None


def test_a_step_that_finishes_while_the_watch_reads_it_is_not_lost():
    """Celery's state and info are two reads of the backend: a task can finish between them, and
    its info is then its result (the step's events), not the worker that started it."""
    result, task = watched([])
    task.info = ["serialized step events"]
    assert not result.ready() and result.lost is None


def test_a_step_its_worker_dropped_is_lost_and_says_what_to_do():
    result, _ = watched([SimpleNamespace(step_key="raw_dataset", dagster_event=success("raw_dataset"))])
    assert result.ready()
    assert result.lost.startswith('Celery worker "default@host" started step '
                                  '"paper__manifold_representation" and stopped running it')
    assert "re-execute this run from failure" in result.lost  # get() turns it into a STEP_FAILURE
    result.revoke()  # what get() does before it reports the failure
    assert result.result.revoked == {"terminate": True}  # stopped wherever it may still run


def test_a_step_is_followed_by_the_workers_lists_whatever_their_yaml_says():
    """A worker without `task_track_started` leaves its task PENDING while it runs it: the watch
    finds the worker in the workers' own lists, and notices when it stops listing the task."""
    result, task = watched([])
    task.state, task.info = "PENDING", None
    result.watch.holder, result.watch.queues = {"task-1": "default@host"}, {"default@host": {"dagster"}}
    assert not result.ready()  # running, though its state never says so
    result.watch.holder = {}
    assert result.ready()
    assert result.lost.startswith('Celery worker "default@host" started step ')


def test_a_queued_step_beside_an_idle_worker_of_its_queue_is_lost_from_the_broker():
    result, task = watched([])
    task.state, task.info = "PENDING", None
    result.watch.queues, result.watch.free = {"default@host": {"dagster"}}, {"default@host"}
    assert result.ready()
    assert "the broker no longer holds its task" in result.lost


def test_a_queued_step_behind_a_busy_worker_waits():
    result, task = watched([])
    task.state, task.info = "PENDING", None
    result.watch.queues, result.watch.free = {"default@host": {"dagster"}}, set()
    result.watch.holder = {"other-task": "default@host"}
    assert not result.ready() and result.lost is None


class BackendAway(StartedTask):
    @property
    def state(self):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    @state.setter
    def state(self, value):
        pass

    def ready(self) -> bool:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_result_backend_that_does_not_answer_fails_the_step_with_what_happened():
    step = SimpleNamespace(key="paper__trained_vae")
    context = SimpleNamespace(instance=Log([]), run_id="run-1")
    result = WatchedResult(BackendAway(), NoWorkers(), context, step, "vae")
    assert result.ready()
    assert result.lost.startswith('the Celery result backend does not answer (ConnectionError: Error 111')


def test_the_watched_settings_win_over_the_run_config():
    from clustering_dag.defs.executors import WATCHED_SETTINGS, celery_executor

    context = SimpleNamespace(executor_config={
        "config_source": {"task_track_started": False, "worker_disable_prefetch": False,
                          "task_acks_late": True},
        "worker_lost_after": 5.0, "retries": {"enabled": {}}})
    executor = celery_executor.executor_creation_fn(context)
    settings = vars(executor.config_source)  # dagster_celery's defaults, the run's, then the watch's
    assert {k: settings[k] for k in ("task_acks_late", *WATCHED_SETTINGS)} == {
        "task_acks_late": True, **WATCHED_SETTINGS}


def test_a_submission_retries_while_the_broker_is_away_then_says_so():
    from kombu.exceptions import OperationalError

    from clustering_dag.defs.executors import WorkerLost, submit_within

    tries = []

    def refused():
        tries.append(1)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with pytest.raises(WorkerLost, match=r'did not take step "raw_dataset" for 0\.1 s'):
        submit_within(0.1, refused, 'step "raw_dataset"')
    assert len(tries) >= 2
    assert submit_within(5.0, iter([lambda: 1]).__next__(), "x") == 1

    def broken():
        raise ValueError("not a connection problem")

    with pytest.raises(ValueError):  # anything else is not retried
        submit_within(5.0, broken, "x")
