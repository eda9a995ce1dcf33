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
    run_dir: Path | str  # a local directory, or the run's URI on an object store
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
    from .orchestration.data import absolute_data_env
    from .orchestration.settings import resolve_data_paths

    if resume is not None:  # a directory or a URI, as for the command
        settings = resolve_data_paths(orchestration.load_settings(resume))
    else:
        settings = resolve_data_paths(make_settings(settings, **keywords))
    absolute_data_env()  # trials run in their own working directories
    created = resume is None  # check_run_dir refuses a new run whose directory holds anything
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
        from .search import _discard  # the command's clean-up of a refused run (local or object store)

        _discard(settings, created)
        raise
    finally:
        if own_ray and "ray" in sys.modules:
            sys.modules["ray"].shutdown()
    return _result(settings, summary)


def _result(settings, summary: dict[str, Any]) -> SearchResult:
    """Read back from the run's location (a local directory, or an object store's run URI)."""
    import io
    import json

    import pandas as pd

    from search_spaces import Architecture

    from .report.schema import BEST_JSON, TRIALS_CSV

    loc = settings.location
    trials = pd.read_csv(io.BytesIO(loc.read_bytes(TRIALS_CSV)), dtype={"trial_id": str})
    best = Architecture.from_dict(json.loads(loc.read_bytes(BEST_JSON))) if loc.is_file(BEST_JSON) else None
    run_dir = loc.local_dir if loc.is_local else summary.get("run_dir", loc.display)
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
