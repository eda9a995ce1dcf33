"""The error EDFs section: the error's empirical distribution per cardinality, one panel per fidelity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...rundir.schema import json_value
from .._plotting import (
    EDF_TITLE,
    ERROR_TITLE,
    LAYOUT,
    SUBPLOT_LEGEND,
    Section,
    empty_section,
    fidelities,
    int_label,
    json_list,
    panel_titles,
    value_colors,
)
from ..run_data import RunData


def error_edfs(run: RunData) -> Section:
    key, title = "edf", "Error EDFs per cardinality"
    fids = fidelities(run)
    if all(f.frame.empty for f in fids):
        return empty_section(key, title, "No trial has reported an accuracy yet.")
    colors = value_colors(pd.concat([f.frame["cardinality"] for f in fids]))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=panel_titles(fids))
    for col, fid in enumerate(fids, start=1):
        base = fid.frame[fid.frame["cardinality"].notna()]
        for c, color in colors.items():
            err = np.sort(base.loc[base["cardinality"] == c, "error"].to_numpy())
            n = len(err)
            if not n:
                continue
            ys = np.arange(1, n + 1) / n
            fig.add_trace(go.Scatter(
                x=json_list(np.r_[err[0], err]), y=json_list(np.r_[0.0, ys]), mode="lines", line_shape="hv",
                name=f"C={int_label(c)}", legendgroup=str(c), showlegend=col == 1,
                line=dict(color=color, width=2.5),
                hovertemplate=(f"C={int_label(c)}, {fid.label}: %{{y:.0%}} of {n} trials have error "
                               "≤ %{x:.2f}%<extra></extra>"),
                meta={"role": "edf", "cardinality": json_value(c), "n": n, "epoch": fid.epoch,
                      "fidelity": fid.label},
            ), row=1, col=col)
        fig.update_xaxes(title_text=ERROR_TITLE, row=1, col=col)
        fig.update_yaxes(title_text=EDF_TITLE if col == 1 else None, range=[0, 1.02],
                         tickformat=".0%", row=1, col=col)
    fig.update_layout(**LAYOUT, legend_title_text="cardinality:")
    fig.update_layout(**SUBPLOT_LEGEND)
    caption = ("Empirical distribution function of the error per cardinality (Radosavovic et al., "
               "\"On Network Design Spaces for Visual Recognition\"): a curve further left and higher means "
               "the cardinality gives good models more often. Left: every trial at the common epoch; right: "
               "the completed trials. Hover a curve for its n; a curve of one or two trials says little.")
    return Section(key, title, fig, caption)
