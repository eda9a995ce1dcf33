"""The depth section: accuracy against the total number of blocks and against each stage's, every trial
at the common epoch, with the range, inter-quartile range and median per value."""

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
    fid_note,
    fidelities,
    lin_pos,
    side_by_side,
    spread_traces,
    trial_points,
)
from ..run_data import RunData, depth_columns


def accuracy_vs_depth(run: RunData) -> Section:
    key, title = "depth", "Accuracy vs depth (total and per stage)"
    data = run.measured()
    stages = depth_columns(data)
    if data.empty or data["depth_total"].isna().all():
        return empty_section(key, title, "No trial has reported an accuracy yet.")
    # One fidelity: every trial at the common epoch (the completed ones alone are too few per depth
    # value to show a trend in a short search).
    fid = fidelities(run)[0]
    base = data = fid.frame
    if base.empty:
        return empty_section(key, title, f"No accuracy at a common epoch ({fid.label}).")
    basis_text = f"the same trials ({fid.title})"
    title = f"{title} — {fid.title}"
    cols = ["depth_total", *stages]
    fig = make_subplots(rows=1, cols=len(cols), shared_yaxes=True, horizontal_spacing=0.025,
                        subplot_titles=["total (blocks)"] + [f"stage {i + 1}" for i in range(len(stages))])
    for i, col in enumerate(cols, start=1):
        d = data[data[col].notna()]
        for tr in spread_traces(base, col, lambda v: json_value(v), MEDIAN_COLOR, "median (trend)", i == 1):
            fig.add_trace(tr, row=1, col=i)
        for tr in trial_points(d, col, "cardinality", lin_pos, side_by_side(d, col, "cardinality", 0.6),
                                showlegend=i == 1):
            fig.add_trace(tr, row=1, col=i)
        span = d[col].max() - d[col].min() if not d.empty else 0
        fig.update_xaxes(title_text="blocks" if i > 1 else "blocks in all stages", tick0=0,
                         dtick=1 if span <= 6 else 2 if span <= 12 else 5, row=1, col=i)
    fig.update_yaxes(title_text=ACC_TITLE, row=1, col=1)
    fig.update_layout(**LAYOUT, **coloraxis(data["cardinality"], "C"))
    fig.update_layout(height=480, **SUBPLOT_LEGEND)
    caption = (f"All trials at {fid.label}{fid_note(fid)}. "
               f"Left: accuracy against the total number of bottleneck blocks; then one panel per stage "
               f"(blocks in that stage). Points coloured by cardinality C; symbols as above; grey bars and "
               f"dotted line: range, inter-quartile range and median over {basis_text}.")
    return Section(key, title, fig, caption)
