"""A live, readable progress table of the search (instead of Ray's per-result log lines)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import pandas as pd
from ray.tune import Callback

from .results import ResultsTable


def format_progress(frame: pd.DataFrame, elapsed: float, limit: int = 20) -> str:
    """Trial table sorted by validation accuracy, with a one-line summary on top."""
    counts = frame["outcome"].value_counts().to_dict() if len(frame) else {}
    parts = [f"{n} {k}" for k, n in sorted(counts.items())]
    header = f"[{time.strftime('%H:%M:%S', time.gmtime(elapsed))}] {len(frame)} trials: {', '.join(parts)}"
    done = frame.dropna(subset=["best_val_accuracy"]) if len(frame) else frame
    if len(done):
        best = done.loc[done["best_val_accuracy"].astype(float).idxmax()]
        header += f" | best {100 * float(best['best_val_accuracy']):.1f}% {best['name']}"
    lines = [header, f"  {'trial':<18} {'outcome':<9} {'C':>3} {'d':>4} {'depths':<12} {'GFLOPs':>6} "
                     f"{'epoch':>5} {'val acc':>7} {'img/s':>6}"]
    shown = frame.assign(_key=frame["best_val_accuracy"].astype(float).fillna(-1)).sort_values(
        "_key", ascending=False).head(limit) if len(frame) else frame
    for row in shown.itertuples():
        acc = "" if pd.isna(row.val_accuracy) else f"{100 * float(row.val_accuracy):.1f}%"
        epoch = "" if pd.isna(row.epochs) else str(int(row.epochs))
        speed = "" if pd.isna(row.images_per_second) else f"{float(row.images_per_second):.0f}"
        lines.append(f"  {str(row.trial_id)[-18:]:<18} {row.outcome:<9} {int(row.cardinality):>3} "
                     f"{int(row.width):>4} {row.depths:<12} {float(row.flops) / 1e9:>6.2f} {epoch:>5} "
                     f"{acc:>7} {speed:>6}")
    if len(frame) > limit:
        lines.append(f"  ... {len(frame) - limit} more in trials.csv")
    return "\n".join(lines)


class ProgressTable(Callback):
    """Prints the table at most every `interval` seconds, and whenever a trial ends."""

    def __init__(self, table: ResultsTable, interval: float = 20.0, stream: TextIO | None = None) -> None:
        # None means sys.stdout at print time: Tune pickles callbacks, and a stream does not pickle.
        self.table, self.interval, self.stream = table, interval, stream
        self.start = time.monotonic()
        self.last = 0.0

    def _print(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        print(format_progress(self.table.frame(), now - self.start), file=self.stream or sys.stdout, flush=True)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "stream": None}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._print()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._print(force=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._print(force=True)
