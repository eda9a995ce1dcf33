"""A trial as the architecture people search over: C, d, base width and each stage's depth.

The sampler's own study holds its encoding (`cardinality_index`, `width_pos`, `depth_1_pos`, ...: positions
within ranges that move with the other choices, search_spaces/sampling.py), which is what optuna-dashboard,
TensorBoard's HParams and MLflow would otherwise show and rank by importance. Here each finished trial is
copied, with `optuna.trial.create_trial`, into a second study in the same storage,
`nas-<run>/architectures`, whose parameters are the architecture's own (with the space's ranges as their
distributions), so that the dashboard's importance, slice and parallel-coordinate plots read C, d, base
width and depths. TensorBoard and MLflow get the same names (`architecture_params`).

Names are trials.csv's: `cardinality`, `width` (d, the first stage's group width), `base_width` (the first
stage's output width), `depth_<i>`; in a space with C and d chosen per stage (`--free`), `cardinality_<i>`
and `width_<i>` (each stage's group width) instead of `cardinality` and `width`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from search_spaces import Architecture, SearchSpace

ARCH_ATTR, NAME_ATTR = "arch", "name"  # the sampler trial's user attributes set when it is proposed

logger = logging.getLogger(__name__)


def architecture_study_name(study_name: str) -> str:
    """The decoded study beside the sampler's `study_name` ('/' cannot be in a run's name: no clash)."""
    return f"{study_name}/architectures"


def architecture_params(arch: Architecture | dict, shared: bool = True) -> dict[str, Any]:
    """The architecture's searched values under trials.csv's names (and its name, as `name`)."""
    arch = arch if isinstance(arch, Architecture) else Architecture.from_dict(arch)
    params: dict[str, Any] = {"name": arch.describe()}
    if shared:
        params.update(cardinality=arch.stages[0].cardinality, width=arch.stages[0].group_width)
    else:
        params.update({f"cardinality_{i + 1}": s.cardinality for i, s in enumerate(arch.stages)})
        params.update({f"width_{i + 1}": s.group_width for i, s in enumerate(arch.stages)})
    params["base_width"] = arch.stages[0].out_channels
    params.update({f"depth_{i + 1}": d for i, d in enumerate(arch.depths)})
    return params


def architecture_distributions(space: SearchSpace) -> dict[str, Any]:
    """Optuna distributions of architecture_params' numbers: the space's ranges. Log scales for C and d
    (powers of two; the slice and parallel-coordinate plots spread them evenly), base widths as choices."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    cards = (min(space.cardinalities), max(space.cardinalities))
    lo, hi = space.width_range
    if space.shared:
        dists: dict[str, Any] = {"cardinality": IntDistribution(*cards, log=True),
                                 "width": IntDistribution(lo, hi, log=True)}
    else:
        dists = {f"cardinality_{i + 1}": IntDistribution(*cards, log=True) for i in range(space.num_stages)}
        dists.update({f"width_{i + 1}": IntDistribution(lo * 2**i, hi * 2**i, log=True)
                      for i in range(space.num_stages)})
    dists["base_width"] = CategoricalDistribution(sorted({*space.base_widths, space.base_out}))
    dists.update({f"depth_{i + 1}": IntDistribution(a, b) for i, (a, b) in enumerate(space.depth_ranges)})
    return dists


def open_architecture_study(sampler_study, metric_names: list[str]):
    """The decoded study of `sampler_study` (same storage and directions), its metrics named."""
    import optuna

    study = optuna.create_study(storage=sampler_study._storage, load_if_exists=True,
                                study_name=architecture_study_name(sampler_study.study_name),
                                directions=sampler_study.directions)
    if study.metric_names is None:
        name_metrics(study, metric_names)
    return study


def name_metrics(study, metric_names: list[str]) -> None:
    """study.set_metric_names (optuna-dashboard's axis titles; "Objective 0" without), without its
    ExperimentalWarning (experimental since optuna 3.2, unchanged through 5.0)."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(metric_names)


def mirror_trials(sampler_study, space: SearchSpace, metric_names: list[str], only: int | None = None) -> int:
    """Copy the sampler study's finished trials (or only trial number `only`) that are not yet in the
    decoded study; returns how many were added. Idempotent: a resumed search calls it again for all."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    finished = [t for t in sampler_study.get_trials(deepcopy=False, states=states)
                if (only is None or t.number == only) and ARCH_ATTR in t.user_attrs
                and t.user_attrs.get("outcome") != "lost"]  # lost: proposed, never trained
    if not finished:
        return 0
    decoded = open_architecture_study(sampler_study, metric_names)
    have = {t.user_attrs.get("sampler_trial") for t in decoded.get_trials(deepcopy=False)}
    dists = architecture_distributions(space)
    added = 0
    for trial in finished:
        if trial.number in have:
            continue
        params = architecture_params(json.loads(trial.user_attrs[ARCH_ATTR]), space.shared)
        params.pop("name")
        attrs = {k: v for k, v in trial.user_attrs.items() if k != ARCH_ATTR}
        # A trial ASHA (or the time budget) stopped trained less: PRUNED here whatever the sampler's
        # study holds (NSGA-II's keeps it COMPLETE, tuner.make_searcher), so fidelities are not mixed.
        pruned = attrs.get("outcome") == "stopped" and trial.values is not None
        try:
            decoded.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.PRUNED if pruned else trial.state, values=trial.values,
                params=params, distributions=dists,
                intermediate_values=trial.intermediate_values,
                user_attrs={**attrs, "sampler_trial": trial.number}))
            added += 1
        except ValueError as exc:  # a value outside the space's ranges (a space changed under a resume)
            logger.warning("trial %s not copied to %s: %s", trial.number, decoded.study_name, exc)
    return added


__all__ = ["ARCH_ATTR", "NAME_ATTR", "architecture_distributions", "architecture_params",
           "architecture_study_name", "mirror_trials", "name_metrics", "open_architecture_study"]
