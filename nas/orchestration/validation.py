"""Does the search's ranking hold? Retrain a run's top K architectures and M controls drawn across the
rest of the ranking at a higher fidelity (more epochs, optionally another training resolution), with
several seeds, and write RUN_DIR/validation/validation.csv. With `references`, the run's reference
designs are retrained beside them (the top K and controls then come from the sampled trials), and
validation/summary.csv gives each architecture's difference to the best reference with a bootstrap
interval over seeds.

What it measures on, so that the selection does not repeat itself: the seeds start after the search's
(the search trained with seeds seed .. seed + seeds - 1), and the accuracy is taken on held-out images,
the training-split images that the search neither trained nor validated on (the next ones of the same
seeded order; `trials.TrainConfig.holdout_size`), or on the test split when the search trained on every
training image. The proxy each architecture is compared with is its search accuracy at one epoch for
all (the highest epoch every chosen trial reached), not a mix of ASHA's 1-epoch and completed trials.

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
from ..report import evidence as ev
from ..report.run_data import RunData, load_run
from ..rundir.schema import SEARCH_JSON, VALIDATION, VALIDATION_CSV, VALIDATION_EPOCHS_CSV, VALIDATION_SUMMARY_CSV
from .plan import TRAIN_IMAGES, resolve_space, train_config, train_resolution, validation_images
from .ray_env import trial_resources
from .settings import SearchSettings
from .tuner import trial_dirname

PLAN_JSON = "plan.json"
COLUMNS = ["arch_id", "rank", "role", "name", "proxy_accuracy", "proxy_epochs", "seed", "validated_accuracy",
           "epochs", "train_resolution", "status", "eval_split"]
SUMMARY_COLUMNS = ["arch_id", "role", "name", "seeds", "mean", "std", "difference", "lo", "hi", "verdict"]


class ValidationError(SettingError):
    """A validation setting (`top`, `controls`, `seeds`, `epochs`, `train_resolution`, `references`,
    `run_dir`) that cannot be used."""


@dataclass(frozen=True)
class ValidationSettings:
    top: int
    controls: int = 0
    seeds: int = 2
    epochs: int | None = None  # None: twice the search's max_epochs
    train_resolution: int | None = None  # None: the search's
    references: bool = False  # retrain the run's reference designs too


def search_settings(run_dir: Path) -> SearchSettings:
    path = run_dir / SEARCH_JSON
    try:
        return SearchSettings(**json.loads(path.read_text())["settings"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationError("run_dir", "{path}: no usable {file} ({why}): validation retrains with the "
                              "search's settings", path=run_dir, file=SEARCH_JSON, why=exc) from None


def select(run: RunData, top: int, controls: int, references: bool = False) -> pd.DataFrame:
    """The architectures to retrain: the top `top` of the search's ranking (RunData.ranked: completed
    first, by accuracy) and `controls` more spread evenly over the rest of the ranking (so the check
    covers the whole range, not only the top). With `references`, the top and controls come from the
    sampled trials and every reference design is added (role "reference"). One row per distinct
    architecture; `rank` is its place in the whole ranking. `proxy_accuracy` is the search's accuracy
    at `proxy_epochs`, one epoch for all (proxy_at_one_epoch)."""
    ranked = run.ranked().assign(_key=lambda t: [json.dumps(a.to_dict(), sort_keys=True) for a in t["architecture"]])
    if references:  # a sampled trial that proposed a reference design again is that design, not a pick
        is_ref = ranked["_key"].isin(set(ranked.loc[ranked["role"] == "reference", "_key"]))
        ranked = ranked.assign(role=np.where(is_ref, "reference", ranked["role"]))
    ranked = ranked.drop_duplicates("_key").reset_index(drop=True)
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    pool, refs = ranked, ranked.iloc[0:0]
    if references:
        refs = ranked[ranked["role"] == "reference"]
        if refs.empty:
            raise ValidationError("references", "{path}: the search trained no reference designs (it ran with "
                                  "--references none, as a grid sweep, or before searches trained them)",
                                  path=run.where)
        pool = ranked[ranked["role"] != "reference"].reset_index(drop=True)
    if top + controls > len(pool):
        raise ValidationError("top", "{top} top architectures and {n_controls} controls asked for, but the run "
                              "ranks only {n} distinct {kind}architectures", top=top, n_controls=controls, n=len(pool),
                              kind="sampled " if references else "")
    rest = pool.iloc[top:]
    picks = np.unique(np.round(np.linspace(0, len(rest) - 1, controls)).astype(int)) if controls else []
    chosen = pd.concat([pool.iloc[:top].assign(role="top"), rest.iloc[list(picks)].assign(role="control"),
                        refs.assign(role="reference")])
    proxy, epoch = proxy_at_one_epoch(run, chosen)
    return pd.DataFrame({
        "arch_id": chosen["trial_id"].astype(str), "rank": chosen["rank"], "role": chosen["role"],
        "name": chosen["name"], "proxy_accuracy": proxy, "proxy_epochs": epoch,
        "arch": chosen["_key"],
    }).reset_index(drop=True)


def proxy_at_one_epoch(run: RunData, chosen: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each chosen trial's search accuracy at the highest epoch all of them reached (epochs.csv), so that
    the rank agreement compares one proxy fidelity (ASHA stops most controls after its first rung). A run
    without per-epoch rows for them keeps each trial's own accuracy and epochs."""
    ids = chosen["trial_id"].astype(str)
    reached = ev.reached_epochs(chosen, run.epochs)
    if len(reached) < len(set(ids)):
        return chosen["accuracy"], chosen["epochs"]
    epoch = int(reached.min())
    at = run.epochs[(run.epochs["epoch"] == epoch) & run.epochs["val_accuracy"].notna()]
    acc = at.assign(trial_id=at["trial_id"].astype(str)).drop_duplicates("trial_id", keep="last")
    acc = acc.set_index("trial_id")["val_accuracy"]
    return pd.Series(ids.map(acc).to_numpy(), index=chosen.index), pd.Series(epoch, index=chosen.index)


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
    chosen = select(run, vs.top, vs.controls, vs.references)
    plan_path = run.run_dir / VALIDATION / PLAN_JSON
    if plan_path.is_file():
        old = json.loads(plan_path.read_text())
        if {k: old.get(k) for k in ("settings", "arch_ids")} != _wanted(vs, chosen):
            raise ValidationError("top", "{path} holds a validation with other settings ({old}); remove that "
                                  "folder to start another", path=plan_path.parent, old=old.get("settings"))
    settings, train = at_fidelity(settings, vs.epochs or 2 * settings.max_epochs, vs.train_resolution)
    return run, settings, chosen, {**train, **held_out(settings)[0]}


def held_out(settings: SearchSettings) -> tuple[dict, str]:
    """What the validation evaluates on, as `train` config changes, and in words: as many training-split
    images as the search validated on, taken after its validation images and its training subset in the
    same seeded order (split_seed = the search's seed), so that none of them trained or selected an
    architecture; the test split when the search trained on every training image (or the dataset's
    size is not known before loading)."""
    n, val, subset = TRAIN_IMAGES.get(settings.dataset), validation_images(settings), settings.train_subset
    if n and val and subset and n - val - subset >= 1:
        size = min(val, n - val - subset)
        return {"holdout_size": size}, (
            f"{size} held-out images of the training split (not the search's {val} validation images nor its "
            f"{subset} training images)")
    return {"final": True}, ("the test split (the search trained on every training image; the validation "
                             "trains on all of them)")


def validation_seeds(settings: SearchSettings, seeds: int) -> list[int]:
    """Fresh seeds: after those the search trained with (seed .. seed + seeds - 1)."""
    first = settings.seed + settings.seeds
    return list(range(first, first + seeds))


def at_fidelity(settings: SearchSettings, epochs: int, resolution: int | None) -> tuple[SearchSettings, dict]:
    """The search's settings and trial `train` config, retrained for `epochs` at `resolution` (None: the
    search's) with nothing stopped early."""
    settings = replace(settings, max_epochs=epochs, scheduler="none",
                       train_resolution=resolution or settings.train_resolution)
    return settings, train_config(settings, resolve_space(settings))


def build_validation_tuner(run_dir: Path, settings: SearchSettings, chosen: pd.DataFrame, train: dict,
                           seeds: int | list[int], cluster: dict[str, float], folder: str = VALIDATION):
    """A new Tuner over (architecture, seed), or the one RUN_DIR/<folder>/ holds (resumed). `seeds`: how
    many (fresh ones: validation_seeds), or the seeds themselves (benchmarks/proxy_ranking.py keeps a proxy's
    seeds apart from the validation's)."""
    from ray import tune

    from trials import train_trial

    from .callbacks import TrialLines  # imports ray
    from .worker_faults import survive_worker_deaths

    survive_worker_deaths()  # a retraining whose worker is killed ends as that row's error
    trainable = tune.with_resources(train_trial, trial_resources(settings, cluster, train_resolution(settings)))
    exp = run_dir / folder
    seed_list = validation_seeds(settings, seeds) if isinstance(seeds, int) else list(seeds)
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
                     "status": "ok" if ok else str(m.get("status") or "error"), "eval_split": m.get("eval_split")})
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
    (out / PLAN_JSON).write_text(json.dumps({**_wanted(vs, chosen), "evaluated_on": held_out(settings)[1],
                                             "seeds": validation_seeds(settings, vs.seeds)}, indent=1))
    tuner = build_validation_tuner(run_dir, settings, chosen, train, vs.seeds, cluster)
    results = tuner.fit()
    resolution = train_resolution(settings)
    write_csv(epoch_table(results, chosen, resolution), out / VALIDATION_EPOCHS_CSV)
    frame = table(results, chosen, resolution)
    write_csv(summary(frame), out / VALIDATION_SUMMARY_CSV)
    return write_csv(frame, out / VALIDATION_CSV)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """validation/summary.csv: one row per architecture, its mean and std over seeds, and its difference
    to the best reference design with a bootstrap interval over seeds (empty without references)."""
    per = ev.versus_best_reference(frame.rename(columns={"arch_id": "arch", "validated_accuracy": "accuracy"}))
    return per.rename(columns={"arch": "arch_id"}).reindex(columns=SUMMARY_COLUMNS)


__all__ = ["VALIDATION", "VALIDATION_CSV", "VALIDATION_EPOCHS_CSV", "VALIDATION_SUMMARY_CSV", "ValidationError",
           "ValidationSettings", "at_fidelity", "build_validation_tuner", "epoch_table", "held_out", "plan",
           "proxy_at_one_epoch", "retrain_for_validation", "select", "summary", "table", "validation_seeds",
           "write_csv"]
