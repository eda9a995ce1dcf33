"""The cardinality and width sections: accuracy against C, and against d, one panel per fidelity, with
the median per value (per power-of-two bin of d) and its bootstrap interval."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import evidence as ev
from .._plotting import (
    ACC_TITLE,
    LAYOUT,
    MEDIAN_COLOR,
    SUBPLOT_LEGEND,
    Section,
    coloraxis,
    empty_section,
    fidelities,
    int_label,
    json_list,
    lin_pos,
    log2_axis,
    log_pos,
    panel_titles,
    side_by_side,
    trial_points,
)
from ..run_data import RunData

N_BOOT = 1000  # bootstrap resamples for the medians' intervals (1000 x a few groups: milliseconds)


def _median_ci_trace(table: pd.DataFrame, xs: list, fid: ev.Fidelity, by: str, labels: list[str],
                     showlegend: bool) -> go.Scatter:
    """Medians per group with their bootstrap interval (`evidence.grouped_median_ci`'s table), n beside
    each. Groups of one trial are left out of the drawn line (their "median" is the trial itself, which
    the diamond would hide, and a line through single trials shows noise as a trend); `meta` keeps
    every group."""
    meta = {"role": "median-ci", "by": by, "epoch": fid.epoch, "n": fid.n, "fidelity": fid.label,
            "groups": json_list(table[by]), "median": json_list(table["median"]),
            "lo": json_list(table["lo"]), "hi": json_list(table["hi"]), "group_n": json_list(table["n"])}
    drawn = (table["n"] >= 2).to_numpy()
    meta["drawn"] = [g for g, ok in zip(meta["groups"], drawn, strict=True) if ok]
    table = table[drawn]
    xs, labels = [x for x, ok in zip(xs, drawn, strict=True) if ok], [lab for lab, ok in zip(labels, drawn,
                                                                                               strict=True) if ok]
    med = table["median"] * 100
    up = [(h * 100 - m) if ok else 0.0 for h, m, ok in zip(table["hi"], med, table["has_ci"], strict=True)]
    down = [(m - lo * 100) if ok else 0.0 for lo, m, ok in zip(table["lo"], med, table["has_ci"], strict=True)]
    text = [f"n={int(k)}" for k in table["n"]]
    hover = [f"{by} {lab}: median {m:.2f}% of n={int(k)}" + (
        f", 95% interval {lo * 100:.2f}-{hi * 100:.2f}%" + (" (n=2: the interval is the two values)"
                                                           if k == 2 else "") if ok else ", no interval")
             for lab, m, k, lo, hi, ok in zip(labels, med, table["n"], table["lo"], table["hi"], table["has_ci"],
                                              strict=True)]
    return go.Scatter(
        x=xs, y=json_list(med), mode="lines+markers+text" if len(xs) > 1 else "markers+text",
        name="median, 95% bootstrap interval",
        showlegend=showlegend, text=text, textposition="middle right", hovertext=hover, hoverinfo="text",
        line=dict(color=MEDIAN_COLOR, width=2, dash="dot"),
        marker=dict(symbol="diamond", size=11, color=MEDIAN_COLOR),
        error_y=dict(type="data", array=json_list(up), arrayminus=json_list(down), color=MEDIAN_COLOR, thickness=2,
                     width=7),
        meta=meta,
    )


def accuracy_vs(run: RunData, x: str, color: str, *, key: str, title: str, x_title: str,
                color_label: str, log_x: bool = True) -> Section:
    """Accuracy against `x` at each fidelity (two panels): the trials as points, the median per
    value of x (per power-of-two bin for the width, whose feasible values are nearly all distinct)
    with a bootstrap interval."""
    if run.measured().empty:
        return empty_section(key, title, "No trial has reported an accuracy yet.")
    fids = fidelities(run)
    binned = x == "width"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=panel_titles(fids))
    all_x = pd.concat([f.frame[x] for f in fids if not f.frame.empty] or [pd.Series(dtype=float)])
    for col, fid in enumerate(fids, start=1):
        data = fid.frame[fid.frame[x].notna() & fid.frame["accuracy"].notna()]
        if data.empty:
            continue
        by = x
        if binned:
            data = data.assign(_bin=ev.log2_bin(data[x]))
            by = "_bin"
        table = ev.grouped_median_ci(data, by, "accuracy", n_boot=N_BOOT)
        if binned:  # the median sits at the bin's geometric centre
            xs = json_list(table[by] * 2**0.5 if log_x else table[by])
            labels = [ev.bin_label(v) for v in table[by]]
        else:
            xs, labels = json_list(table[by]), [int_label(v) for v in table[by]]
        fig.add_trace(_median_ci_trace(table.rename(columns={by: x}) if binned else table, xs, fid, x, labels,
                                       col == 1), row=1, col=col)
        offs = side_by_side(data, x, color, 0.45 if log_x else 0.6)
        for tr in trial_points(data, x, color, log_pos if log_x else lin_pos, offs, showlegend=col == 1):
            tr.meta = {**tr.meta, "epoch": fid.epoch, "fidelity": fid.label}
            fig.add_trace(tr, row=1, col=col)
        xaxis = log2_axis(all_x) if log_x else dict(dtick=1)
        fig.update_xaxes(title_text=x_title, row=1, col=col, **xaxis)
        fig.update_yaxes(title_text=ACC_TITLE if col == 1 else None, row=1, col=col)
    fig.update_layout(**LAYOUT, **coloraxis(all_x if x == color else pd.concat(
        [f.frame[color] for f in fids if not f.frame.empty]), color_label))
    fig.update_layout(**SUBPLOT_LEGEND)
    n_failed = run.failed()
    failed_note = ""
    if len(n_failed):
        per = n_failed.groupby(x)["trial_id"].count() if x in n_failed else pd.Series(dtype=int)
        parts = ", ".join(f"{int_label(k)}: {v}" for k, v in per.items())
        failed_note = (f" {len(n_failed)} failed trial(s) have no accuracy and are not plotted"
                       f"{f' (by {x}: {parts})' if parts else ''}; they are listed under Failed trials.")
    group = "power-of-two bin of d (8-15, 16-31...)" if binned else x
    caption = (f"Left: every trial's accuracy measured at the same epoch, the highest one all of them reached "
               f"(ASHA's first rung); right: the completed trials only. Trials stopped early are never mixed "
               f"with trials that trained longer: that would reward whichever {x} ASHA happened to keep. "
               f"Points are coloured by {color_label}; the dotted line is the median per {group} with its "
               f"95% percentile-bootstrap interval (n written beside it; a value tried by one trial only "
               f"has no median drawn, the trial is its own point; with n=2 the interval is just the two "
               f"values).{failed_note} Hover a point for its architecture.")
    return Section(key, title, fig, caption)
