"""A search's run directory, read into pandas: `search.json`, `trials.csv` and `epochs.csv`.

The run directory is wherever the search stored it: a local or shared path, or an object-store URI
(`s3://bucket/runs/NAME?endpoint_override=...`), read through nas.rundir.location.RunLocation.

Only plain files are read (CSV and JSON; nothing is unpickled). Every column the analysis uses is
present after loading, with the contract's dtype, whatever the run wrote: a search still running, an
interrupted one or a trial that failed before reporting leaves empty cells, sometimes whole columns,
and those become NaN rather than errors. Columns derivable from the architecture (cardinality,
width, depths...) are filled from the `arch` JSON when the run did not write them.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from search_spaces import Architecture, ArchitectureError

from ..errors import SettingError
from ..rundir.location import RunLocation, StorageError
from ..rundir.schema import (
    EPOCH_COLUMNS,
    EPOCHS_CSV,
    FAILED,
    MEASURED,
    OUTCOMES,
    RENAMED_COLUMNS,
    SEARCH_JSON,
    TRIAL_COLUMNS,
    TRIALS_CSV,
    columns_of,
    rank_trials,
)

STR_COLUMNS = columns_of(TRIAL_COLUMNS, str)
NUMBER_COLUMNS = columns_of(TRIAL_COLUMNS, int, float)


class RunDataError(SettingError):
    """A run directory (`run_dir`) or an output setting (`top`, `out`) the report cannot work with."""


@dataclass
class RunData:
    run_dir: Path | None  # RUN_DIR as a local Path; None for a run on an object store (see `location`)
    search: dict[str, Any]  # search.json, {} when the run has none
    trials: pd.DataFrame  # one row per trial, contract columns + `accuracy`, `error`, `gflops`, `mparams`
    epochs: pd.DataFrame  # one row per trial per epoch
    warnings: list[str] = field(default_factory=list)
    location: RunLocation | None = None  # where RUN_DIR is (derived from run_dir when not given)
    out_dir: Path | None = None  # while the report is written: the local folder its files go to

    def __post_init__(self) -> None:
        if self.location is None:
            self.location = RunLocation.from_run_uri(str(self.run_dir))

    @property
    def where(self) -> str:
        """RUN_DIR for people: the absolute path, or the URI without its query."""
        return self.location.display

    def has(self, rel: str) -> bool:
        """RUN_DIR/REL exists, or was just written to `out_dir` (not uploaded yet)."""
        if self.out_dir is not None and (self.out_dir / rel).exists():
            return True
        return self.location.exists(rel.rstrip("/"))

    @property
    def stages(self) -> int:
        """Number of depth_i columns (stages of the space)."""
        return len(depth_columns(self.trials))

    def measured(self) -> pd.DataFrame:
        """Trials with a real accuracy: completed, stopped by ASHA, or still running."""
        t = self.trials
        return t[t["outcome"].isin(MEASURED) & t["accuracy"].notna()]

    def completed(self) -> pd.DataFrame:
        t = self.trials
        return t[(t["outcome"] == "completed") & t["accuracy"].notna()]

    def failed(self) -> pd.DataFrame:
        return self.trials[self.trials["outcome"].isin(FAILED)]

    def outcome_counts(self) -> dict[str, int]:
        counts = self.trials["outcome"].value_counts()
        known = {o: int(counts.get(o, 0)) for o in OUTCOMES if counts.get(o, 0)}
        other = {str(o): int(n) for o, n in counts.items() if o not in OUTCOMES}
        return known | other

    def references(self) -> pd.DataFrame:
        """The reference designs' trials (search_spaces.references), every outcome."""
        return self.trials[self.trials["role"] == "reference"]

    def ranked(self) -> pd.DataFrame:
        """Trials that could be exported, best first (schema.rank_key: completed ones first), each with an
        accuracy and a valid architecture."""
        t = self.measured()
        return rank_trials(t[t["architecture"].notna()], accuracy="accuracy")


def depth_columns(trials: pd.DataFrame) -> list[str]:
    cols = [c for c in trials.columns if re.fullmatch(r"depth_\d+", c)]
    return sorted(cols, key=lambda c: int(c.split("_")[1]))


def param_columns(trials: pd.DataFrame) -> list[str]:
    return [c for c in trials.columns if c.startswith("param_")]


def run_location(run: str | Path | RunLocation) -> RunLocation:
    """Where RUN_DIR is: a local path (made absolute) or a URI (never resolved)."""
    if isinstance(run, RunLocation):
        return run
    try:
        return RunLocation.from_run_uri(str(run))
    except StorageError as exc:
        raise RunDataError("run_dir", exc.message, **exc.values) from None


def load_run(run_dir: str | Path | RunLocation) -> RunData:
    loc = run_location(run_dir)
    if loc.is_local:
        path = Path(loc.root)
        if path.exists() and not path.is_dir():
            raise RunDataError("run_dir", "{path}: not a run directory (a file; give the directory that holds "
                               "{file})", path=path, file=TRIALS_CSV)
        if not path.is_dir():
            raise RunDataError("run_dir", "{path}: no such run directory", path=path)
    try:
        has_trials = loc.is_file(TRIALS_CSV)
    except OSError as exc:  # a bucket that does not exist, refused credentials, an unreachable endpoint
        raise RunDataError("run_dir", "{path}: cannot be read ({why})", path=loc.display,
                           why=str(exc).splitlines()[0]) from None
    if not has_trials:
        if not loc.is_local and not loc.exists():
            raise RunDataError("run_dir", "{path}: no such run directory", path=loc.display)
        raise RunDataError("run_dir", "{path}: no {file} (is this a search run directory?)", path=loc.display,
                           file=TRIALS_CSV)
    warnings: list[str] = []
    search = _read_search(loc, warnings)
    try:
        raw = pd.read_csv(io.StringIO(loc.read_text(TRIALS_CSV)), dtype={"trial_id": str}, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raw = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RunDataError("run_dir", "{path}: not a readable CSV ({why})", path=f"{loc.display}/{TRIALS_CSV}",
                           why=str(exc).splitlines()[0]) from None
    trials = normalize_trials(raw, warnings)
    epochs = _read_epochs(loc, warnings)
    return RunData(loc.local_dir, search, trials, epochs, warnings, location=loc)


def _read_search(loc: RunLocation, warnings: list[str]) -> dict[str, Any]:
    if not loc.is_file(SEARCH_JSON):
        warnings.append("search.json is missing: budget and settings unknown")
        return {}
    try:
        data = json.loads(loc.read_text(SEARCH_JSON))
    except (OSError, ValueError) as exc:
        warnings.append(f"search.json is unreadable ({exc})")
        return {}
    if not isinstance(data, dict):
        warnings.append("search.json is not a JSON object")
        return {}
    return data


def _read_epochs(loc: RunLocation, warnings: list[str]) -> pd.DataFrame:
    empty = pd.DataFrame({c: pd.Series(dtype=str if c == "trial_id" else float) for c in EPOCH_COLUMNS})
    if not loc.is_file(EPOCHS_CSV):
        return empty
    try:
        df = pd.read_csv(io.StringIO(loc.read_text(EPOCHS_CSV)), dtype={"trial_id": str})
    except pd.errors.EmptyDataError:
        return empty
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        warnings.append(f"epochs.csv is unreadable ({str(exc).splitlines()[0]})")
        return empty
    for col in EPOCH_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
        if col != "trial_id":
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df = df[df["trial_id"].notna() & df["epoch"].notna()]
    return df.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)


def parse_arch(text: Any) -> Architecture | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return Architecture.from_dict(json.loads(text))
    except (ValueError, TypeError, ArchitectureError):
        return None


def normalize_trials(raw: pd.DataFrame, warnings: list[str] | None = None) -> pd.DataFrame:
    """The contract's columns with their dtypes, plus derived columns used by the report."""
    warnings = [] if warnings is None else warnings
    df = raw.rename(columns={old: new for old, new in RENAMED_COLUMNS.items() if new not in raw.columns})
    if "trial_id" not in df.columns:
        df["trial_id"] = [f"row{i}" for i in range(len(df))]
    for col in STR_COLUMNS:
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    for col in NUMBER_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["outcome"] = [_outcome(o, s) for o, s in zip(df["outcome"], df["status"], strict=True)]
    df["role"] = df["role"].replace("", "sampled")  # runs from before the role column sampled every trial

    # The architecture is the source of truth for C, d and depths; fill what the run left empty.
    archs = [parse_arch(a) for a in df["arch"]]
    df["architecture"] = pd.Series(archs, index=df.index, dtype=object)
    bad = [tid for tid, a, text in zip(df["trial_id"], archs, df["arch"], strict=True) if a is None and text]
    if bad:
        warnings.append(f"{len(bad)} trial(s) have an unreadable arch: {', '.join(bad[:5])}")
    n_stages = max([len(a.stages) for a in archs if a is not None] or [len(depth_columns(df)) or 0])
    for i in range(1, n_stages + 1):
        col = f"depth_{i}"
        if col not in df.columns:
            df[col] = np.nan
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for idx, arch in zip(df.index, archs, strict=True):
        if arch is None:
            continue
        fill = {
            "cardinality": arch.stages[0].cardinality,
            "width": arch.stages[0].group_width,
            "base_width": arch.stages[0].out_channels,
            "depth_total": sum(arch.depths),
            **{f"depth_{i + 1}": d for i, d in enumerate(arch.depths)},
        }
        for col, value in fill.items():
            if math.isnan(df.at[idx, col]):
                df.at[idx, col] = float(value)
        for col, values in (("depths", arch.depths), ("cardinalities", arch.cardinalities),
                            ("group_widths", arch.group_widths)):
            if not df.at[idx, col]:
                df.at[idx, col] = ",".join(str(v) for v in values)
        if not df.at[idx, "name"]:
            df.at[idx, "name"] = arch.describe()
    no_name = df["name"] == ""
    df.loc[no_name, "name"] = [_fallback_name(r) for _, r in df[no_name].iterrows()]

    # Integers stay floats with NaN for the missing cells (pandas' nullable ints do not survive
    # plotly); `accuracy` is what the report ranks by: the best validation accuracy seen.
    df["accuracy"] = df["best_val_accuracy"].fillna(df["val_accuracy"])
    df["error"] = 100.0 * (1.0 - df["accuracy"])
    df["gflops"] = df["flops_nominal"] / 1e9
    df["mparams"] = df["params_nominal"] / 1e6
    return df.reset_index(drop=True)


def _outcome(outcome: str, status: str) -> str:
    outcome = outcome.strip().lower()
    if outcome:
        return outcome
    return {"TERMINATED": "completed", "ERROR": "error", "RUNNING": "running",
            "PENDING": "pending"}.get(status.strip().upper(), "pending")


def _fallback_name(row: pd.Series) -> str:
    c, d = row["cardinality"], row["width"]
    if math.isnan(c) or math.isnan(d):
        return f"trial {row['trial_id']}"
    depths = f" [{row['depths']}]" if row["depths"] else ""
    return f"{int(c)}x{int(d)}d{depths}"


def trials_for_export(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials table as written to trials.parquet: the contract's columns (no Python objects)."""
    return trials.drop(columns=["architecture"], errors="ignore")


def safe_name(trial_id: str) -> str:
    """A trial id usable as a file name (Ray's ids already are; anything else is made so)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(trial_id)).strip("._")
    return name or "trial"
