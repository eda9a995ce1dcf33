"""The Python API beside the commands: `nas.search`, `nas.analyze`, `nas.export`.

    import nas
    result = nas.search(budget="4GFLOPs", dataset="synthetic", trials=2, max_epochs=1)
    result.trials            # pandas DataFrame, one row per trial (RUN_DIR/trials.csv)
    result.best              # the best Architecture (None when no trial finished)
    nas.analyze(result.run_dir)            # -> RUN_DIR/report.html
    nas.export(result.run_dir, top=3)      # -> the exported arch.json paths, best first

The same work as the commands, through the same libraries (nas.orchestration, nas.report) and the
same validation: a bad setting raises `nas.errors.SettingError` naming the SearchSettings field (the
commands turn the same errors into `--flag: ...`). Importing this module is cheap (no ray, torch,
pandas): the package root exports these functions.
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import SettingError

# SearchSettings fields a command leaves unset (0) so that the size preset fills them (the measured CPU
# preset without a GPU, the full search with one): the API does the same with fields not given.
_PRESET_FIELDS = ("trials", "max_epochs", "grace_epochs", "reduction_factor")


@dataclass
class SearchResult:
    """What a search left: its trials table, the best architecture, where its files are, its summary
    (best_val_accuracy, report, best_json, optuna_storage, outcomes, ...)."""

    trials: Any  # pandas.DataFrame
    best: Any  # search_spaces.Architecture | None
    run_dir: Path
    summary: dict[str, Any]


def make_settings(settings=None, /, *, budget: str | int | None = None, **keywords):
    """A SearchSettings from a settings object and/or keywords (its field names; `budget` as text such
    as "4GFLOPs" or a number of FLOPs), validated as `python -m nas.search` validates its flags."""
    from search_spaces import BudgetError, format_flops, parse_flops

    from .orchestration import SearchConfigError, SearchSettings, validate

    known = {f.name for f in fields(SearchSettings)}
    for key in keywords:
        if key not in known:
            raise SearchConfigError(key, "not a search setting; accepted: budget, {accepted}",
                                    accepted=", ".join(sorted(known - {"budget_flops"})))
    if budget is not None:
        try:
            keywords["budget_flops"] = parse_flops(budget) if isinstance(budget, str) else int(budget)
        except (BudgetError, ValueError) as exc:
            raise SearchConfigError("budget_flops", "{error}", error=str(exc)) from None
    if settings is None:
        if "budget_flops" not in keywords:
            raise SearchConfigError("budget_flops", "required (e.g. budget=\"4GFLOPs\")")
        keywords = {**{k: 0 for k in _PRESET_FIELDS}, **keywords}
        stamp = format_flops(keywords["budget_flops"]).replace(" ", "")
        keywords.setdefault("name", time.strftime(f"search-{stamp}-%Y%m%d-%H%M%S"))
        settings = SearchSettings(**keywords)
    else:
        settings = replace(settings, **keywords)
    if not settings.name or "/" in settings.name or settings.name in (".", ".."):
        raise SearchConfigError("name", "must be a plain directory name, got {name!r}", name=settings.name)
    try:
        validate(settings)
    except BudgetError as exc:  # an unreachable budget (the message gives the space's range)
        raise SearchConfigError("budget_flops", "{error}", error=str(exc)) from None
    return settings


def search(settings=None, /, *, resume: str | Path | None = None, address: str | None = None, full: bool = False,
           dashboard_host: str = "127.0.0.1", dashboard_port: int = 8265, **keywords) -> SearchResult:
    """Run a search (or `resume` one from its run directory) and return its SearchResult.

    `settings`: a SearchSettings; `keywords`: its fields (they override `settings`), with `budget`
    accepted as text. Without a GPU the sizes not given are scaled down as the command does (`full`
    keeps the full search). Uses the Ray instance this process is connected to, else starts one
    (`address`: join a cluster) and stops it afterwards.
    """
    from . import orchestration

    if resume is not None:
        run_dir = Path(resume).expanduser().resolve()
        settings = orchestration.load_settings(run_dir)
        settings = replace(settings, storage_path=str(run_dir.parent), name=run_dir.name)
    else:
        settings = make_settings(settings, **keywords)
    created = not settings.run_dir.exists()
    orchestration.check_run_dir(settings, resume is not None)
    own_ray = not ("ray" in sys.modules and sys.modules["ray"].is_initialized())
    try:
        if own_ray:
            orchestration.configure_ray_env(address)
            info = orchestration.start_ray(address, dashboard_host, dashboard_port)
            from .orchestration.tracking import dashboard_line

            print(dashboard_line(info["dashboard"] or "(not running)", info["token_path"]), flush=True)
            resources = info["resources"]
        else:
            resources = sys.modules["ray"].cluster_resources()
        if resume is None:
            settings, _ = orchestration.apply_preset(settings, resources.get("GPU", 0) > 0, full)
        summary = orchestration.run(settings, resume is not None, resources)
    except SettingError:
        if created and not (settings.run_dir / "trials.csv").exists():
            import shutil

            shutil.rmtree(settings.run_dir, ignore_errors=True)  # refused before any trial: leave nothing
        raise
    finally:
        if own_ray and "ray" in sys.modules:
            sys.modules["ray"].shutdown()
    return _result(settings.run_dir, summary)


def _result(run_dir: Path, summary: dict[str, Any]) -> SearchResult:
    import pandas as pd

    from search_spaces import load_architecture

    from .report.schema import BEST_JSON, TRIALS_CSV

    trials = pd.read_csv(run_dir / TRIALS_CSV, dtype={"trial_id": str})
    best = load_architecture(run_dir / BEST_JSON) if (run_dir / BEST_JSON).is_file() else None
    return SearchResult(trials=trials, best=best, run_dir=run_dir, summary=summary)


def analyze(run_dir: str | Path, top: int = 10) -> Path:
    """Write RUN_DIR/report.html (and trials.parquet, architectures/*.json); return the report's path."""
    from .report import write_report

    return write_report(run_dir, top)


def export(run_dir: str | Path, top: int = 5, out: str | Path | None = None, **options) -> list[Path]:
    """Export the `top` best architectures (with weights where a checkpoint was kept) to OUT (default
    RUN_DIR/export); return their arch.json paths, best first. `options` go to nas.report.export_top."""
    from .report import export_top

    return export_top(run_dir, top, out, **options)


class _CallableCommand(types.ModuleType):
    """A command module (nas.search, nas.analyze, nas.export) that is also the API function of its name.

    `import nas.search` rebinds the package attribute `nas.search` from the function to the module (the
    import system does that for every submodule); calling the module then still runs the function."""

    def __call__(self, *args, **kwargs):
        return globals()[self.__name__.rsplit(".", 1)[-1]](*args, **kwargs)


def callable_command(module_name: str) -> None:
    """Make the command module `module_name` callable as its API function (see _CallableCommand)."""
    module = sys.modules[module_name]
    if module_name.startswith("nas.") and type(module) is types.ModuleType:
        module.__class__ = _CallableCommand


__all__ = ["SearchResult", "analyze", "callable_command", "export", "make_settings", "search"]
