"""The capacity-matched sweep section (the ResNeXt paper's Table 2): error against cardinality at matched
parameters or FLOPs, one point per seed and the mean ± std per setting, with the table."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ...rundir.schema import json_value
from .._plotting import ERROR_TITLE, HOVER, LAYOUT, Section, customdata, empty_section, json_list
from ..run_data import RunData


def matched_sweep(run: RunData) -> Section:
    """The paper's Table 2 / Figure: capacity-matched settings, one point per seed."""
    key, title = "matched", "Capacity-matched sweep: error vs cardinality"
    match = run.search.get("match")
    what = {"params": "parameters", "flops": "FLOPs"}.get(match, "capacity")
    if match:
        title += f" (matched on {what})"
    sampler = run.search.get("sampler")
    if not match and sampler != "grid":
        return Section(key, title, skip=True)  # not a capacity-matched sweep: no such section
    done = run.completed()
    if done.empty:
        return empty_section(key, title, "No completed trial yet.")
    rows = []
    for (c, d, depths), g in done.groupby(["cardinality", "width", "depths"], sort=True):
        err = g["error"]
        rows.append({
            "setting": f"{int(c)}×{int(d)}d", "C": int(c), "d": int(d), "bottleneck width C·d": int(c * d),
            "depths": depths, "GFLOPs": round(float(g["gflops"].mean()), 2),
            "M params": round(float(g["mparams"].mean()), 2), "seeds": len(g),
            "error % (mean)": round(float(err.mean()), 2),
            "± std": round(float(err.std()), 2) if len(g) > 1 else None,
            "best error %": round(float(err.min()), 2),
        })
    table = pd.DataFrame(rows).sort_values(["C", "d"]).reset_index(drop=True)
    pos = {(r.C, r.d, r.depths): i for i, r in enumerate(table.itertuples())}
    ticktext = [f"C={r.C}<br>d={r.d}" for r in table.itertuples()]
    fig = go.Figure()
    x_seed = [pos[(int(c), int(d), dp)] - 0.08 for c, d, dp in
              zip(done["cardinality"], done["width"], done["depths"], strict=True)]
    fig.add_trace(go.Scatter(
        x=x_seed, y=json_list(done["error"]), mode="markers", name="one seed",
        marker=dict(size=9, color="#1f77b4", opacity=0.8), customdata=customdata(done),
        hovertemplate=HOVER.replace("<extra></extra>", "<br>seed %{text}<extra></extra>"),
        text=[str(json_value(s)) for s in done["seed"]], meta={"role": "trials", "x": "setting"},
    ))
    fig.add_trace(go.Scatter(
        x=[i + 0.08 for i in range(len(table))], y=json_list(table["error % (mean)"]), mode="lines+markers",
        name="mean ± std over seeds", line=dict(color="#d62728"), marker=dict(size=11, symbol="diamond"),
        error_y=dict(type="data", array=[s if s is not None else 0 for s in json_list(table["± std"])],
                     visible=True),
        text=list(table["setting"]), meta={"role": "mean"},
        hovertemplate="%{text}: %{y:.2f}% mean error<extra></extra>",
    ))
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(title_text="cardinality C, with the bottleneck width d matched to it", tickmode="array",
                     tickvals=list(range(len(table))), ticktext=ticktext, range=[-0.5, len(table) - 0.5],
                     showgrid=False, zeroline=False)
    fig.update_yaxes(title_text=ERROR_TITLE)
    caption = (f"Each setting keeps {what} about equal by shrinking the width d as the cardinality C grows "
               "(the ResNeXt paper's Table 2). Blue: one point per seed; red: mean ± standard deviation.")
    return Section(key, title, fig, caption, table=table)
