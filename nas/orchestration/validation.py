"""Does the search's ranking hold? Retrain a run's top K architectures and M controls drawn across the
rest of the ranking at a higher fidelity (more epochs, optionally another training resolution), with
several seeds, and write RUN_DIR/validation/validation.csv.

The retraining is a Ray Tune experiment on the search's own machinery: the same trainable
(trials.train_trial), the same per-trial resources (ray_env.trial_resources), a grid over
(architecture, seed) with a FIFO scheduler (nothing is stopped early: every row is measured at the same
fidelity). The experiment lives in RUN_DIR/validation/, so a second invocation continues it
(Tuner.restore), like `nas.search --resume`. ray and trials (torch) are imported inside the functions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SettingError
from ..report.run_data import RunData, load_run
from ..rundir.schema import SEARCH_JSON, VALIDATION, VALIDATION_CSV, VALIDATION_EPOCHS_CSV
from .plan import resolve_space, train_config, train_resolution
from .ray_env import trial_resources
from .settings import SearchSettings
from .tuner import trial_dirname

PLAN_JSON = "plan.json"
COLUMNS = ["arch_id", "rank", "role", "name", "proxy_accuracy", "proxy_epochs", "seed", "validated_accuracy",
           "epochs", "train_resolution", "status"]


class ValidationError(SettingError):
    """A validation setting (`top`, `controls`, `seeds`, `epochs`, `train_resolution`, `run_dir`) that
    cannot be used."""


@dataclass(frozen=True)
class ValidationSettings:
    top: int
    controls: int = 0
    seeds: int = 2
    epochs: int | None = None  # None: twice the search's max_epochs
    train_resolution: int | None = None  # None: the search's


def search_settings(run_dir: Path) -> SearchSettings:
    path = run_dir / SEARCH_JSON
    try:
        return SearchSettings(**json.loads(path.read_text())["settings"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationError("run_dir", "{path}: no usable {file} ({why}): validation retrains with the "
                              "search's settings", path=run_dir, file=SEARCH_JSON, why=exc) from None


def select(run: RunData, top: int, controls: int) -> pd.DataFrame:
    """The architectures to retrain: the top `top` of the search's ranking (RunData.ranked: completed
    first, by accuracy) and `controls` more spread evenly over the rest of the ranking (so the check
    covers the whole range, not only the top). One row per distinct architecture."""
    ranked = run.ranked().assign(_key=lambda t: [json.dumps(a.to_dict(), sort_keys=True) for a in t["architecture"]])
    ranked = ranked.drop_duplicates("_key").reset_index(drop=True)
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    if top + controls > len(ranked):
        raise ValidationError("top", "{top} top architectures and {n_controls} controls asked for, but the run "
                              "ranks only {n} distinct architectures", top=top, n_controls=controls, n=len(ranked))
    rest = ranked.iloc[top:]
    picks = np.unique(np.round(np.linspace(0, len(rest) - 1, controls)).astype(int)) if controls else []
    chosen = pd.concat([ranked.iloc[:top].assign(role="top"), rest.iloc[list(picks)].assign(role="control")])
    return pd.DataFrame({
        "arch_id": chosen["trial_id"].astype(str), "rank": chosen["rank"], "role": chosen["role"],
        "name": chosen["name"], "proxy_accuracy": chosen["accuracy"], "proxy_epochs": chosen["epochs"],
        "arch": chosen["_key"],
    }).reset_index(drop=True)


def _wanted(vs: ValidationSettings, chosen: pd.DataFrame) -> dict:
    return {"settings": asdict(vs), "arch_ids": list(chosen["arch_id"])}


def plan(run_dir: str | Path, vs: ValidationSettings) -> tuple[RunData, SearchSettings, pd.DataFrame, dict]:
    """Check the settings, pick the architectures, and the trials' training settings."""
    for name in ("top", "seeds"):
        if getattr(vs, name) < 1:
            raise ValidationError(name, "expected a positive integer, got {v}", v=getattr(vs, name))
    if vs.controls < 0:
        raise ValidationError("controls", "expected 0 or more, got {v}", v=vs.controls)
    for name in ("epochs", "train_resolution"):
        if getattr(vs, name) is not None and getattr(vs, name) < 1:
            raise ValidationError(name, "expected a positive integer, got {v}", v=getattr(vs, name))
    run = load_run(run_dir)
    settings = search_settings(run.run_dir)
    chosen = select(run, vs.top, vs.controls)
    plan_path = run.run_dir / VALIDATION / PLAN_JSON
    if plan_path.is_file():
        old = json.loads(plan_path.read_text())
        if old != _wanted(vs, chosen):
            raise ValidationError("top", "{path} holds a validation with other settings ({old}); remove that "
                                  "folder to start another", path=plan_path.parent, old=old.get("settings"))
    settings, train = at_fidelity(settings, vs.epochs or 2 * settings.max_epochs, vs.train_resolution)
    return run, settings, chosen, train


def at_fidelity(settings: SearchSettings, epochs: int, resolution: int | None) -> tuple[SearchSettings, dict]:
    """The search's settings and trial `train` config, retrained for `epochs` at `resolution` (None: the
    search's) with nothing stopped early."""
    settings = replace(settings, max_epochs=epochs, scheduler="none",
                       train_resolution=resolution or settings.train_resolution)
    return settings, train_config(settings, resolve_space(settings))


def build_validation_tuner(run_dir: Path, settings: SearchSettings, chosen: pd.DataFrame, train: dict,
                           seeds: int | list[int], cluster: dict[str, float], folder: str = VALIDATION):
    """A new Tuner over (architecture, seed), or the one RUN_DIR/<folder>/ holds (resumed). `seeds`: how
    many (from the search's seed on), or the seeds themselves (benchmarks/proxy_ranking.py keeps a proxy's
    seeds apart from the validation's)."""
    from ray import tune

    from trials import train_trial

    from .callbacks import TrialLines  # imports ray
    from .worker_faults import survive_worker_deaths

    survive_worker_deaths()  # a retraining whose worker is killed ends as that row's error
    trainable = tune.with_resources(train_trial, trial_resources(settings, cluster, train_resolution(settings)))
    exp = run_dir / folder
    seed_list = list(range(settings.seed, settings.seed + seeds)) if isinstance(seeds, int) else list(seeds)
    if tune.Tuner.can_restore(str(exp)):
        return tune.Tuner.restore(str(exp), trainable=trainable, resume_unfinished=True, resume_errored=True)
    return tune.Tuner(
        trainable,
        param_space={"arch": tune.grid_search([json.loads(a) for a in chosen["arch"]]),
                     "train": {**train, "seed": tune.grid_search(seed_list)},
                     "checkpoint": False},
        tune_config=tune.TuneConfig(scheduler=tune.schedulers.FIFOScheduler(), num_samples=1,
                                    max_concurrent_trials=settings.max_concurrent, reuse_actors=True,
                                    trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(name=folder, storage_path=str(run_dir), verbose=0,
                                  callbacks=[TrialLines(len(chosen) * len(seed_list))],
                                  failure_config=tune.FailureConfig(max_failures=settings.max_failures)),
    )


def table(results, chosen: pd.DataFrame, resolution: int) -> pd.DataFrame:
    """validation.csv from Tune's results: one row per (architecture, seed), the accuracy measured at
    the last epoch (every trial trains the same number of epochs: one fidelity)."""
    by_arch = chosen.set_index("arch")
    rows = []
    for r in results:
        if not r.config:  # a trial that never started (the fit was interrupted): Tune gives it no config
            continue
        key = json.dumps(r.config["arch"], sort_keys=True)
        if key not in by_arch.index:
            continue
        c = by_arch.loc[key]
        m = r.metrics or {}
        ok = r.error is None and m.get("status", "ok") == "ok" and m.get("val_accuracy") is not None
        rows.append({"arch_id": c["arch_id"], "rank": int(c["rank"]), "role": c["role"], "name": c["name"],
                     "proxy_accuracy": c["proxy_accuracy"], "proxy_epochs": c["proxy_epochs"],
                     "seed": int(r.config["train"]["seed"]),
                     "validated_accuracy": float(m["val_accuracy"]) if ok else np.nan,
                     "epochs": int(m.get("training_iteration", 0) or 0), "train_resolution": resolution,
                     "status": "ok" if ok else str(m.get("status") or "error")})
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["rank", "seed"]).reset_index(drop=True)


def epoch_table(results, chosen: pd.DataFrame, resolution: int) -> pd.DataFrame:
    """validation_epochs.csv: every epoch of every (architecture, seed), from Tune's per-result rows
    (Result.metrics_dataframe), so a shorter proxy can be read off a longer training."""
    ids = dict(zip(chosen["arch"], chosen["arch_id"], strict=True))
    frames = []
    for r in results:
        if not r.config:  # never started (interrupted fit)
            continue
        key = json.dumps(r.config["arch"], sort_keys=True)
        df = r.metrics_dataframe
        if key not in ids or df is None or "val_accuracy" not in df:
            continue
        frames.append(pd.DataFrame({
            "arch_id": ids[key], "seed": int(r.config["train"]["seed"]), "epoch": df["training_iteration"],
            "val_accuracy": df["val_accuracy"],
            "epoch_seconds": df["epoch_seconds"] if "epoch_seconds" in df else np.nan,
            "train_resolution": resolution}))
    columns = ["arch_id", "seed", "epoch", "val_accuracy", "epoch_seconds", "train_resolution"]
    if not frames:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(frames)[columns]
    # a trial restarted without a checkpoint reports its epochs again: the last report of an epoch counts
    frame = frame.drop_duplicates(["arch_id", "seed", "epoch"], keep="last")
    return frame.sort_values(["arch_id", "seed", "epoch"]).reset_index(drop=True)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write through a temporary file, so a reader never sees half a table."""
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def retrain_for_validation(run_dir: str | Path, vs: ValidationSettings, cluster: dict[str, float]) -> Path:
    """Run (or continue) the validation on the Ray instance this process is connected to; write
    validation.csv and the run's report (which gains "Does the search's ranking hold?"); return the
    CSV's path."""

    run, settings, chosen, train = plan(run_dir, vs)
    run_dir = run.run_dir
    out = run_dir / VALIDATION
    out.mkdir(exist_ok=True)
    (out / PLAN_JSON).write_text(json.dumps(_wanted(vs, chosen), indent=1))
    tuner = build_validation_tuner(run_dir, settings, chosen, train, vs.seeds, cluster)
    results = tuner.fit()
    resolution = train_resolution(settings)
    write_csv(epoch_table(results, chosen, resolution), out / VALIDATION_EPOCHS_CSV)
    return write_csv(table(results, chosen, resolution), out / VALIDATION_CSV)


__all__ = ["VALIDATION", "VALIDATION_CSV", "VALIDATION_EPOCHS_CSV", "ValidationError", "ValidationSettings",
           "at_fidelity", "build_validation_tuner", "epoch_table", "plan", "retrain_for_validation", "select", "table",
           "write_csv"]
