"""What the report's figures share (private): layout, axis titles and colours, the JSON-safe lists traces
carry, and the helpers every section of nas.report.figures draws with (trial points, hover text,
median trends, log2 axes, the two fidelities, `Section`). evidence_figures uses the layout, titles,
palette and lists too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from ..rundir.schema import MEASURED, json_value
from . import evidence as ev
from .run_data import RunData

# --- layout -----------------------------------------------------------------------------------------
TEMPLATE = "plotly_white"
HOVERLABEL = dict(align="left")


def margin(top: int) -> dict:
    """The figures' margins; only the top one varies (room for a title, subplot titles, a legend)."""
    return dict(l=70, r=30, t=top, b=60)


# The report's section figures: untitled (the page's <h2> is the title), legend above the plot.
LAYOUT = dict(template=TEMPLATE, height=480, margin=margin(40), hoverlabel=HOVERLABEL,
              legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0,
                          itemsizing="constant"))
# Subplot titles sit where the legend goes: lift the legend above them.
SUBPLOT_LEGEND = dict(margin=margin(90), legend=dict(y=1.09))
# evidence_figures' figures carry their own title (fidelity and n), the legend just under it.
TITLED_LAYOUT = dict(template=TEMPLATE, height=460, margin=margin(70), hoverlabel=HOVERLABEL)
LEGEND_UNDER_TITLE = dict(orientation="h", yanchor="bottom", y=1.0, x=0)

ACC_TITLE = "validation accuracy (%)"
ERROR_TITLE = "top-1 validation error (%)"
EDF_TITLE = "cumulative fraction of trials"

# --- colours ----------------------------------------------------------------------------------------
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
MEDIAN_COLOR = "#333333"  # median trends and their intervals


def value_colors(values) -> dict:
    """An ordered colour per distinct numeric value (viridis from small to large)."""
    values = sorted({v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))})
    if not values:
        return {}
    if len(values) == 1:
        return {values[0]: "#3b528b"}
    cols = sample_colorscale("Viridis", [i / (len(values) - 1) * 0.9 for i in range(len(values))])
    return dict(zip(values, cols, strict=True))


def coloraxis(values, label: str) -> dict:
    """A viridis colour axis over log2(values), with a colour bar labelled in the values themselves."""
    vals = sorted({json_value(v) for v in values if v is not None and not math.isnan(v)})
    if not vals:
        return {}
    lo, hi = math.log2(vals[0]), math.log2(vals[-1])
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    ticks = vals if len(vals) <= 6 else [2**k for k in range(math.ceil(lo), math.floor(hi) + 1)]
    return dict(coloraxis=dict(
        colorscale="Viridis", cmin=lo, cmax=hi,
        colorbar=dict(title=dict(text=label), tickvals=[math.log2(t) for t in ticks],
                      ticktext=[int_label(t) for t in ticks], len=0.85, thickness=14),
    ))


# --- values as plain JSON (numpy arrays would be encoded as binary blobs) --------------------------------
def json_list(values) -> list:
    """`schema.json_value` of each: NaN -> None, numpy -> Python, integral floats -> int."""
    return [json_value(v) for v in values]


def float_value(v: Any) -> Any:
    """NaN -> None, numpy -> Python; floats stay floats (unlike `json_value`)."""
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def float_list(values) -> list:
    return [float_value(v) for v in values]


def int_label(v) -> str:
    return str(int(v)) if v == int(v) else f"{v:g}"


# --- the report's sections ----------------------------------------------------------------------------
@dataclass
class Section:
    """One block of the report: a figure (or a note saying why there is none) and a caption."""

    key: str
    title: str
    figure: go.Figure | None = None
    caption: str = ""
    note: str = ""
    table: pd.DataFrame | None = None  # rendered as an HTML table under the figure
    skip: bool = False  # not applicable to this run: left out of the page


def empty_section(key: str, title: str, note: str) -> Section:
    return Section(key, title, note=note)


def fidelities(run: RunData) -> tuple[ev.Fidelity, ev.Fidelity]:
    """The two fidelities the trends, EDFs and importance are drawn at: every live trial at the common
    epoch, and the completed trials. Their frames are run.trials' rows with `accuracy`/`error` replaced
    by the value at that fidelity."""
    return ev.at_common_epoch(run.trials, run.epochs), ev.completed_only(run.trials)


def fid_note(fid: ev.Fidelity) -> str:
    out = ", ".join(f"{n} {why}" for why, n in fid.left_out.items())
    return f" (left out: {out})" if out else ""


def panel_titles(fids) -> list[str]:
    return [fid.title + fid_note(fid) for fid in fids]


# --- per-trial points and their hover text --------------------------------------------------------------
SYMBOLS = {"completed": "circle", "stopped": "circle-open", "running": "diamond-open"}
OUTCOME_LABELS = {"completed": "completed", "stopped": "stopped early by ASHA", "running": "still running"}
HOVER_FIELDS = ("trial_id", "name", "outcome", "cardinality", "width", "depths", "gflops", "mparams",
                "epochs", "acc_pct", "images_per_second")
HOVER = ("<b>%{customdata[1]}</b><br>trial %{customdata[0]} (%{customdata[2]}, %{customdata[8]} epochs)<br>"
         "C=%{customdata[3]}, d=%{customdata[4]}, depths [%{customdata[5]}]<br>"
         "%{customdata[6]:.2f} GFLOPs, %{customdata[7]:.1f} M params, %{customdata[10]:,.0f} images/s<br>"
         "val. accuracy %{customdata[9]:.2f}%<extra></extra>")


def customdata(df: pd.DataFrame) -> list[list]:
    """Each trial's `HOVER_FIELDS`, the trial id first (which tests read)."""
    df = df.assign(acc_pct=100 * df["accuracy"])
    return [[json_value(v) for v in row] for row in df[list(HOVER_FIELDS)].itertuples(index=False)]


def trial_points(data: pd.DataFrame, x: str, color: str, xpos_of, offsets: dict,
                 y: str = "accuracy", scale: float = 100.0, showlegend: bool = True,
                 role: str = "trials") -> list[go.Scatter]:
    """One trace per outcome (the legend toggles them), points coloured by log2(`color`) on the shared
    colour axis (see `coloraxis`) and set side by side by `offsets` (per colour value)."""
    traces = []
    for outcome in MEASURED:
        part = data[(data["outcome"] == outcome) & data[y].notna()]
        if part.empty:
            continue
        xs = [xpos_of(v, offsets.get((v, c), 0.0)) for v, c in zip(part[x], part[color], strict=True)]
        open_symbol = SYMBOLS[outcome].endswith("-open")
        traces.append(go.Scatter(
            x=xs, y=json_list(part[y] * scale), mode="markers",
            name=f"{OUTCOME_LABELS[outcome]} ({len(part)})", legendgroup=outcome, showlegend=showlegend,
            marker=dict(color=json_list(np.log2(part[color].clip(lower=1e-9))), coloraxis="coloraxis", size=9,
                        symbol=SYMBOLS[outcome], line=dict(width=1.6) if open_symbol else dict(width=0.5,
                                                                                               color="white"),
                        opacity=0.8 if open_symbol else 1.0),
            customdata=customdata(part), hovertemplate=HOVER,
            meta={"role": role, "x": x, "y": y, "color": color, "outcome": outcome},
        ))
    return traces


def side_by_side(data: pd.DataFrame, x: str, color: str, spread: float) -> dict:
    """Side-by-side offsets, like grouped bars: at each x value, the colour values present there are
    spread over `spread` (x units, or octaves on a log axis). Keyed by (x value, colour value)."""
    out = {}
    for xv, part in data[data[x].notna()].groupby(x):
        keys = sorted(part[color].dropna().unique())
        n = len(keys)
        for i, k in enumerate(keys):
            out[(xv, k)] = 0.0 if n <= 1 else (i - (n - 1) / 2) * spread / n
    return out


def log_pos(v, off):
    return json_value(v * 2**off)


def lin_pos(v, off):
    return json_value(v + off)


def log2_axis(values) -> dict:
    vals = sorted({json_value(v) for v in values if v is not None and not math.isnan(v)})
    if len(vals) > 6:  # powers of two only, else the labels collide (the widths d of one run)
        vals = [2**k for k in range(math.floor(math.log2(vals[0])), math.ceil(math.log2(vals[-1])) + 1)]
    return dict(type="log", tickvals=vals, ticktext=[int_label(v) for v in vals])


# --- medians ----------------------------------------------------------------------------------------
def spread_traces(data: pd.DataFrame, x: str, xpos, color: str, name: str, showlegend: bool,
                  y: str = "accuracy", scale: float = 100.0) -> list[go.Scatter]:
    """Per x value: min-max range (thin), inter-quartile range (thick) and a median trend line."""
    g = data[data[x].notna() & data[y].notna()].groupby(x)[y]
    if g.ngroups == 0:
        return []
    stats = g.agg(["min", "max", "median", "count", "mean", "std"])
    stats["q1"], stats["q3"] = g.quantile(0.25), g.quantile(0.75)
    xs = [xpos(v) for v in stats.index]
    med = stats["median"] * scale
    common = dict(x=xs, y=json_list(med), mode="markers", hoverinfo="skip", showlegend=False)
    rng = go.Scatter(**common, marker=dict(size=1, color="rgba(0,0,0,0)"), meta={"role": "range"},
                     error_y=dict(type="data", array=json_list((stats["max"] * scale) - med),
                                  arrayminus=json_list(med - stats["min"] * scale), color="rgba(60,60,60,0.35)",
                                  thickness=1.5, width=6))
    iqr = go.Scatter(**common, marker=dict(size=1, color="rgba(0,0,0,0)"), meta={"role": "spread"},
                     error_y=dict(type="data", array=json_list((stats["q3"] * scale) - med),
                                  arrayminus=json_list(med - stats["q1"] * scale), color="rgba(60,60,60,0.55)",
                                  thickness=7, width=0))
    # The trend joins medians of two or more trials only: a single trial's "median" is that trial.
    several = (stats["count"] >= 2).to_numpy()
    text = [f"{x}={int_label(v)}: median {m:.2f}%, n={int(n)}" for v, m, n, ok in
            zip(stats.index, med, stats["count"], several, strict=True) if ok]
    xs_trend = [v for v, ok in zip(xs, several, strict=True) if ok]
    trend = go.Scatter(x=xs_trend, y=json_list(med[several]), mode="lines+markers" if len(xs_trend) > 1 else
                       "markers", name=name, showlegend=showlegend,
                       line=dict(color=color, width=2, dash="dot"),
                       marker=dict(symbol="line-ew-open", size=14, color=color),
                       text=text, hovertemplate="%{text}<extra></extra>", meta={"role": "trend", "x": x})
    return [rng, iqr, trend]
