"""Watching a search as it runs: report.html rewritten as trials finish, and the progress table drawn in
place on a terminal with the time elapsed and an estimate of what remains (nas.orchestration.eta).

Written by hand because no library does it for our run directory: Ray Tune's reporters print its own
trial table (no architecture columns, no outcomes) and have no estimate of the time left; the report
is ours (nas.report). This module imports ray at the top: tuner.py imports it only once Ray is up.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

import pandas as pd
from ray.tune import Callback

from .eta import AshaPlan, seconds_left

# report.html took 1.3-1.9 s to write for a 9-trial run on this 2-core machine (nas.report.write_report,
# measured): written synchronously in Tune's loop at most every 30 s, that is under 7% of the driver's
# time while trials run in their own processes.
REPORT_INTERVAL_S = 30.0
CLEAR_UP = "\x1b[{n}F\x1b[J"  # ANSI: cursor to the start of the line n lines up, clear to the end of screen


class LiveReport(Callback):
    """Rewrites RUN_DIR/report.html when a trial ends, at most every `interval` seconds (the first time a
    trial ends, then throttled); the search's finish writes the final one. The page is replaced
    atomically (nas.report.write), so a browser never reads half of it."""

    def __init__(self, run_dir, interval: float = REPORT_INTERVAL_S, clock=time.monotonic) -> None:
        # RUN_DIR: a local path or a storage.RunLocation (write_report takes either)
        self.run_dir, self.interval, self.clock = run_dir, interval, clock
        self.last: float | None = None
        self.writes = 0
        self.warned = False

    def __getstate__(self) -> dict:  # a restored search starts its own throttle
        return {**self.__dict__, "last": None}

    def relocate(self, location) -> None:
        """After Tuner.restore: the run is at `location` now (moved, renamed, or where it started)."""
        self.run_dir = location

    def maybe_write(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        try:
            from ..report import write_report

            write_report(self.run_dir)
            self.writes += 1
            return True
        except Exception as exc:  # a report that cannot be drawn yet must never stop the search
            if not self.warned:
                print(f"warning: live report not written: {exc}", file=sys.stderr, flush=True)
                self.warned = True
            return False

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.maybe_write()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.maybe_write()


# --- the progress table's time line -----------------------------------------------------------------

def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def remaining_seconds(trials: pd.DataFrame, epochs: pd.DataFrame, total: int | None, plan: AshaPlan,
                      concurrency: int, elapsed: float, now: float | None = None,
                      time_budget_s: float | None = None) -> float | None:
    """What remains: the trial-epochs still expected under ASHA, at the seconds per trial-epoch measured
    so far, over `concurrency` slots (nas.orchestration.eta), capped by the time budget. None while
    nothing can be said (no epoch measured yet, and no time budget)."""
    estimate = None
    if total:
        estimate = seconds_left(trials, epochs, total=total, plan=plan, concurrency=concurrency, now=now)
    if time_budget_s:
        left = max(0.0, time_budget_s - elapsed)
        estimate = left if estimate is None else min(estimate, left)
    return estimate


def time_line(done: int, total: int | None, elapsed: float, remaining: float | None) -> str:
    of = f"{done}/{total}" if total else str(done)
    left = f"~{format_duration(remaining)} left" if remaining is not None else "time left: after the first epoch"
    return f"elapsed {format_duration(elapsed)} | {of} trials done | {left}"


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Screen:
    """Draws a block of text: on a terminal it replaces the block drawn before (cursor up, clear); when
    piped (a log file, the Ray job's logs) it appends the block, so the log keeps every table.
    Other output between two draws (a worker's log line) is overwritten on a terminal: the table, redrawn
    in full each time, stays readable."""

    def __init__(self) -> None:
        self.lines = 0

    def draw(self, text: str, stream: TextIO) -> None:
        if is_terminal(stream):
            rows = shutil.get_terminal_size((100, 40)).lines
            body = text.split("\n")
            if len(body) > rows - 1:  # a block taller than the screen cannot be moved back over
                body = body[:rows - 2] + [f"  ... ({len(body) - rows + 2} more lines)"]
            prefix = CLEAR_UP.format(n=self.lines) if self.lines else ""
            stream.write(prefix + "\n".join(body) + "\n")
            self.lines = len(body)
        else:
            stream.write(text + "\n")
        stream.flush()


__all__ = ["LiveReport", "REPORT_INTERVAL_S", "Screen", "format_duration", "is_terminal", "remaining_seconds",
           "time_line"]
