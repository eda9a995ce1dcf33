"""Hyperparameter importance: which of the searcher's parameters explain validation accuracy.

The one place that rebuilds an Optuna study from a table of trials (one trial per row, the searcher's
parameters as columns) and asks optuna.importance; `evidence.importance_with_spread` calls it once on
the full data and once per bootstrap resample, and the report draws what that returns. optuna is
imported inside the functions on purpose, so that loading the report's modules stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ..rundir.schema import json_value
from .run_data import param_columns

# What is ranked is what trained: the architecture's own columns (cardinality, width, base width,
# depths), not the sampler's encoding of them. Ray copies the sampler's suggested values into each
# trial's config, so trials.csv also holds `param_cardinality_index` and `param_*_pos` columns
# (search_spaces.sampling's fixed-distribution encoding): positions within ranges that change with the
# other choices, meaningless on their own. Cardinality and base width are sets of choices, not ranges.
ARCH_COLUMNS = ("cardinality", "width", "base_width")
CATEGORICAL = ("cardinality", "base_width", "param_cardinality")


def _encoded(column: str) -> bool:
    """A sampler-encoding column (search_spaces.sampling): `param_..._index` or `param_..._pos`."""
    return column.startswith("param_") and column.endswith(("_index", "_pos"))


def searched_columns(frame: pd.DataFrame) -> list[str]:
    """The columns importance ranks: the trained architecture values, then other searched settings."""
    depths = sorted((c for c in frame.columns if c.startswith("depth_") and c.removeprefix("depth_").isdigit()),
                    key=lambda c: int(c.removeprefix("depth_")))
    arch = [c for c in (*ARCH_COLUMNS, *depths) if c in frame.columns]
    # Old runs recorded the architecture itself as param_cardinality, param_width, param_depth_<i>:
    # those duplicate the architecture columns.
    duplicates = {f"param_{c}" for c in arch}
    return arch + [c for c in param_columns(frame) if not _encoded(c) and c not in duplicates]


def distributions(frame: pd.DataFrame, params: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Optuna distributions for `params` from the values `frame` holds; and the params left out because
    they took a single value. Cardinality (a choice among few values, as in the samplers' own space) and
    non-integer columns with few values are categorical; integer columns IntDistribution; other floats
    FloatDistribution (log when they span two decades); text columns categorical."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dists: dict[str, Any] = {}
    constant: list[str] = []
    for col in params:
        vals = frame[col].dropna()
        num = pd.to_numeric(vals, errors="coerce")
        if len(vals) and num.notna().all():
            uniq = sorted({json_value(v) for v in num})
            if len(uniq) < 2:
                constant.append(col)
            elif col in CATEGORICAL or "cardinality" in col and len(uniq) <= 8 or (
                    not all(isinstance(v, int) for v in uniq) and len(uniq) <= 8):
                dists[col] = CategoricalDistribution(uniq)
            elif all(isinstance(v, int) for v in uniq):
                dists[col] = IntDistribution(int(uniq[0]), int(uniq[-1]))
            else:
                lo, hi = float(uniq[0]), float(uniq[-1])
                dists[col] = FloatDistribution(lo, hi, log=lo > 0 and hi / lo >= 100)
        else:
            uniq = sorted({str(v) for v in vals})
            if len(uniq) >= 2:
                dists[col] = CategoricalDistribution(uniq)
            else:
                constant.append(col)
    return dists, constant


def build_study(frame: pd.DataFrame, value: str, dists: dict[str, Any]):
    """An in-memory study with one completed trial per row of `frame` (objective: `value`, maximised);
    a cell outside its distribution (NaN, or a choice the full data did not have) is left unset."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    trials = []
    for _, row in frame.iterrows():
        p = {}
        for col, dist in dists.items():
            v = row[col]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            text = isinstance(dist, CategoricalDistribution) and isinstance(dist.choices[0], str)
            v = str(v) if text else json_value(v)
            if isinstance(dist, CategoricalDistribution) and v not in dist.choices:
                continue
            p[col] = v
        trials.append(optuna.trial.create_trial(value=float(row[value]), params=p,
                                                distributions={k: dists[k] for k in p}))
    study.add_trials(trials)
    return study


def evaluator(n: int, seed: int = 0) -> tuple[Callable[[], Any], str]:
    """A factory of optuna importance evaluators and its name: fANOVA when scikit-learn is installed,
    otherwise PED-ANOVA with a target quantile that keeps at least 5 trials in the top group."""
    import optuna

    try:
        import sklearn  # noqa: F401  (fANOVA's random forest)

        return (lambda: optuna.importance.FanovaImportanceEvaluator(seed=seed)), "fANOVA"
    except ImportError:
        q = min(0.5, max(0.1, 5 / max(n, 1)))
        return ((lambda: optuna.importance.PedAnovaImportanceEvaluator(target_quantile=q)),
                f"PED-ANOVA (top {q:.0%} of trials vs all; fANOVA needs scikit-learn)")


def importances(frame: pd.DataFrame, value: str, dists: dict[str, Any], make_evaluator) -> dict[str, float]:
    """optuna.importance.get_param_importances on the study rebuilt from `frame`."""
    import optuna

    study = build_study(frame, value, dists)
    return dict(optuna.importance.get_param_importances(study, evaluator=make_evaluator()))


__all__ = ["build_study", "distributions", "evaluator", "importances", "searched_columns"]
