"""The learning curves section: validation accuracy per epoch, one line per trial, and where ASHA
stopped trials."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ...rundir.schema import OTHER_COLOR, OUTCOME_COLORS, json_value
from .._plotting import ACC_TITLE, LAYOUT, Section, empty_section, json_list
from ..run_data import RunData


def learning_curves(run: RunData) -> Section:
    key, title = "curves", "Learning curves (validation accuracy per epoch)"
    ep = run.epochs[run.epochs["val_accuracy"].notna()]
    if ep.empty:
        return empty_section(key, title, "No epoch has been reported yet (epochs.csv is missing or empty).")
    info = run.trials.set_index("trial_id")
    fig = go.Figure()
    shown: set[str] = set()
    stops_x, stops_y, stops_cd = [], [], []
    order = {"stopped": 0, "diverged": 1, "completed": 2, "running": 3}
    ids = sorted(ep["trial_id"].unique(), key=lambda t: order.get(_outcome_of(info, t), 4))
    groups = dict(tuple(ep.groupby("trial_id")))
    for tid in ids:
        g = groups[tid]
        outcome = _outcome_of(info, tid)
        name = info.at[tid, "name"] if tid in info.index else tid
        color = OUTCOME_COLORS.get(outcome, OTHER_COLOR)
        fig.add_trace(go.Scatter(
            x=json_list(g["epoch"]), y=json_list(g["val_accuracy"] * 100), mode="lines+markers",
            line=dict(color=color, width=1.2 if outcome == "stopped" else 2),
            marker=dict(size=4), opacity=0.55 if outcome == "stopped" else 0.9,
            name=outcome, legendgroup=outcome, showlegend=outcome not in shown,
            text=[f"{name}" for _ in range(len(g))],
            hovertemplate=f"<b>%{{text}}</b><br>trial {tid} ({outcome})<br>epoch %{{x}}: "
                          f"%{{y:.2f}}%<extra></extra>",
            meta={"role": "curve", "trial_id": tid, "outcome": outcome},
        ))
        shown.add(outcome)
        if outcome == "stopped":
            stops_x.append(json_value(g["epoch"].iloc[-1]))
            stops_y.append(json_value(g["val_accuracy"].iloc[-1] * 100))
            stops_cd.append([tid, name])
    if stops_x:
        fig.add_trace(go.Scatter(
            x=stops_x, y=stops_y, mode="markers", name=f"stopped by ASHA ({len(stops_x)})",
            marker=dict(symbol="x-thin", size=11, line=dict(width=2.5, color="#d62728")),
            customdata=stops_cd,
            hovertemplate="<b>%{customdata[1]}</b><br>trial %{customdata[0]} stopped by ASHA after epoch "
                          "%{x}<extra></extra>",
            meta={"role": "asha-stop"},
        ))
        for rung in sorted(set(stops_x)):
            fig.add_vline(x=rung, line=dict(color="#d62728", width=1, dash="dot"), opacity=0.5)
    max_epochs = run.search.get("max_epochs")
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(title_text="epoch" + (f" (of {max_epochs})" if max_epochs else ""),
                     dtick=1 if ep["epoch"].max() <= 20 else None)
    fig.update_yaxes(title_text=ACC_TITLE)
    caption = ("One line per trial. Red crosses mark where ASHA stopped a trial (dotted lines: the epochs at "
               "which it cut); blue lines trained to the end.")
    return Section(key, title, fig, caption)


def _outcome_of(info: pd.DataFrame, tid: str) -> str:
    return str(info.at[tid, "outcome"]) if tid in info.index else "unknown"
