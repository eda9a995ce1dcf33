"""A trial whose worker process dies ends that trial, never the search.

Ray Tune handles a trial worker that dies between tasks (RayActorError: a SIGKILL, a crash) as a trial
failure, but Ray 2.60's actor manager raises anything else out of Tuner.fit: when Ray's memory monitor
kills a trial's worker under a running task, the task fails with ray.exceptions.OutOfMemoryError
(WorkerCrashedError for some crashes), and `RayActorManager._actor_task_failed` turns it into
"RuntimeError: Caught unexpected exception: 1 worker(s) were killed due to the node running low on
memory", which ended a whole search (shared/reviews/correctness.md, an image folder at 224x224).
`survive_worker_deaths` passes such an exception on as the actor's death (TrialWorkerDied), which Tune
already knows how to record, retry (FailureConfig) and move past.

`failure_of` reads what a failed trial left (its error text) as an outcome of nas.rundir.schema: `oom`
when memory ran out (Ray's memory monitor, a CPU allocation, CUDA), `error` otherwise, with a reason.
"""

from __future__ import annotations

import functools
import re

# What a trial's error says when memory ran out: Ray's memory monitor, Python, torch's CPU allocator, CUDA.
_OOM = re.compile(r"OutOfMemoryError|running low on memory|MemoryError|can't allocate memory|"
                  r"not enough memory|out of memory|memory usage threshold", re.IGNORECASE)


def failure_of(error_text: str) -> tuple[str, str]:
    """(outcome, reason) of a trial that failed with `error_text` (Tune's error file, or an exception's
    text): `oom` or `error`; the reason is the line that says most (for OOM, the one naming memory)."""
    lines = [ln.strip() for ln in error_text.strip().splitlines() if ln.strip()]
    if not lines:
        return "error", "trial failed without an error message"
    oom = [ln for ln in lines if _OOM.search(ln)]
    if oom:
        # Ray's memory monitor says why in a line with the node's memory figures; prefer it
        figures = [ln for ln in oom if re.search(r"\d+(\.\d+)?\s*GB", ln)]
        return "oom", (figures or oom)[-1][:300]
    return "error", lines[-1][:300]


@functools.cache  # one TrialWorkerDied class
def _ray_errors():
    from ray.exceptions import RayActorError, RayError, RayTaskError

    class TrialWorkerDied(RayActorError):
        """The trial's worker process died under a task (Ray's memory monitor, a signal, a crash)."""

        def __init__(self, error_msg: str) -> None:
            super().__init__(error_msg=error_msg)

        def __reduce__(self):  # Tune pickles a trial's exception into its error file
            return (trial_worker_died, (self.error_msg,))

    return RayActorError, RayError, RayTaskError, TrialWorkerDied


def trial_worker_died(message: str) -> Exception:
    """A TrialWorkerDied carrying `message` (a module-level constructor, so the exception pickles)."""
    return _ray_errors()[3](message)


def survive_worker_deaths() -> bool:
    """Make Ray Tune's actor manager treat a task that failed because its worker died (any RayError that
    is neither a task's own exception nor an actor error) as the actor's death. Idempotent; returns
    whether the hook is in place (False if this Ray's actor manager no longer has the method)."""
    try:
        from ray.air.execution._internal.actor_manager import RayActorManager
    except ImportError:
        return False
    original = getattr(RayActorManager, "_actor_task_failed", None)
    if original is None:
        return False
    if getattr(original, "_nas_survives_worker_deaths", False):
        return True
    actor_error, ray_error, task_error, _ = _ray_errors()

    def _actor_task_failed(self, tracked_actor_task, exception):
        if isinstance(exception, ray_error) and not isinstance(exception, actor_error | task_error):
            exception = trial_worker_died(f"{type(exception).__name__}: {exception}")
        return original(self, tracked_actor_task, exception)

    _actor_task_failed._nas_survives_worker_deaths = True
    RayActorManager._actor_task_failed = _actor_task_failed
    return True


__all__ = ["failure_of", "survive_worker_deaths", "trial_worker_died"]
