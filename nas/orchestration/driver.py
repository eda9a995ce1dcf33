"""A search from start to end, in the order it happens: `run_search`.

    check the settings -> check the run location -> start or join Ray -> size the search (preset)
    -> build the Tuner -> write search.json -> fit -> finish (best.json, summary, report) -> stop Ray

`python -m nas.search` and `nas.run_search` both call it: the command parses flags into settings and
prints the summary, the API returns it. Every refusal is a `SettingError` naming the setting, raised
before Ray starts wherever the fact is known by then; a new run refused before its first trial leaves
nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from search_spaces import Architecture

from ..errors import SettingError
from ..rundir.location import RunLocation
from ..rundir.schema import BEST_JSON, TRIALS_CSV, rank_trials
from .data import absolute_data_env
from .plan import (
    FULL_FLAGS,
    apply_preset,
    budget_of,
    check_settings,
    folder_resolution_line,
    is_folder,
    resolve_space,
    scheduler_of,
    train_resolution,
    validation_images,
)
from .ray_env import configure_ray_env, start_ray
from .settings import (
    SearchConfigError,
    SearchSettings,
    check_run_dir,
    load_settings,
    with_absolute_paths,
    write_search_json,
)

Log = Callable[[str], Any]


@dataclass(frozen=True)
class RayOptions:
    """How a search reaches Ray when this process is not connected yet: join `address` (HOST:PORT or
    auto; inside `ray job submit`, the job's cluster), else start an embedded Ray on this machine whose
    dashboard listens on `dashboard_host:dashboard_port`."""

    address: str | None = None
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int | None = None  # None: 8265, or the next free port (start_ray)


def run_search(settings: SearchSettings | None = None, *, resume: str | os.PathLike | RunLocation | None = None,
               ray: RayOptions = RayOptions(), full: bool = False, log: Log = print, trainable=None) -> dict[str, Any]:
    """Run a new search (`settings`) or continue one (`resume`: its run directory or URI) to its end;
    return its summary (run_dir, trials, outcomes, best, best_val_accuracy, best_json, report, ...).

    Sizes left unset are filled by the preset (`full`: the full search even without a GPU). Uses the Ray
    this process is connected to, else starts or joins one (`ray`) and stops it afterwards. `trainable`
    replaces trials.train_trial (tests inject faults with it).
    """
    settings = with_absolute_paths(load_settings(resume) if resume is not None else settings)
    absolute_data_env()  # trials run in their own working directories
    if resume is None:
        check_settings(settings)
    location = check_run_dir(settings, resume is not None)
    if resume is None:
        from .tracking import check_new_study

        check_new_study(settings)
    with discarded_on_refusal(location, created=resume is None), ray_connection(ray, log) as resources:
        if resume is None:
            settings = sized(settings, resources, full, log)
        tuner = _build_tuner(settings, resume is not None, resources, trainable, log)
        if resume is None:
            write_search_json(settings, resolve_space(settings), budget_of(settings), train_resolution(settings),
                              validation_images(settings))
        log(search_line(settings))
        fit(tuner, settings, log)
        return finish(settings, log)


def fit(tuner, settings: SearchSettings, log: Log = print) -> None:
    """Tuner.fit, whose failed trials are rows of the trials table (nas.orchestration.worker_faults keeps a
    killed worker to its trial). Should Ray Tune itself still stop, the trials recorded so far are kept and
    summarised, and the search can be resumed, instead of a Ray traceback."""
    from ray.tune import TuneError

    try:
        tuner.fit()
    except (TuneError, RuntimeError) as exc:
        why = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        log(f"warning: Ray Tune stopped early ({why[:200]}); the trials so far are kept "
            f"(python -m nas.search --resume {settings.location.public_uri} continues)")


def _build_tuner(settings, resume, resources, trainable, log):
    from .tuner import build_tuner  # imports ray: only once Ray's environment is configured

    return build_tuner(settings, resume, resources, trainable, log)


@contextmanager
def ray_connection(options: RayOptions, log: Log = print) -> Iterator[dict[str, float]]:
    """The cluster's resources: of the Ray this process is connected to (left running), else of one
    started or joined here and shut down afterwards."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        yield sys.modules["ray"].cluster_resources()
        return
    address = options.address or job_address()
    configure_ray_env(address)
    try:
        info = start_ray(address, options.dashboard_host, options.dashboard_port)
    except SettingError:  # a dashboard port asked for that is taken
        raise
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SearchConfigError("address", "cannot start or reach Ray ({why})",
                                why=str(exc).splitlines()[0]) from None
    import ray

    from .tracking import dashboard_line

    try:
        if options.dashboard_host not in ("127.0.0.1", "localhost") and not address:
            print(f"warning: the Ray dashboard listens on {options.dashboard_host}, reachable beyond this "
                  "machine; token authentication stays on", file=sys.stderr)
        log(dashboard_line(info["dashboard"] or "(not running)", info["token_path"]))
        yield info["resources"]
    finally:
        ray.shutdown()


def job_address() -> str | None:
    """The cluster of the Ray job this process runs in (`ray job submit` sets RAY_ADDRESS to its GCS
    address): joined instead of starting a second Ray. A dashboard (http) address is for `ray job` only."""
    address = os.environ.get("RAY_ADDRESS", "")
    return address if address and "://" not in address else None


@contextmanager
def discarded_on_refusal(location: RunLocation, created: bool) -> Iterator[None]:
    """A new run refused before its first trial was recorded leaves nothing behind."""
    try:
        yield
    except SettingError:
        if created and not location.is_file(TRIALS_CSV):
            if location.is_local:
                shutil.rmtree(location.root, ignore_errors=True)
            else:
                try:
                    location.delete("")
                except OSError:
                    pass  # a refused search must still say why it was refused
        raise


def sized(settings: SearchSettings, resources: dict[str, float], full: bool, log: Log = print) -> SearchSettings:
    """The preset applied to the sizes left unset, saying what it changed."""
    asked = settings.train_resolution
    settings, scaled = apply_preset(settings, resources.get("GPU", 0) > 0, full)
    if is_folder(settings):
        log(folder_resolution_line(settings, asked, cpu_preset=bool(scaled)))
    elif settings.train_resolution != asked:
        r = settings.train_resolution
        log(f"GPU: trials train at {r}x{r}, the smallest size keeping every stage's maps >= 2x2 "
            "(docs/results.md; --train-resolution to choose)")
    if scaled:
        log("No GPU: scaled down to " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in scaled.items())
            + f". Full search: {FULL_FLAGS}.")
    return settings


def search_line(settings: SearchSettings) -> str:
    space, budget = resolve_space(settings), budget_of(settings)
    return (f"Search: {settings.trials if settings.sampler != 'grid' else 'grid'} trials, budget {budget} "
            f"at {space.resolution}x{space.resolution}, space {space.name}, sampler {settings.sampler}, "
            f"scheduler {scheduler_of(settings)} (max {settings.max_epochs} epochs), run dir "
            f"{settings.location.public_uri}")


def finish(settings: SearchSettings, log: Log = print) -> dict[str, Any]:
    """best.json, the summary table, the report: ranked from trials.csv as it is on storage now.

    Not from the callbacks' own table: after a resume, the callbacks that ran are the ones Tuner.restore
    unpickled from tuner.pkl, and that table never saw a trial.
    """
    from .callbacks import ResultsTable, format_progress
    from .checkpoints import format_size, run_size
    from .tracking import finish_tracking

    loc = settings.location
    # A fresh table only reads trials.csv and epochs.csv as stored (the resolution is used for new rows
    # only); the callbacks flush their throttled object-store writes in on_experiment_end.
    frame = ResultsTable(loc, settings.budget_resolution or 224, settings.max_epochs).frame()
    done = frame.dropna(subset=["best_val_accuracy"])
    done = done[done["outcome"].isin(["completed", "stopped"])]
    summary: dict[str, Any] = {"run_dir": loc.public_uri, "trials_csv": f"{loc.display}/{TRIALS_CSV}",
                               "trials": len(frame),
                               "outcomes": frame["outcome"].value_counts().to_dict()}
    if len(done):
        best = rank_trials(done).iloc[0]  # the ranking export and the checkpoint keeper use
        arch = Architecture.from_dict(json.loads(best["arch"]))
        loc.write_text(BEST_JSON, arch.to_json() + "\n")  # the format of search_spaces.save_architecture
        summary.update(best=str(best["name"]), best_val_accuracy=float(best["best_val_accuracy"]),
                       best_trial=str(best["trial_id"]), best_json=f"{loc.display}/{BEST_JSON}")
    log("\n" + format_progress(frame, 0, limit=10).split("\n", 1)[1])
    try:
        from ..report import write_report

        summary["report"] = str(write_report(loc))
    except Exception as exc:  # the report must never lose a finished search
        log(f"warning: report not written: {exc}")
    try:
        from ..report import load_run
        from ..report.figures.references import verdict_line

        line = verdict_line(load_run(loc))
        if line:
            summary["versus_references"] = line
            log(line)
    except Exception as exc:  # nor the comparison with the reference designs
        log(f"warning: no comparison with the reference designs: {exc}")
    summary.update(finish_tracking(settings, summary, log, trial_ids=set(frame["trial_id"].astype(str))))
    try:
        summary["run_size_bytes"] = run_size(loc)
        log(f"run size: {format_size(summary['run_size_bytes'])} (checkpoints kept: running and paused trials, "
            f"and the best {settings.keep_checkpoints} finished ones; --keep-checkpoints)")
    except OSError as exc:  # a listing refused by an object store must not lose a finished search
        log(f"warning: run size unknown: {exc}")
    return summary


__all__ = ["RayOptions", "discarded_on_refusal", "finish", "fit", "job_address", "ray_connection", "run_search",
           "search_line", "sized"]
