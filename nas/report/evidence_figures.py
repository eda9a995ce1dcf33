"""Plotly figures for `evidence.py`'s results: medians with bootstrap intervals, EDF overlays,
importance with its spread (or why there is none), proxy vs validated accuracy.

Each builder takes what `evidence` returned, and titles say the fidelity and n the data hold, so no
figure can show pooled fidelities without saying so. Like the report's other figures, traces carry
plain lists and a `meta={"role": ...}` that tests read. No page assembly here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ._plotting import (
    ACC_TITLE,
    COLORS,
    EDF_TITLE,
    ERROR_TITLE,
    LEGEND_UNDER_TITLE,
    TITLED_LAYOUT,
    float_list,
    float_value,
    margin,
)
from .evidence import Fidelity, Importance, RankAgreement, RunEdf, bin_label, edf


def _key_label(v: Any) -> str:
    return str(int(v)) if isinstance(v, float | int | np.number) and float(v).is_integer() else str(v)


def median_ci_figure(table: pd.DataFrame, by: str, fidelity: Fidelity, *, what: str, x_title: str,
                     y_title: str = ACC_TITLE, ci: float = 0.95, log_x: bool = False,
                     bins: bool = False) -> go.Figure:
    """Median per group with its bootstrap interval (`evidence.grouped_median_ci`'s table), n written
    at each point; groups with one trial are open markers without a bar.

    bins: the groups are `evidence.log2_bin` lower edges, labelled '8-15'.
    """
    fig = go.Figure()
    t = table.reset_index(drop=True)
    xs = [bin_label(v) for v in t[by]] if bins else float_list(t[by])
    with_ci = t["has_ci"].to_numpy(dtype=bool)
    for has, name, symbol in ((True, f"median, {ci:.0%} bootstrap interval", "circle"),
                              (False, "median of a single trial (no interval)", "circle-open")):
        part = t[with_ci == has]
        if part.empty:
            continue
        px = [x for x, keep in zip(xs, with_ci == has, strict=True) if keep]
        err = dict(type="data", array=float_list(part["hi"] - part["median"]),
                   arrayminus=float_list(part["median"] - part["lo"]), thickness=2, width=8) if has else None
        fig.add_trace(go.Scatter(
            x=px, y=float_list(part["median"]), mode="markers+text", name=name, error_y=err,
            marker=dict(size=11, symbol=symbol, color="#1f77b4", line=dict(width=2)),
            text=[f"n={int(k)}" for k in part["n"]], textposition="middle right",
            customdata=[[float_value(a), float_value(b), int(k)]
                        for a, b, k in zip(part["lo"], part["hi"], part["n"], strict=True)],
            hovertemplate=(f"{by}=%{{x}}: median %{{y:.2f}} (n=%{{customdata[2]}})"
                           + ("<br>interval %{customdata[0]:.2f} to %{customdata[1]:.2f}" if has else "")
                           + "<extra></extra>"),
            meta={"role": "median-ci" if has else "median-single", "by": by, "epoch": fidelity.epoch,
                  "n": fidelity.n},
        ))
    fig.update_layout(**TITLED_LAYOUT, title=dict(text=f"{what} — {fidelity.title}", x=0.01),
                      legend=LEGEND_UNDER_TITLE)
    xaxis: dict = dict(type="category") if bins else (dict(type="log", tickvals=float_list(t[by]),
                                                          ticktext=[_key_label(v) for v in t[by]])
                                                     if log_x else {})
    fig.update_xaxes(title_text=x_title, **xaxis)
    fig.update_yaxes(title_text=y_title)
    return fig


def _edf_trace(label: str, values, color: str, role: str, extra: dict) -> go.Scatter:
    curve = edf(values)
    n = len(curve)
    x = curve["value"].to_numpy()
    y = curve["fraction"].to_numpy()
    return go.Scatter(
        x=float_list(np.r_[x[:1], x]), y=float_list(np.r_[0.0, y]), mode="lines", line_shape="hv",
        name=f"{label} (n={n})", line=dict(color=color, width=2.5), showlegend=True,
        hovertemplate=f"{label}: %{{y:.0%}} of {n} trials have error ≤ %{{x:.2f}}%<extra></extra>",
        meta={"role": role, "label": label, "n": n, **extra},
    )


def edf_figure(groups: Mapping[str, Sequence[float]], fidelity: Fidelity, *, what: str) -> go.Figure:
    """Error EDFs of groups of one fidelity's trials (e.g. per cardinality), n in each legend entry."""
    fig = go.Figure()
    for i, (label, values) in enumerate(groups.items()):
        fig.add_trace(_edf_trace(label, values, COLORS[i % len(COLORS)], "edf", {"epoch": fidelity.epoch}))
    _edf_layout(fig, f"{what} — {fidelity.title}")
    return fig


def edf_overlay(curves: Sequence[RunEdf], *, what: str = "Error EDFs by run") -> go.Figure:
    """Several runs' error EDFs (`evidence.edf_by_run`), each legend entry with n and fidelity; the
    title names the shared fidelity, or says that the runs' fidelities differ."""
    fig = go.Figure()
    for i, c in enumerate(curves):
        fig.add_trace(_edf_trace(f"{c.label}, {c.fidelity.label}", c.fidelity.frame["error"],
                                 COLORS[i % len(COLORS)], "edf-run", {"run": c.label, "epoch": c.fidelity.epoch}))
    labels = {c.fidelity.label for c in curves}
    shared = next(iter(labels)) if len(labels) == 1 else "fidelities differ between runs: compare with care"
    _edf_layout(fig, f"{what} — {shared}")
    return fig


def _edf_layout(fig: go.Figure, title: str) -> None:
    fig.update_layout(**TITLED_LAYOUT, title=dict(text=title, x=0.01), legend=LEGEND_UNDER_TITLE)
    fig.update_xaxes(title_text=ERROR_TITLE)
    fig.update_yaxes(title_text=EDF_TITLE, range=[0, 1.02], tickformat=".0%")


def importance_figure(imp: Importance, fidelity: Fidelity, ci: float = 0.95) -> go.Figure:
    """Mean importance over bootstrap resamples with its interval; or, when `imp.reason` is set, a
    figure holding only that sentence (no bars: numbers from too few trials look confident)."""
    fig = go.Figure()
    if imp.reason:
        fig.add_annotation(text=imp.reason, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                           font=dict(size=15))
        fig.update_layout(**{**TITLED_LAYOUT, "height": 220},
                          title=dict(text=f"Parameter importance — {fidelity.title}", x=0.01),
                          meta={"role": "importance-none", "reason": imp.reason})
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
    t = imp.table.iloc[::-1]
    fig.add_trace(go.Bar(
        x=float_list(t["mean"]), y=[p.removeprefix("param_") for p in t["param"]], orientation="h",
        marker_color="#1f77b4",
        error_x=dict(type="data", array=float_list(t["hi"] - t["mean"]),
                     arrayminus=float_list(t["mean"] - t["lo"])),
        customdata=[[float_value(a), float_value(b)] for a, b in zip(t["lo"], t["hi"], strict=True)],
        hovertemplate="%{y}: mean %{x:.0%}, interval %{customdata[0]:.0%} to %{customdata[1]:.0%}<extra></extra>",
        meta={"role": "importance", "n": imp.n, "n_boot": imp.n_boot},
    ))
    fig.update_layout(**{**TITLED_LAYOUT, "height": max(280, 110 + 40 * len(t))},
                      title=dict(text=f"Parameter importance ({imp.evaluator}) — {fidelity.title}, "
                                      f"{ci:.0%} interval over {imp.n_boot} resamples", x=0.01))
    fig.update_xaxes(title_text="importance (normalised, sums to 1)", tickformat=".0%", rangemode="tozero")
    return fig


def rank_scatter(ra: RankAgreement, *, proxy_label: str = "search (proxy) accuracy",
                 validated_label: str = "validated accuracy, mean ± std over seeds") -> go.Figure:
    """Proxy vs validated accuracy per architecture (seed std as error bars), tau and rho with their
    intervals in the title, the proxy's best and the validated best marked."""
    p = ra.per_arch
    fig = go.Figure(go.Scatter(
        x=float_list(p["proxy"] * 100), y=float_list(p["mean"] * 100), mode="markers", name="architecture",
        error_y=dict(type="data", array=float_list(p["std"].fillna(0) * 100), thickness=1.5, width=5),
        marker=dict(size=10, color="#1f77b4"), text=[str(a) for a in p["arch"]],
        customdata=[[int(k)] for k in p["n_seeds"]],
        hovertemplate="%{text}: proxy %{x:.2f}%, validated %{y:.2f}% (%{customdata[0]} seeds)<extra></extra>",
        meta={"role": "rank-scatter", "n": ra.n},
    ))
    for arch, name, symbol in ((ra.proxy_best, "proxy's best", "star-open"),
                               (ra.validated_best, "validated best", "diamond-open")):
        row = p[p["arch"] == arch]
        if row.empty:
            continue
        fig.add_trace(go.Scatter(x=float_list(row["proxy"] * 100), y=float_list(row["mean"] * 100),
                                 mode="markers", name=name, marker=dict(size=20, symbol=symbol, line=dict(width=2)),
                                 hoverinfo="skip", meta={"role": "best", "arch": str(arch)}))
    stays = "" if ra.reason else ("<br>the best stays best" if ra.best_stays_best else
                                  f"<br>the proxy's best is not the validated best (gap {100 * ra.best_gap:.2f} pts)")
    fig.update_layout(**{**TITLED_LAYOUT, "margin": margin(90)},
                      title=dict(text=ra.describe() + stays, x=0.01),
                      legend=LEGEND_UNDER_TITLE)
    fig.update_xaxes(title_text=f"{proxy_label} (%)")
    fig.update_yaxes(title_text=f"{validated_label} (%)")
    return fig


__all__ = ["edf_figure", "edf_overlay", "importance_figure", "median_ci_figure", "rank_scatter"]
