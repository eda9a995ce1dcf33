"""The FLOPs and parameters sections: accuracy against a cost, with the Pareto front (at one fidelity) and
the FLOPs budget band."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from .._plotting import (
    ACC_TITLE,
    HOVER,
    LAYOUT,
    Section,
    coloraxis,
    customdata,
    empty_section,
    fidelities,
    json_list,
    lin_pos,
    trial_points,
)
from ..run_data import RunData


def pareto_front(df: pd.DataFrame, cost: str, value: str = "accuracy") -> pd.DataFrame:
    """Trials not dominated by a cheaper-or-equal, more accurate one, sorted by cost."""
    d = df[df[cost].notna() & df[value].notna()].sort_values([cost, value], ascending=[True, False])
    keep, best = [], -math.inf
    for idx, v in zip(d.index, d[value], strict=True):
        if v > best:
            keep.append(idx)
            best = v
    return d.loc[keep]


def accuracy_vs_cost(run: RunData, cost: str) -> Section:
    """cost: 'gflops' or 'mparams'. Points coloured by cardinality, Pareto front, FLOPs budget band."""
    is_flops = cost == "gflops"
    key = "flops" if is_flops else "params"
    res = run.search.get("budget_resolution")
    # the columns' names (schema.COST_COLUMNS): the budget's figures, not the trained model's
    unit = (f"GFLOPs (flops_nominal, at {res}×{res})" if res else "GFLOPs (flops_nominal)") if is_flops \
        else "M parameters (params_nominal)"
    title = f"Accuracy vs {'FLOPs' if is_flops else 'parameters'} with the Pareto front"
    data = run.measured()
    data = data[data[cost].notna()]
    if data.empty:
        return empty_section(key, title, "No trial has reported an accuracy yet.")
    # The front compares accuracies, so it is drawn at one fidelity: the completed trials, or while
    # none has completed, every trial at the common epoch.
    common, done = fidelities(run)
    fid = done if done.n else common
    base = fid.frame
    basis_text = f"the trials {fid.title}"
    fig = go.Figure()
    budget, tol = run.search.get("budget_flops"), run.search.get("tolerance")
    if is_flops and isinstance(budget, int | float) and budget > 0:
        b = budget / 1e9
        # Feasible means FLOPs in [(1 - tolerance) * budget, budget] (search_spaces.budget): the band
        # ends at the budget, which is a ceiling.
        label = f"budget {b:g} GFLOPs"
        if isinstance(tol, int | float) and tol > 0:
            fig.add_vrect(x0=b * (1 - tol), x1=b, fillcolor="#2ca02c", opacity=0.08, line_width=0,
                          name="feasible")
            label = f"feasible {b * (1 - tol):g}–{b:g} GFLOPs"
        fig.add_vline(x=b, line=dict(color="#2ca02c", dash="dash"), annotation_text=label,
                      annotation_position="top left")
    for tr in trial_points(data, cost, "cardinality", lin_pos, {}):
        fig.add_trace(tr)
    front = pareto_front(base, cost)
    if not front.empty:
        fig.add_trace(go.Scatter(
            x=json_list(front[cost]), y=json_list(front["accuracy"] * 100), mode="lines+markers", line_shape="hv",
            name=f"Pareto front ({len(front)})", line=dict(color="#d62728", width=2),
            marker=dict(size=14, symbol="circle-open", color="#d62728", line=dict(width=2)),
            customdata=customdata(front), hovertemplate=HOVER.replace("<b>", "<b>Pareto: "),
            meta={"role": "pareto", "cost": cost, "epoch": fid.epoch, "n": fid.n},
        ))
    fig.update_layout(**LAYOUT, **coloraxis(data["cardinality"], "C"))
    fig.update_xaxes(title_text=unit)
    fig.update_yaxes(title_text=ACC_TITLE)
    band = " Green band: the feasible window, from (1 - tolerance) x budget up to the budget."
    caption = (f"Red: the trials no cheaper trial beats (higher accuracy for fewer {unit}), over "
               f"{basis_text}." + (band if is_flops else ""))
    return Section(key, title, fig, caption)
