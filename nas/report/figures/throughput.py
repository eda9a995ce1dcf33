"""The speed section: accuracy against the training throughput measured in each trial, and the
throughput per cardinality."""

from __future__ import annotations

from plotly.subplots import make_subplots

from ...rundir.schema import json_value
from .._plotting import (
    ACC_TITLE,
    LAYOUT,
    MEDIAN_COLOR,
    SUBPLOT_LEGEND,
    Section,
    coloraxis,
    empty_section,
    lin_pos,
    log2_axis,
    log_pos,
    spread_traces,
    trial_points,
)
from ..run_data import RunData


def speed(run: RunData) -> Section:
    key, title = "speed", "Accuracy vs measured training speed"
    data = run.measured()
    data = data[data["images_per_second"].notna()]
    if data.empty:
        return empty_section(key, title, "No trial has reported a training throughput yet.")
    res = run.search.get("train_resolution")
    unit = f"training throughput (images/s{f' at {res}×{res}' if res else ''})"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.09, column_widths=[0.55, 0.45],
                        subplot_titles=["accuracy vs throughput", "throughput per cardinality"])
    for tr in trial_points(data, "images_per_second", "cardinality", lin_pos, {}):
        fig.add_trace(tr, row=1, col=1)
    for tr in spread_traces(data, "cardinality", lambda v: json_value(v), MEDIAN_COLOR, "median throughput", False,
                             y="images_per_second", scale=1.0):
        fig.add_trace(tr, row=1, col=2)
    for tr in trial_points(data, "cardinality", "cardinality", log_pos, {}, y="images_per_second",
                            scale=1.0, showlegend=False, role="trials-throughput"):
        fig.add_trace(tr, row=1, col=2)
    fig.update_xaxes(title_text=unit, row=1, col=1)
    fig.update_yaxes(title_text=ACC_TITLE, row=1, col=1)
    fig.update_xaxes(title_text="cardinality C", row=1, col=2, **log2_axis(data["cardinality"]))
    fig.update_yaxes(title_text=unit, row=1, col=2)
    fig.update_layout(**LAYOUT, **coloraxis(data["cardinality"], "C"))
    fig.update_layout(**SUBPLOT_LEGEND)
    gflops = data["gflops"]
    spread = (f" All these trials cost {gflops.min():.2f}–{gflops.max():.2f} GFLOPs." if gflops.notna().any()
              else "")
    caption = ("Mean training throughput measured during each trial. At (nearly) equal FLOPs, more and "
               "thinner paths (larger C) run slower on a GPU: grouped convolutions use it less efficiently. "
               f"Right: throughput per cardinality (median dotted).{spread}")
    return Section(key, title, fig, caption)
