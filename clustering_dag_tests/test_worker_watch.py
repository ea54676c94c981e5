"""The Celery executor's watch on its steps, without a broker: a started step its worker stopped
listing fails as lost with what to do, unless the run's event log already holds the step's
success (the worker died after finishing it), in which case the logged events stand."""

from dataclasses import dataclass, field
from types import SimpleNamespace

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
    revoked: bool = False

    def ready(self) -> bool:
        return False

    def revoke(self) -> None:
        self.revoked = True


class NoWorkers:
    """A watch whose workers list no task and consume no queue; a step is lost at once."""

    lost_after, active, queues = 0.0, {}, {}

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
    assert not task.revoked


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
