"""The Python API beside the commands: `nas.run_search`, `nas.write_report`, `nas.export_top`.

    import nas
    result = nas.run_search(budget="4GFLOPs", dataset="synthetic", trials=2, max_epochs=1)
    result.trials            # pandas DataFrame, one row per trial (RUN_DIR/trials.csv)
    result.best              # the best Architecture (None when no trial finished)
    nas.write_report(result.run_dir)            # -> RUN_DIR/report.html
    nas.export_top(result.run_dir, top=3)       # -> the exported arch.json paths, best first

The same work as the commands, through the same function (`nas.orchestration.run_search`) and the same
validation: a bad setting raises `nas.SettingError` naming the SearchSettings field, before Ray starts
(the commands turn the same errors into `--flag: ...`). Importing this module is cheap (no ray,
torch, pandas).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class SearchResult:
    """What a search left: its trials table, the best architecture, where its files are, its summary
    (best_val_accuracy, report, best_json, optuna_storage, outcomes, ...)."""

    trials: Any  # pandas.DataFrame
    best: Any  # search_spaces.Architecture | None
    run_dir: Path | str  # a local directory, or the run's URI on an object store
    summary: dict[str, Any]


def run_search(settings=None, /, *, resume: str | Path | None = None, budget: str | int | None = None,
               address: str | None = None, full: bool = False, dashboard_host: str = "127.0.0.1",
               dashboard_port: int | None = None, **keywords) -> SearchResult:
    """Run a search (or `resume` one from its run directory or URI) and return its SearchResult.

    `settings`: a nas.orchestration.SearchSettings; `keywords`: its fields (they override `settings`), with
    `budget` accepted as text ("4GFLOPs") or a number of FLOPs. Sizes not given are filled as the command
    fills them (scaled down without a GPU; `full` keeps the full search). Uses the Ray instance this
    process is connected to, else starts one (`address`: join a cluster) and stops it afterwards.
    """
    from .orchestration import RayOptions
    from .orchestration import run_search as drive

    ray = RayOptions(address, dashboard_host, dashboard_port)
    if resume is not None:
        return _result(drive(resume=resume, ray=ray))
    settings = make_settings(settings, budget=budget, **keywords)
    return _result(drive(settings, ray=ray, full=full))


def make_settings(settings=None, /, *, budget: str | int | None = None, **keywords):
    """A SearchSettings from a settings object and/or keywords (its field names; `budget` as text such
    as "4GFLOPs" or a number of FLOPs), checked as `python -m nas.search` checks its flags."""
    from search_spaces import BudgetError, format_flops, parse_flops

    from .orchestration import SearchConfigError, check_settings, from_keywords, with_absolute_paths

    if budget is not None:
        try:
            keywords["budget_flops"] = parse_flops(budget) if isinstance(budget, str) else budget
        except (BudgetError, ValueError) as exc:
            raise SearchConfigError("budget_flops", "{error}", error=str(exc)) from None
    if settings is None and ("budget_flops" in keywords or "latency_budget_ms" in keywords) \
            and "name" not in keywords:
        stamp = format_flops(keywords["budget_flops"]).replace(" ", "") if isinstance(
            keywords.get("budget_flops"), int) else "budget"
        keywords["name"] = time.strftime(f"search-{stamp}-%Y%m%d-%H%M%S")
    settings = with_absolute_paths(from_keywords(settings, **keywords))
    check_settings(settings)
    return settings


def _result(summary: dict[str, Any]) -> SearchResult:
    """Read back from the run's location (a local directory, or an object store's run URI)."""
    import io
    import json

    import pandas as pd

    from search_spaces import Architecture

    from .rundir import BEST_JSON, TRIALS_CSV, RunLocation

    loc = RunLocation.from_run_uri(summary["run_dir"])
    trials = pd.read_csv(io.BytesIO(loc.read_bytes(TRIALS_CSV)), dtype={"trial_id": str})
    best = Architecture.from_dict(json.loads(loc.read_bytes(BEST_JSON))) if loc.is_file(BEST_JSON) else None
    run_dir = loc.local_dir if loc.is_local else summary["run_dir"]
    return SearchResult(trials=trials, best=best, run_dir=run_dir, summary=summary)


def write_report(run_dir: str | Path, top: int = 10) -> Path:
    """Write RUN_DIR/report.html (and trials.parquet, architectures/*.json); return the report's path."""
    from .report import write_report as write

    return write(run_dir, top)


def export_top(run_dir: str | Path, top: int = 5, out: str | Path | None = None, **options) -> list[Path]:
    """Export the `top` best architectures (with weights where a checkpoint was kept) to OUT (default
    RUN_DIR/export); return their arch.json paths, best first. `options` go to nas.report.export_top."""
    from .report import export_top as export

    return export(run_dir, top, out, **options)


__all__ = ["SearchResult", "export_top", "make_settings", "run_search", "write_report"]
