"""Two searches at once on one machine: each embedded Ray gets its own dashboard port (8265, or the next
free one, chosen under a file lock so that two started at the same moment cannot pick the same), and a
port asked for that is taken is refused at once, naming the flag."""

from __future__ import annotations

import re
import socket
import time

import pytest

from nas.orchestration import SearchConfigError
from nas.orchestration.ray_env import DEFAULT_DASHBOARD_PORT, free_dashboard_port
from tests.helpers import searchrun


def test_a_taken_port_asked_for_is_refused_and_the_default_moves_on():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        with pytest.raises(SearchConfigError) as info:
            free_dashboard_port("127.0.0.1", taken)
        assert info.value.setting == "dashboard_port" and str(taken) in str(info.value)
        chosen = free_dashboard_port("127.0.0.1", None)
        assert chosen >= DEFAULT_DASHBOARD_PORT and chosen != taken


def test_two_searches_started_at_the_same_moment_both_run(tmp_path, search_process):
    args = [*searchrun.FAST, "--trials", "1", "--max-epochs", "1", "--cpus-per-trial", "1",
            "--storage-path", str(tmp_path)]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [search_process.start([*args, "--name", name], log) for name, log in zip("ab", logs, strict=True)]
    deadline = time.monotonic() + 400
    for proc in procs:
        proc.wait(timeout=max(1, deadline - time.monotonic()))
    texts = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0, 0], "\n---\n".join(t[-3000:] for t in texts)
    ports = [re.search(r"Ray dashboard: http://[^:]+:(\d+)", t).group(1) for t in texts]
    assert ports[0] != ports[1], ports
    for name in "ab":
        assert (tmp_path / name / "best.json").is_file()
