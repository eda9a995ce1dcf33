"""No trial takes the search down: a worker killed by Ray's memory monitor or by a signal ends its own
trial (outcome oom / error, with the reason), the other trials go on, the summary counts them."""

from __future__ import annotations

import json

import pandas as pd
import psutil
import pytest

from nas.orchestration.worker_faults import failure_of, survive_worker_deaths

RAY_MONITOR = """OutOfMemoryError: Task was killed due to the node running low on memory.
Memory on the node (IP: 127.0.0.1, ID: 6f1e) where the lease (actor ID: 90ab, name=ImplicitFunc.__init__, pid=4242,
memory used=20.54GB) was running was 22.36GB / 23.50GB (0.951), which exceeds the memory usage threshold of 0.95.
Refer to the documentation on how to address the out of memory issue: https://docs.ray.io/..."""


@pytest.mark.parametrize(("text", "outcome", "words"), [
    (RAY_MONITOR, "oom", "22.36GB / 23.50GB"),
    ("Traceback ...\nRuntimeError: DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB",
     "oom", "can't allocate memory"),
    ("Traceback ...\nMemoryError", "oom", "MemoryError"),
    ("ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n"
     "\tclass_name: ImplicitFunc\nWorker unexpectedly exits with a connection error code 2.", "error",
     "connection error code 2"),
    ("Traceback ...\nValueError: broken data pipeline", "error", "broken data pipeline"),
])
def test_a_failure_is_oom_when_memory_ran_out_else_error_with_one_line_reason(text, outcome, words):
    got, reason = failure_of(text)
    assert got == outcome and words in reason and "\n" not in reason


def test_a_task_killed_by_the_memory_monitor_becomes_the_actors_death():
    """Ray 2.60's actor manager raised this out of Tuner.fit ("Caught unexpected exception"); with the hook
    it reaches the trial's error callbacks as an actor error, which Tune records as the trial's failure."""
    from ray.air.execution._internal.actor_manager import RayActorManager
    from ray.exceptions import OutOfMemoryError, RayActorError

    assert survive_worker_deaths() and survive_worker_deaths()  # idempotent
    seen = []

    class Tracked:
        _on_error = staticmethod(lambda actor, exc: seen.append(("actor", exc)))

    class Task:
        _tracked_actor = Tracked()
        _on_error = staticmethod(lambda actor, exc: seen.append(("task", exc)))

    manager = RayActorManager.__new__(RayActorManager)
    manager._failed_actor_ids = set()
    manager._cleanup_actor = lambda tracked_actor: None
    Tracked.actor_id = "a1"
    manager._actor_task_failed(Task(), OutOfMemoryError(RAY_MONITOR))
    assert [kind for kind, _ in seen] == ["actor", "task"]
    assert all(isinstance(exc, RayActorError) for _, exc in seen)
    assert failure_of(str(seen[1][1]))[0] == "oom"
    import pickle

    assert str(pickle.loads(pickle.dumps(seen[1][1]))) == str(seen[1][1])  # Tune pickles a trial's error


def test_workers_killed_by_the_memory_monitor_and_by_pid_end_only_their_trials(tmp_path, search_process):
    vm = psutil.virtual_memory()
    used = (vm.total - vm.available) / vm.total
    if used > 0.8:
        pytest.skip(f"the machine already uses {used:.0%} of its memory")
    # Ray's memory monitor kills a worker once the node uses this fraction: 3 GB above now, so that a
    # trial that trains (~0.5 GB) stays below it while other programs' use moves a little.
    threshold = min(0.9, used + (3 * 2**30) / vm.total)
    state = tmp_path / "state"
    state.mkdir()
    env = {**search_process.env(), "RAY_memory_usage_threshold": f"{threshold:.3f}",
           "RAY_memory_monitor_refresh_ms": "100"}
    proc = search_process.command("tests.helpers.dying_trials", str(state), str(tmp_path / "runs"),
                                  environ=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    frame = pd.read_csv(tmp_path / "runs" / "dying" / "trials.csv", dtype={"trial_id": str})
    roles = {p.stem: p.read_text() for p in state.glob("*.role")}
    by_role = {roles[row.trial_id]: row for row in frame.itertuples()}
    assert by_role["hog"].outcome == "oom", by_role["hog"].reason
    assert "memory" in by_role["hog"].reason
    assert by_role["victim"].outcome == "error" and str(by_role["victim"].reason) not in ("", "nan")
    assert by_role["train"].outcome == "completed", by_role["train"].reason
    assert summary == {"trials": 3, "outcomes": {"completed": 1, "oom": 1, "error": 1}}
