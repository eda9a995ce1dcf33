"""Where a search can be watched with the tools people already have: Optuna storage (optuna-dashboard,
`optuna.load_study`), TensorBoard (Ray Tune's event files, a folder per trial named by its
architecture), MLflow (Ray's MLflow callback), and the Ray dashboard (a per-trial process title, the
token line).

Ray and Optuna do the work; this module only adds what neither does for us:
- OptunaSearch tells Optuna a trial's value and state but not what the trial was (its Tune id, FLOPs,
  params, epochs, outcome): `TrackedOptunaSearch` sets those as user attributes *before* the tell
  (Tune calls the searcher before any callback, and Optuna refuses attributes on a finished trial).
- Ray's MLflow callback logs the config flattened; `TrialMLflowLogger` adds the architecture's own
  columns as params and its JSON as an artifact, nests trials under one parent run per search, and
  reuses a trial's run when a search is resumed instead of opening a second one.
Heavy imports (optuna, ray, mlflow) stay inside functions: `import nas.orchestration.tracking` is cheap.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

# label_process lives in trials (the trainable calls it; trials must not import nas): re-exported here.
from trials import label_process, process_title

from ..errors import SettingError
from ..rundir.schema import COST_COLUMNS

JOURNAL_FILE = "optuna.journal"
# Tune result keys recorded on each Optuna trial (the first epoch's static figures and the last epoch's).
TRIAL_ATTRS = (*COST_COLUMNS, "epoch", "status", "reason", "images_per_second", "seconds")
TENSORBOARD_TAG = "ray/tune/{metric}"  # what Ray's TBXLoggerCallback names a reported metric
TENSORBOARD_DIR = "tensorboard"  # RUN_DIR/tensorboard/<number>-<architecture>-<trial id>/: one TensorBoard run each
TRIAL_RUN_TAG = "trial_id"
PARENT_RUN_TAG = "nas.run_dir"


class TrackingError(SettingError):
    """A tracking setting (optuna_storage, log) that cannot work."""


# --- Optuna storage ----------------------------------------------------------------------------------

def optuna_storage(target: str | os.PathLike):
    """The Optuna storage of a search: an RDB URL (`sqlite:///…`, `postgresql://…`) as given, otherwise
    a JournalStorage file (RUN_DIR/optuna.journal when `target` is a directory).

    The journal file needs no server, several processes can append to it (optuna-dashboard reads it
    while the search writes), and JournalStorage pickles by path (Ray pickles the searcher into its
    experiment state; the restored copy replays the file).
    """
    import optuna

    text = os.fspath(target)
    if "://" in text:
        try:
            return optuna.storages.RDBStorage(text)
        except Exception as exc:  # sqlalchemy's errors for a bad URL or an unreachable database
            raise TrackingError("optuna_storage", "cannot open {text!r} ({exc})", text=text, exc=exc) from None
    path = Path(text).expanduser()
    if path.is_dir() or not path.suffix:
        path = path / JOURNAL_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path.resolve()))
    except OSError as exc:
        raise TrackingError("optuna_storage", "cannot write {path} ({why})",
                            path=path, why=exc.strerror or exc) from None
    return optuna.storages.JournalStorage(backend)


def journal_path(settings) -> str | None:
    """The journal file holding a search's study: `--optuna-storage PATH`, else RUN_DIR/optuna.journal; None
    for a database URL, and for a run on an object store without --optuna-storage (its study is in memory,
    saved with Tune's searcher state)."""
    target = settings.optuna_storage or settings.location.local_dir
    return None if target is None or "://" in os.fspath(target) else storage_url(target)


def repoint_journal(storage, path: str) -> bool:
    """Re-open a JournalStorage that Ray unpickled on the journal file at `path` (the run moved); in place,
    since the study and each of its trials hold this same storage object. True if it was elsewhere."""
    import optuna

    backend = getattr(storage, "_backend", None)
    if not isinstance(storage, optuna.storages.JournalStorage) or not isinstance(
            backend, optuna.storages.journal.JournalFileBackend) or backend._file_path == path:
        return False
    state = storage.__getstate__()  # what JournalStorage pickles: its backend; the replay restarts from it
    state["_backend"] = optuna.storages.journal.JournalFileBackend(path)
    storage.__setstate__(state)
    return True


def study_name(run_name: str) -> str:
    """One study per search run, named after it (several runs may share one RDB)."""
    return f"nas-{run_name}"


def storage_url(target: str | os.PathLike) -> str:
    """What to pass to `optuna-dashboard` for `target` (a journal file's path, or the RDB URL).
    `optuna.load_study(storage=...)` takes URLs only: give it optuna_storage(target) instead."""
    text = os.fspath(target)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    return str((path / JOURNAL_FILE if path.is_dir() or not path.suffix else path).resolve())


def load_study(target: str | os.PathLike, run_name: str):
    """The search's study, finished or running (read-only use: it does not take part in the search)."""
    import optuna

    return optuna.load_study(study_name=study_name(run_name), storage=optuna_storage(target))


def trial_outcome(result: dict | None, max_epochs: int, error: bool = False) -> str:
    """The same outcome words as trials.csv: completed, stopped (cut by ASHA or the time budget),
    diverged, oom, error."""
    result = result or {}
    if error:
        return "error"
    status = result.get("status", "ok")
    if status in ("diverged", "oom"):
        return status
    return "completed" if int(result.get("epoch", 0) or 0) >= max_epochs else "stopped"


@functools.cache
def _searcher_class():
    from ray.tune.search.optuna import OptunaSearch

    from .architecture_study import ARCH_ATTR, NAME_ATTR, mirror_trials
    from .architecture_study import name_metrics as _name_metrics

    class TrackedOptunaSearch(OptunaSearch):
        """OptunaSearch whose trials carry their Tune id, architecture, FLOPs, params, epochs and outcome as
        user attributes (visible in optuna-dashboard and `study.trials_dataframe()`), whose metric is
        named, whose ASHA-stopped trials are PRUNED (`prune_stopped`), and whose finished trials are
        copied as architectures into `nas-<run>/architectures` (architecture_study; with `space`)."""

        def __init__(self, *args, max_epochs: int, references=(), arch_space=None, prune_stopped: bool = False,
                     **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._max_epochs = max_epochs
            self._arch_space = arch_space
            self._prune_stopped = prune_stopped
            self._last_results: dict[str, dict] = {}  # a failed trial's complete call has no result
            # The reference designs: enqueued (as Tune's points_to_evaluate would be) so they are asked
            # first and count within num_samples, but with user attributes, which the define-by-run space
            # reads to mark the trial's role (points_to_evaluate enqueues bare params).
            for ref in references:
                self._ot_study.enqueue_trial(ref.params, user_attrs={"role": "reference", "reference": ref.name})

        @property
        def _metric_names(self) -> list[str]:
            return list(self.metric) if isinstance(self.metric, list) else [self.metric]

        def _setup_study(self, mode) -> None:
            super()._setup_study(mode)
            # optuna-dashboard labels the objective with it ("Objective 0" without)
            if self._storage is not None and self._ot_study.metric_names is None:
                _name_metrics(self._ot_study, self._metric_names)

        def suggest(self, trial_id: str):
            config = super().suggest(trial_id)
            # _ot_trials is OptunaSearch's map Tune id -> Optuna trial (stable since Ray 2.0).
            ot_trial = self._ot_trials.get(trial_id)
            if ot_trial is not None and config is not None:
                ot_trial.set_user_attr("ray_trial_id", trial_id)
                if isinstance(config.get("arch"), dict):  # what the encoded parameters built
                    from search_spaces import Architecture

                    ot_trial.set_user_attr(NAME_ATTR, Architecture.from_dict(config["arch"]).describe())
                    ot_trial.set_user_attr(ARCH_ATTR, json.dumps(config["arch"], separators=(",", ":")))
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            self._last_results[trial_id] = {k: result[k] for k in TRIAL_ATTRS if k in result}
            self._last_results[trial_id]["_step"] = result.get("training_iteration")
            super().on_trial_result(trial_id, result)

        def _report_final(self, ot_trial, trial_id: str, result: dict | None, last: dict) -> None:
            # Tune does not pass the result that ends a trial (ASHA's cut or max_t) to on_trial_result,
            # so Optuna's curve would lack the last epoch (and a trial cut at epoch 1 would have none).
            if not result or isinstance(self.metric, list) or result.get(self.metric) is None:
                return
            step = result.get("training_iteration")
            if step is not None and step != last.get("_step"):
                ot_trial.report(result[self.metric], step)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            ot_trial = self._ot_trials.get(trial_id)
            if ot_trial is None or trial_id in self._completed_trials:
                super().on_trial_complete(trial_id, result=result, error=error)
                return
            previous = self._last_results.pop(trial_id, {})
            last = {**previous, **{k: result[k] for k in TRIAL_ATTRS if result and k in result}}
            attrs = {("epochs" if k == "epoch" else k): v for k, v in last.items() if v is not None and k != "_step"}
            attrs["outcome"] = trial_outcome(last, self._max_epochs, error)
            reported = False
            try:
                self._report_final(ot_trial, trial_id, result, previous)
                reported = not isinstance(self.metric, list)
                for key, value in attrs.items():
                    ot_trial.set_user_attr(key, value)
            except Exception as exc:  # e.g. the trial was finished by an earlier driver
                logging.getLogger(__name__).warning("optuna attrs of %s not saved: %s", trial_id, exc)
            if getattr(self, "_prune_stopped", False) and reported and attrs["outcome"] == "stopped":
                # Its value is its last epoch's (Optuna takes the last intermediate value), as before; TPE
                # ranks PRUNED trials after the COMPLETE ones, by step then value (optuna 5 _split_trials).
                try:
                    self._ot_study.tell(ot_trial, state=optuna_state("PRUNED"))
                except Exception as exc:  # as OptunaSearch does
                    logging.getLogger(__name__).warning(exc)
                self._completed_trials.add(trial_id)
            else:
                super().on_trial_complete(trial_id, result=result, error=error)
            self._mirror(ot_trial.number)

        def _mirror(self, number: int | None = None) -> None:
            space = getattr(self, "_arch_space", None)  # None in a searcher pickled before it existed
            if space is None or self._storage is None or self._ot_study is None:
                return
            try:
                mirror_trials(self._ot_study, space, self._metric_names, only=number)
            except Exception as exc:  # the decoded study is a view: it must never stop the search
                logging.getLogger(__name__).warning("architecture study not updated: %s", exc)

        def relocate_journal(self, path: str) -> None:
            """The run moved: its study's journal is at `path` now (nas.orchestration.relocation)."""
            self._journal_now = path
            repoint_journal(self._storage, path)

        def restore(self, checkpoint_path: str) -> None:
            journal = getattr(self, "_journal_now", None)  # set after Tuner.restore; the saved state predates it
            super().restore(checkpoint_path)
            if journal is not None:
                self.relocate_journal(journal)
            _fail_orphans(self._ot_study, {t.number for t in self._ot_trials.values()})
            self._mirror()  # trials a killed driver finished but had not copied yet

    return TrackedOptunaSearch


def optuna_state(name: str):
    import optuna

    return optuna.trial.TrialState[name]


def tracked_optuna_search(space, *, metric, mode, sampler, storage, run_name: str, max_epochs: int,
                          references=(), arch_space=None, prune_stopped: bool = False):
    """An OptunaSearch on `storage` (see optuna_storage) under study_name(run_name), recording each
    trial's attributes; drop-in for `OptunaSearch(space=…, metric=…, mode=…, sampler=…)`. With
    `arch_space` (the SearchSpace), finished trials are also copied as architectures into
    architecture_study.architecture_study_name(study_name(run_name)); `prune_stopped` makes trials ASHA
    stopped PRUNED in the sampler's own study (for samplers that learn from PRUNED trials). `references`
    (search_spaces.Reference) are enqueued first, marked `role` = reference in their user attributes."""
    return __getattr__("TrackedOptunaSearch")(
        space=space, metric=metric, mode=mode, sampler=sampler, storage=storage, study_name=study_name(run_name),
        max_epochs=max_epochs, references=references, arch_space=arch_space, prune_stopped=prune_stopped)


def _fail_orphans(study, known_numbers: set[int]) -> None:
    """After a resume: trials the killed driver asked for but never recorded in its saved state stay
    RUNNING in the storage forever (Tune will not run them); mark them FAIL so the dashboard and the
    sampler see the truth."""
    import optuna

    if study is None:
        return
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.number not in known_numbers:
            study._storage.set_trial_user_attr(trial._trial_id, "outcome", "lost")
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


# --- optuna-dashboard ----------------------------------------------------------------------------------

def dashboard_command(target: str | os.PathLike, host: str = "127.0.0.1", port: int = 8080) -> list[str]:
    """The optuna-dashboard command line for a run's storage (extra `dashboard`)."""
    return ["optuna-dashboard", storage_url(target), "--host", host, "--port", str(port)]


# --- TensorBoard -----------------------------------------------------------------------------------------

def tensorboard_run_label(config: dict, fallback: str) -> str:
    """A trial's architecture as a folder name: '8x14d-[3,4,6,3]' (describe() with '-' for spaces)."""
    from search_spaces import Architecture

    if "arch" not in config:
        return fallback
    return Architecture.from_dict(config["arch"]).describe().replace(" ", "-").replace("/", "-")


def tensorboard_run_folder(run_dir: str | os.PathLike, trial_id: str, label: str) -> Path:
    """The folder of a trial's event files, which TensorBoard shows as the run's name: RUN_DIR/tensorboard/
    `0003-8x14d-[3,4,6,3]-<trial id>`, numbered in the order trials start (sortable: TensorBoard lists runs
    by name) and ending with the Tune trial id (unique, and the key of trials.csv). A trial that already
    has a folder (a resumed search, a retried trial) keeps it; a new one takes the next number."""
    root = Path(run_dir) / TENSORBOARD_DIR
    root.mkdir(parents=True, exist_ok=True)
    numbers = [0]
    for child in root.iterdir():
        if child.is_dir() and child.name.endswith(f"-{trial_id}"):
            return child
        head = child.name.split("-", 1)[0]
        if head.isdigit():
            numbers.append(int(head))
    return root / f"{max(numbers) + 1:04d}-{label}-{trial_id}"


def tensorboard_run_dir(run_dir: str | os.PathLike, trial_id: str) -> Path | None:
    """Where a run's trial has its event files (tensorboard_run_folder), or None."""
    found = sorted((Path(run_dir) / TENSORBOARD_DIR).glob(f"*-{trial_id}"))
    return found[0] if found else None


def tensorboard_scalars(trial_dir: str | os.PathLike, metric: str = "val_accuracy") -> list[tuple[int, float]]:
    """(step, value) of `metric` in a trial's event files (its tensorboard_run_dir), read with TensorBoard's
    own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trial_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tag = TENSORBOARD_TAG.format(metric=metric)
    if tag not in acc.Tags().get("scalars", []):
        return []
    return [(e.step, e.value) for e in acc.Scalars(tag)]


# --- MLflow -----------------------------------------------------------------------------------------------

def parse_log(values: list[str] | None) -> dict[str, str | None]:
    """`--log mlflow[=TRACKING_URI]` (repeatable) -> {"mlflow": uri or None}."""
    targets: dict[str, str | None] = {}
    for value in values or []:
        name, _, uri = value.partition("=")
        if name != "mlflow":
            raise TrackingError("log", "unknown target {name!r}; accepted: mlflow[=TRACKING_URI]", name=name)
        if "=" in value and not uri:
            raise TrackingError("log", "empty tracking URI (mlflow=)")
        targets[name] = uri or None
    if "mlflow" in targets:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise TrackingError("log", "MLflow is not installed; pip install 'resnext-nas[mlflow]'") from None
    return targets


def mlflow_tracking_uri(uri: str | None, run_dir: str | os.PathLike) -> str:
    """The URI given, else $MLFLOW_TRACKING_URI, else a SQLite store inside the run directory (MLflow 3
    refuses new file stores by default; SQLite needs no server)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def _experiment_id(client, experiment_name: str, run_dir: str | os.PathLike) -> str:
    exp = client.get_experiment_by_name(experiment_name)
    if exp is not None:
        return exp.experiment_id
    # Artifacts beside the run (MLflow's default is ./mlruns under whatever directory the user is in).
    return client.create_experiment(experiment_name,
                                    artifact_location=(Path(run_dir).resolve() / "mlartifacts").as_uri())


def start_parent_run(tracking_uri: str, experiment_name: str, run_dir: str | os.PathLike,
                     params: dict[str, Any] | None = None) -> str:
    """The search's parent run (found again by its run directory on --resume); returns its id."""
    client = _client(tracking_uri)
    exp_id = _experiment_id(client, experiment_name, run_dir)
    key = str(Path(run_dir).resolve())
    found = client.search_runs([exp_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(exp_id, run_name=Path(run_dir).name, tags={PARENT_RUN_TAG: key})
    for name, value in (params or {}).items():
        client.log_param(run.info.run_id, name, str(value)[:6000])
    return run.info.run_id


def log_parent_run(tracking_uri: str, run_id: str, run_dir: str | os.PathLike,
                   files: list[str] | tuple[str, ...] = ("report.html", "best.json", "search.json",
                                                         "trials.csv"),
                   metrics: dict[str, float] | None = None) -> list[str]:
    """Log the search's files (those that exist) and summary metrics on its parent run, and close it.
    Returns the artifact names logged."""
    client = _client(tracking_uri)
    logged = []
    for name in files:
        path = Path(run_dir) / name
        if path.is_file():
            client.log_artifact(run_id, str(path))
            logged.append(name)
    for name, value in (metrics or {}).items():
        client.log_metric(run_id, name, float(value))
    client.set_terminated(run_id, "FINISHED")
    return logged


# What a trial's MLflow run and TensorBoard HParams hold besides the architecture: its training settings
# (config["train"], flattened) and these per-epoch numbers. Ray's callbacks log every key of every result
# (config/* copies, pid, timestamp, done, should_checkpoint, ...) one MLflow call each: ~40 SQLite
# transactions per epoch, 0.56 s, which Ray reports as a "performance bottleneck" (ecosystem review).
TRIAL_METRICS = ("val_accuracy", "val_loss", "train_loss", "images_per_second", "epoch_seconds", "seconds", "lr",
                 "epoch", *COST_COLUMNS)


def trial_params(config: dict, shared: bool = True) -> dict[str, Any]:
    """A trial's parameters for MLflow and TensorBoard: the architecture under trials.csv's names
    (architecture_study.architecture_params), then its training settings as `train/<key>`."""
    from .architecture_study import architecture_params

    params = architecture_params(config["arch"], shared) if "arch" in config else {}
    params.update({f"train/{k}": v for k, v in (config.get("train") or {}).items()
                   if isinstance(v, str | bool | int | float)})
    return params


def trial_run_name(trial) -> str:
    """An MLflow run's name: the architecture, then the Tune trial id (one architecture can recur)."""
    from search_spaces import Architecture

    if "arch" not in trial.config:
        return str(trial)
    return f"{Architecture.from_dict(trial.config['arch']).describe()} {trial.trial_id}"


@functools.cache
def _mlflow_logger_class():
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class TrialMLflowLogger(MLflowLoggerCallback):
        """Ray's MLflow callback, with each trial's run named by its architecture and holding the
        architecture's own parameters (trial_params) and JSON artifact, nested under the search's parent
        run, one run per trial across resumes, each epoch's metrics (TRIAL_METRICS) in one batched call,
        and the trial's outcome as the tag `outcome` (`stopped`: ASHA cut it short)."""

        def __init__(self, tracking_uri: str, *, experiment_name: str, parent_run_id: str | None = None,
                     shared: bool = True, max_epochs: int | None = None):
            tags = {"mlflow.parentRunId": parent_run_id} if parent_run_id else None
            super().__init__(tracking_uri, experiment_name=experiment_name, tags=tags)
            self.shared, self.max_epochs = shared, max_epochs

        def log_trial_start(self, trial) -> None:
            from mlflow.entities import Param

            if trial in self._trial_runs:
                return
            client = _client(self.tracking_uri)
            found = client.search_runs([self.mlflow_util.experiment_id], max_results=1,
                                       filter_string=f"tags.{TRIAL_RUN_TAG} = '{trial.trial_id}'")
            if found:  # a resumed search: the same trial goes on in the same run
                self._trial_runs[trial] = found[0].info.run_id
                client.update_run(found[0].info.run_id, status="RUNNING")
                return
            tags = {**(self.tags or {}), TRIAL_RUN_TAG: trial.trial_id, "trial_name": str(trial)}
            run = client.create_run(self.mlflow_util.experiment_id, run_name=trial_run_name(trial), tags=tags)
            self._trial_runs[trial] = run_id = run.info.run_id
            params = trial_params(trial.config, self.shared)
            client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
            if "arch" in trial.config:
                client.log_text(run_id, json.dumps(trial.config["arch"], indent=2), "architecture.json")

        def log_trial_result(self, iteration: int, trial, result: dict) -> None:
            import time

            from mlflow.entities import Metric

            step = result.get("training_iteration") or 0
            now = int(time.time() * 1000)
            metrics = [Metric(k, float(result[k]), now, step) for k in TRIAL_METRICS
                       if isinstance(result.get(k), int | float) and not isinstance(result.get(k), bool)]
            if metrics and trial in self._trial_runs:
                _client(self.tracking_uri).log_batch(self._trial_runs[trial], metrics=metrics)

        def log_trial_end(self, trial, failed: bool = False) -> None:
            run_id = self._trial_runs.get(trial)
            if run_id is None:
                return
            client = _client(self.tracking_uri)
            outcome = trial_outcome(trial.last_result, self.max_epochs or 0, failed) if self.max_epochs else None
            if outcome:
                client.set_tag(run_id, "outcome", outcome)
            client.set_terminated(run_id, "FAILED" if failed else "FINISHED")

    return TrialMLflowLogger


def mlflow_callbacks(tracking_uri: str, experiment_name: str, parent_run_id: str | None = None,
                     run_dir: str | os.PathLike | None = None, shared: bool = True,
                     max_epochs: int | None = None) -> list:
    """Tune callbacks for `--log mlflow`: add them to RunConfig(callbacks=[...]). With `run_dir`, a new
    experiment keeps its artifacts there (start_parent_run does the same). `shared`: the space's C and d
    are shared by all stages (architecture_params' names); `max_epochs` lets each run say its outcome."""
    if run_dir is not None:
        _experiment_id(_client(tracking_uri), experiment_name, run_dir)
    logger = __getattr__("TrialMLflowLogger")
    return [logger(tracking_uri, experiment_name=experiment_name, parent_run_id=parent_run_id, shared=shared,
                   max_epochs=max_epochs)]


def mlflow_view_command(tracking_uri: str) -> str:
    """How to open a search's MLflow runs: the UI needs the full `mlflow` package (mlflow-skinny, enough
    to log, ships no UI: its `mlflow ui` answers that index.html is missing; checked with 3.17.2)."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri
    return f"mlflow ui --backend-store-uri {tracking_uri}  (pip install mlflow)"


# --- TensorBoard HParams ------------------------------------------------------------------------------------

@functools.cache
def _tbx_logger_class():
    from ray.tune.logger import TBXLoggerCallback

    class TrialTBXLogger(TBXLoggerCallback):
        """Ray's TensorBoard logger (it replaces Tune's default one), with each trial's run named by its
        architecture (tensorboard_run_folder) and whose HParams are the architecture's own parameters
        (trial_params: C, d, base width, depths, name), the outcome (`stopped`: ASHA cut it short) and the
        epochs trained, instead of the whole flattened config (the sampler's encodings, constant `arch/*`
        fields, and no C or d: `arch/stages` is a list)."""

        def __init__(self, shared: bool = True, max_epochs: int | None = None) -> None:
            super().__init__()
            self.shared, self.max_epochs = shared, max_epochs

        def log_trial_start(self, trial) -> None:
            # Ray's writes into the trial's folder (trial_<id>), which TensorBoard then shows as the run's
            # name: each trial writes under RUN_DIR/tensorboard/ instead, named by its architecture. The
            # driver's staging folder is the run directory (local) or synced up to the bucket with it.
            if trial in self._trial_writer:
                self._trial_writer[trial].close()
            trial.init_local_path()
            folder = tensorboard_run_folder(trial.local_experiment_path, trial.trial_id,
                                            tensorboard_run_label(trial.config, f"trial_{trial.trial_id}"))
            self._trial_writer[trial] = self._summary_writer_cls(str(folder), flush_secs=30)
            self._trial_result[trial] = {}

        def _try_log_hparams(self, trial, result: dict) -> None:
            from tensorboardX.summary import hparams

            params = trial_params(trial.config, self.shared)
            last = trial.last_result or {}
            if self.max_epochs:
                params["outcome"] = trial_outcome(last, self.max_epochs)
            params["epochs"] = int(last.get("epoch", last.get("training_iteration", 0)) or 0)
            metrics = {k: v for k, v in result.items() if k.removeprefix("ray/tune/") in TRIAL_METRICS}
            try:
                for summary in hparams(hparam_dict=params, metric_dict=metrics):
                    self._trial_writer[trial].file_writer.add_summary(summary)
            except Exception as exc:  # as Ray's: HParams must not stop the search
                logging.getLogger(__name__).warning("TensorBoard hparams of %s not logged: %s", trial, exc)

    return TrialTBXLogger


def tensorboard_callbacks(shared: bool = True, max_epochs: int | None = None) -> list:
    """Tune's TensorBoard logger with the architecture as HParams (replaces Tune's default one)."""
    return [__getattr__("TrialTBXLogger")(shared=shared, max_epochs=max_epochs)]


def tensorboard_hparams(trial_dir: str | os.PathLike) -> dict[str, Any]:
    """The HParams a trial's event files hold (name -> value), read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(trial_dir), size_guidance={"scalars": 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    for raw in content.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("session_start_info"):
            out = {}
            for name, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                out[name] = getattr(value, kind) if kind else None
            return out
    return {}


# --- a search's tracking, set up and closed (the driver's calls) -----------------------------------------

def check_tracking(settings) -> None:
    """--log targets known (and MLflow installed); --optuna-storage a URL or a path (opened later)."""
    if "mlflow" in parse_log(settings.log) and not settings.location.is_local:
        # the parent run's artifacts (best.json, report.html) are logged from a local run directory
        raise TrackingError("log", "mlflow needs a local run directory; {storage_path} {path} is on an object "
                            "store, whose files stay there (leave {log} out)", path=settings.storage_path)
    if settings.optuna_storage is not None and not settings.optuna_storage.strip():
        raise TrackingError("optuna_storage", "empty; give a path (journal file) or an RDB URL")


def check_new_study(settings) -> None:
    """A new run's study must be new: on a shared --optuna-storage a run of the same name would otherwise
    continue (and show merged with) another run's study, whose proposals TPE would fit."""
    if settings.optuna_storage is None or settings.sampler == "grid":
        return  # the default journal lives in the new (empty) run directory
    import optuna

    name = study_name(settings.name)
    if name in optuna.study.get_all_study_names(optuna_storage(settings.optuna_storage)):
        raise TrackingError("name", "the Optuna storage {storage} already holds the study {study} of another run; "
                            "give another {name} (or {resume} that run)", storage=settings.optuna_storage, study=name)


def search_mlflow_uri(settings) -> str | None:
    """The MLflow tracking URI of a search's `--log mlflow[=URI]`, None without it."""
    targets = parse_log(settings.log)
    return mlflow_tracking_uri(targets["mlflow"], settings.run_dir) if "mlflow" in targets else None


def tracking_callbacks(settings) -> list:
    """`--log mlflow[=URI]`: the search's parent run and one nested MLflow run per trial (new runs only:
    on --resume Tune unpickles these callbacks with the Tuner)."""
    from dataclasses import asdict

    uri = search_mlflow_uri(settings)
    if uri is None:
        return []
    from .plan import resolve_space

    parent = start_parent_run(uri, settings.name, settings.run_dir, params=asdict(settings))
    return mlflow_callbacks(uri, settings.name, parent, run_dir=settings.run_dir,
                            shared=resolve_space(settings).shared, max_epochs=settings.max_epochs)


def finish_tracking(settings, summary: dict[str, Any], log=print, trial_ids: set[str] | None = None) -> dict[str, Any]:
    """The search's files and best accuracy on its MLflow parent run (closed); where to look."""
    out: dict[str, Any] = {}
    if settings.sampler != "grid":
        target = settings.optuna_storage or settings.location.local_dir
        if target:
            out["optuna_storage"] = storage_url(target)
            out["optuna_dashboard"] = f"optuna-dashboard {storage_url(target)}  (pip install optuna-dashboard)"
    uri = search_mlflow_uri(settings)
    if uri is not None:
        try:
            metrics = {"best_val_accuracy": summary["best_val_accuracy"]} if "best_val_accuracy" in summary else {}
            parent = start_parent_run(uri, settings.name, settings.run_dir)
            if trial_ids is not None:
                _close_lost_mlflow_runs(uri, parent, trial_ids)
            _log_best_model(uri, parent, settings.location, summary, log)
            log_parent_run(uri, parent, settings.run_dir, metrics=metrics)
            out["mlflow"], out["mlflow_ui"] = uri, mlflow_view_command(uri)
        except Exception as exc:  # a tracking server's failure must not lose a finished search
            log(f"warning: MLflow parent run not updated: {exc}")
    return out


def _log_best_model(uri: str, parent: str, location, summary: dict[str, Any], log=print) -> None:
    """The best trial's export (arch.json, metrics.json, weights.safetensors where its checkpoint was kept)
    as the parent run's artifact folder `best_model`: nas.export's rank 1, written to a temporary folder."""
    import tempfile

    if "best_trial" not in summary:
        return
    from ..report import export_top

    with tempfile.TemporaryDirectory(prefix="nas_best_") as tmp:
        try:
            (arch_json,) = export_top(location, top=1, out=tmp)
        except Exception as exc:  # no checkpoint, no safetensors: the rest of the run is still logged
            log(f"warning: MLflow: best model not logged ({exc})")
            return
        _client(uri).log_artifacts(parent, str(Path(arch_json).parent), "best_model")


def _close_lost_mlflow_runs(uri: str, parent: str, trial_ids: set[str]) -> None:
    """A driver killed after starting a trial but before saving its state leaves that trial's MLflow run
    RUNNING; Tune never runs it again (the resumed search asks for a new one): mark it KILLED, "lost"
    (as tracking marks its Optuna trial)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_run(parent).info.experiment_id
    for run in client.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'", max_results=10000):
        if run.info.status == "RUNNING" and run.data.tags.get(TRIAL_RUN_TAG) not in trial_ids:
            client.set_tag(run.info.run_id, "outcome", "lost")
            client.set_terminated(run.info.run_id, "KILLED")


# --- Ray dashboard -----------------------------------------------------------------------------------------

def dashboard_line(url: str, token_path: str | os.PathLike | None = None) -> str:
    """The line to print with the Ray dashboard's URL: Ray (2.52+) asks for a token in the browser."""
    path = token_path or os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token"
    return f"Ray dashboard: {url} (its token: `ray get-auth-token`, or the file {path})"


def __getattr__(name: str):
    # The Ray-derived classes are built on first use (importing this module stays cheap) but live at
    # module level under their own names, so plain pickle (Ray's searcher state) finds them by reference.
    makers = {"TrackedOptunaSearch": _searcher_class, "TrialMLflowLogger": _mlflow_logger_class,
              "TrialTBXLogger": _tbx_logger_class}
    if name not in makers:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = makers[name]()
    cls.__module__, cls.__qualname__ = __name__, name
    return cls


__all__ = [
    "JOURNAL_FILE", "TrackingError", "check_new_study", "check_tracking", "dashboard_command", "dashboard_line",
    "finish_tracking", "journal_path", "label_process", "load_study", "log_parent_run", "mlflow_callbacks",
    "mlflow_tracking_uri", "mlflow_view_command", "optuna_storage", "parse_log", "process_title", "repoint_journal",
    "search_mlflow_uri", "start_parent_run", "storage_url", "study_name", "tensorboard_callbacks",
    "tensorboard_hparams", "tensorboard_run_dir", "tensorboard_run_folder", "tensorboard_run_label",
    "tensorboard_scalars", "tracked_optuna_search", "tracking_callbacks", "trial_outcome",
    "trial_params", "trial_run_name",
]
