"""Hyperparameter importance: which architecture dimensions (and other searched settings) explain
validation accuracy.

An analysis, not a figure (nas.report.figures draws it): the completed trials are replayed into an
in-memory Optuna study and optuna.importance ranks the parameters. What is ranked is what trained:
the architecture's own columns (cardinality, width, base width, depths), not the sampler's encoding
of them. Ray copies the sampler's suggested values into each trial's config, so trials.csv also holds
`param_cardinality_index` and `param_*_pos` columns (search_spaces.sampling's fixed-distribution
encoding): positions within ranges that change with the other choices, meaningless on their own.
Other `param_` columns (a searched learning rate, say) are ranked as they are. optuna is imported
inside the function on purpose, so that loading the report's modules stays cheap.
"""

from __future__ import annotations

import math

import pandas as pd

from .run_data import RunData, param_columns
from .schema import json_value

# Architecture columns ranked as the values that trained; cardinality and base width are sets of
# choices (1, 2, 4, ... / 64, 128, 256), not ranges.
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


def param_importances(run: RunData) -> tuple[dict[str, float], str, str]:
    """Rebuild an in-memory Optuna study from trials.csv's param_ columns and ask optuna.importance.

    Returns (importances by column, evaluator name, note); empty importances with a note saying why
    when the run does not allow it.
    """
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    done = run.completed()
    params = [c for c in searched_columns(done) if done[c].notna().any()]
    if not params:
        return {}, "", "trials.csv has no architecture or param_ columns: nothing to rank."
    if len(done) < 3:
        return {}, "", f"Needs at least 3 completed trials; this run has {len(done)}."
    dists = {}
    for col in params:
        vals = done[col].dropna()
        num = pd.to_numeric(vals, errors="coerce")
        if num.notna().all():
            uniq = sorted({json_value(v) for v in num})
            if len(uniq) < 2:
                continue
            if col in CATEGORICAL or not all(isinstance(v, int) for v in uniq) and len(uniq) <= 8:
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
    if not dists:
        return {}, "", "Every parameter took a single value over the completed trials: nothing to rank."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    trials = []
    for _, row in done.iterrows():
        p = {}
        for col, dist in dists.items():
            v = row[col]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            v = json_value(v) if not isinstance(dist, CategoricalDistribution) or not isinstance(
                dist.choices[0], str) else str(v)
            if isinstance(dist, CategoricalDistribution) and v not in dist.choices:
                continue
            p[col] = v
        trials.append(optuna.trial.create_trial(value=float(row["accuracy"]), params=p,
                                                distributions={k: dists[k] for k in p}))
    study.add_trials(trials)
    try:
        import sklearn  # noqa: F401  (fANOVA's random forest)

        evaluator, ev_name = optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
    except ImportError:
        q = min(0.5, max(0.1, 5 / len(done)))
        evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=q)
        ev_name = f"PED-ANOVA (top {q:.0%} of trials vs all; fANOVA needs scikit-learn)"
    try:
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        return {}, ev_name, f"optuna.importance could not rank the parameters: {exc}"
    skipped = sorted(set(params) - set(dists))
    note = f"the {len(done)} completed trials (target: best validation accuracy)."
    if skipped:
        note += f" Constant, so left out: {', '.join(s.removeprefix('param_') for s in skipped)}."
    return dict(values), ev_name, note


__all__ = ["param_importances", "searched_columns"]
