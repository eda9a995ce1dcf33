"""The live side of a search without Ray running: the progress table redrawn in place on a terminal
(plain lines when piped) with elapsed time and what remains, and report.html rewritten as trials end,
throttled."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from nas.orchestration.callbacks import ProgressTable, ResultsTable
from nas.orchestration.eta import FINISHED, AshaPlan, seconds_left
from nas.orchestration.live import CLEAR_UP, LiveReport, format_duration, remaining_seconds, time_line
from tests.helpers.fake_run import write_fake_run


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(tmp_path):
    run_dir = write_fake_run(tmp_path / "run", n_trials=6, partial=True, failures=False, max_epochs=3)
    return ResultsTable(run_dir, 224, 3)


def test_time_line_and_the_time_budget_cap():
    trials = pd.DataFrame({"trial_id": ["a"], "outcome": ["running"]})
    no_epochs = pd.DataFrame(columns=["trial_id", "epoch", "epoch_seconds"])
    plan = AshaPlan(2)
    assert remaining_seconds(trials, no_epochs, 9, plan, 2, 60.0) is None  # nothing measured yet: no estimate
    assert remaining_seconds(trials, no_epochs, 9, plan, 2, 60.0, time_budget_s=100) == pytest.approx(40.0)
    epochs = pd.DataFrame({"trial_id": ["a"], "epoch": [1], "epoch_seconds": [30.0]})
    # a's second epoch (30 s), then 8 trials of 2 x 30 s on 2 slots: 4 rounds of 60 s, the last after a
    assert remaining_seconds(trials, epochs, 9, plan, 2, 60.0) == pytest.approx(30 + 4 * 60)
    assert remaining_seconds(trials, epochs, 9, plan, 2, 60.0, time_budget_s=100) == pytest.approx(40.0)
    assert time_line(3, 9, 60.0, 120.0) == "elapsed 0:01:00 | 3/9 trials done | ~0:02:00 left"


def test_on_a_terminal_the_table_is_redrawn_in_place(table):
    clock, tty = Clock(), FakeTTY()
    progress = ProgressTable(table, stream=tty, total=9, clock=clock)
    done = int(table.frame()["outcome"].isin(FINISHED).sum())
    assert 0 < done < len(table.frame())
    progress.on_step_end(0, [])
    first = tty.getvalue()
    assert "\x1b[" not in first and first.startswith(f"elapsed 0:00:00 | {done}/9 trials done")
    clock.now += 0.5
    progress.on_step_end(0, [])  # under a second: not redrawn
    assert tty.getvalue() == first
    clock.now += 90
    # a trial ended since the first draw: the estimate follows this driver's rate
    table.rows[next(t for t, r in table.rows.items() if r["outcome"] == "running")]["outcome"] = "completed"
    progress.on_step_end(0, [])  # on a terminal the clock ticks without any trial event
    second = tty.getvalue()[len(first):]
    assert second.startswith(CLEAR_UP.format(n=len(first.splitlines())))  # back over the whole first table
    # the estimate: nas.orchestration.eta on the tables as they are now
    frame = table.frame()
    epochs = pd.DataFrame(list(table.epochs.values()))
    remaining = seconds_left(frame, epochs, total=9, plan=AshaPlan(3), concurrency=progress.concurrency,
                             now=progress.wall())
    assert f"elapsed 0:01:30 | {done + 1}/9 trials done | ~{format_duration(remaining)} left" in second
    assert second.count("\n") == first.count("\n")


def test_piped_the_table_is_appended_at_most_every_interval_and_when_a_trial_ends(table):
    clock, pipe = Clock(), io.StringIO()
    progress = ProgressTable(table, stream=pipe, total=9, clock=clock, interval=20)
    progress.on_step_end(0, [])  # no ticking when piped
    assert pipe.getvalue() == ""
    progress.on_trial_result(0, [], None, {})
    clock.now += 5
    progress.on_trial_result(0, [], None, {})  # within the interval
    progress.on_trial_complete(0, [], None)  # a trial ended: always printed
    text = pipe.getvalue()
    assert "\x1b" not in text and text.count("trials done") == 2
    assert text.startswith("elapsed 0:00:00") and "\nelapsed 0:00:05" in text


def test_the_report_is_rewritten_when_trials_end_at_most_every_interval(tmp_path):
    run_dir = write_fake_run(tmp_path / "run", n_trials=5, partial=True, failures=False, max_epochs=3)
    clock = Clock()
    live = LiveReport(run_dir, interval=30, clock=clock)
    live.on_trial_complete(0, [], None)  # the first trial to end: written at once
    report = run_dir / "report.html"
    assert live.writes == 1 and report.stat().st_size > 100_000
    first = report.stat().st_mtime_ns
    clock.now += 10
    live.on_trial_error(0, [], None)
    assert live.writes == 1 and report.stat().st_mtime_ns == first
    clock.now += 25
    live.on_trial_complete(0, [], None)
    assert live.writes == 2 and report.stat().st_mtime_ns > first


def test_a_report_that_cannot_be_drawn_yet_warns_once_and_never_raises(tmp_path, capsys):
    clock = Clock()
    live = LiveReport(tmp_path / "empty", interval=0, clock=clock)
    live.on_trial_complete(0, [], None)
    live.on_trial_complete(0, [], None)
    assert live.writes == 0 and capsys.readouterr().err.count("live report not written") == 1
