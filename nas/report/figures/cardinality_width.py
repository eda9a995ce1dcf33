"""The report's plotly figures, built from a loaded run (`nas.report.run_data.RunData`).

Every figure is plain data: traces carry Python lists (not numpy arrays, which plotly would encode
as binary blobs), per-trial point traces carry `meta={"role": "trials", ...}` and the trial id as the
first `customdata` field, so tests (and anyone reading the JSON) can tell which trial is which point.

Accuracies are plotted in percent. Trials stopped early by ASHA were measured after fewer epochs than
completed ones, so no trend, EDF or importance pools them (issue 12: in the default CPU run that made
C=2 look best only because ASHA let the C=2 trials train longer). Those figures are drawn at one
fidelity each (`fidelities`, from nas.report.evidence): every trial at the common epoch (the highest
epoch every live trial reached: the first ASHA rung), and the completed trials alone; each panel's
title says its epoch and n, and medians carry percentile-bootstrap intervals.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from . import evidence as ev
from .evidence_figures import importance_figure, rank_scatter
from .importance import searched_columns
from .run_data import RunData, depth_columns
from .schema import MEASURED, OTHER_COLOR, OUTCOME_COLORS, VALIDATION, VALIDATION_CSV, json_value

N_BOOT = 1000  # bootstrap resamples for the medians' intervals (1000 x a few groups: milliseconds)
N_BOOT_IMPORTANCE = 100  # each resample is one optuna evaluation, 15-30 ms (evidence.py): ~3 s a figure
SYMBOLS = {"completed": "circle", "stopped": "circle-open", "running": "diamond-open"}
OUTCOME_LABELS = {"completed": "completed", "stopped": "stopped early by ASHA", "running": "still running"}
HOVER_FIELDS = ("trial_id", "name", "outcome", "cardinality", "width", "depths", "gflops", "mparams",
                "epochs", "acc_pct", "images_per_second")
HOVER = ("<b>%{customdata[1]}</b><br>trial %{customdata[0]} (%{customdata[2]}, %{customdata[8]} epochs)<br>"
         "C=%{customdata[3]}, d=%{customdata[4]}, depths [%{customdata[5]}]<br>"
         "%{customdata[6]:.2f} GFLOPs, %{customdata[7]:.1f} M params, %{customdata[10]:,.0f} images/s<br>"
         "val. accuracy %{customdata[9]:.2f}%<extra></extra>")
LAYOUT = dict(template="plotly_white", height=480, margin=dict(l=70, r=30, t=40, b=60),
              hoverlabel=dict(align="left"),
              legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0,
                          itemsizing="constant"))
# Subplot titles sit where the legend goes: lift the legend above them.
SUBPLOT_LEGEND = dict(margin=dict(l=70, r=30, t=90, b=60), legend=dict(y=1.09))
ACC_TITLE = "validation accuracy (%)"


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


# --- helpers --------------------------------------------------------------------------------------
def _list(values) -> list:
    return [json_value(v) for v in values]


def _customdata(df: pd.DataFrame) -> list[list]:
    df = df.assign(acc_pct=100 * df["accuracy"])
    return [[json_value(v) for v in row] for row in df[list(HOVER_FIELDS)].itertuples(index=False)]


def fidelities(run: RunData) -> tuple[ev.Fidelity, ev.Fidelity]:
    """The two fidelities the trends, EDFs and importance are drawn at: every live trial at the common
    epoch, and the completed trials. Their frames are run.trials' rows with `accuracy`/`error` replaced
    by the value at that fidelity."""
    return ev.at_common_epoch(run.trials, run.epochs), ev.completed_only(run.trials)


def _fid_note(fid: ev.Fidelity) -> str:
    out = ", ".join(f"{n} {why}" for why, n in fid.left_out.items())
    return f" (left out: {out})" if out else ""


def value_colors(values) -> dict:
    """An ordered colour per distinct numeric value (viridis from small to large)."""
    values = sorted({v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))})
    if not values:
        return {}
    if len(values) == 1:
        return {values[0]: "#3b528b"}
    cols = sample_colorscale("Viridis", [i / (len(values) - 1) * 0.9 for i in range(len(values))])
    return dict(zip(values, cols, strict=True))


def _int_label(v) -> str:
    return str(int(v)) if v == int(v) else f"{v:g}"


def _offsets(data: pd.DataFrame, x: str, color: str, spread: float) -> dict:
    """Side-by-side offsets, like grouped bars: at each x value, the colour values present there are
    spread over `spread` (x units, or octaves on a log axis). Keyed by (x value, colour value)."""
    out = {}
    for xv, part in data[data[x].notna()].groupby(x):
        keys = sorted(part[color].dropna().unique())
        n = len(keys)
        for i, k in enumerate(keys):
            out[(xv, k)] = 0.0 if n <= 1 else (i - (n - 1) / 2) * spread / n
    return out


def pareto_front(df: pd.DataFrame, cost: str, value: str = "accuracy") -> pd.DataFrame:
    """Trials not dominated by a cheaper-or-equal, more accurate one, sorted by cost."""
    d = df[df[cost].notna() & df[value].notna()].sort_values([cost, value], ascending=[True, False])
    keep, best = [], -math.inf
    for idx, v in zip(d.index, d[value], strict=True):
        if v > best:
            keep.append(idx)
            best = v
    return d.loc[keep]


def _spread_traces(data: pd.DataFrame, x: str, xpos, color: str, name: str, showlegend: bool,
                   y: str = "accuracy", scale: float = 100.0) -> list[go.Scatter]:
    """Per x value: min-max range (thin), inter-quartile range (thick) and a median trend line."""
    g = data[data[x].notna() & data[y].notna()].groupby(x)[y]
    if g.ngroups == 0:
        return []
    stats = g.agg(["min", "max", "median", "count", "mean", "std"])
    stats["q1"], stats["q3"] = g.quantile(0.25), g.quantile(0.75)
    xs = [xpos(v) for v in stats.index]
    med = stats["median"] * scale
    common = dict(x=xs, y=_list(med), mode="markers", hoverinfo="skip", showlegend=False)
    rng = go.Scatter(**common, marker=dict(size=1, color="rgba(0,0,0,0)"), meta={"role": "range"},
                     error_y=dict(type="data", array=_list((stats["max"] * scale) - med),
                                  arrayminus=_list(med - stats["min"] * scale), color="rgba(60,60,60,0.35)",
                                  thickness=1.5, width=6))
    iqr = go.Scatter(**common, marker=dict(size=1, color="rgba(0,0,0,0)"), meta={"role": "spread"},
                     error_y=dict(type="data", array=_list((stats["q3"] * scale) - med),
                                  arrayminus=_list(med - stats["q1"] * scale), color="rgba(60,60,60,0.55)",
                                  thickness=7, width=0))
    text = [f"{x}={_int_label(v)}: median {m:.2f}%, n={int(n)}" for v, m, n in
            zip(stats.index, med, stats["count"], strict=True)]
    trend = go.Scatter(x=xs, y=_list(med), mode="lines+markers", name=name, showlegend=showlegend,
                       line=dict(color=color, width=2, dash="dot"),
                       marker=dict(symbol="line-ew-open", size=14, color=color),
                       text=text, hovertemplate="%{text}<extra></extra>", meta={"role": "trend", "x": x})
    return [rng, iqr, trend]


def _trial_points(data: pd.DataFrame, x: str, color: str, xpos_of, offsets: dict,
                  y: str = "accuracy", scale: float = 100.0, showlegend: bool = True,
                  role: str = "trials") -> list[go.Scatter]:
    """One trace per outcome (the legend toggles them), points coloured by log2(`color`) on the shared
    colour axis (see `_coloraxis`) and set side by side by `offsets` (per colour value)."""
    traces = []
    for outcome in MEASURED:
        part = data[(data["outcome"] == outcome) & data[y].notna()]
        if part.empty:
            continue
        xs = [xpos_of(v, offsets.get((v, c), 0.0)) for v, c in zip(part[x], part[color], strict=True)]
        open_symbol = SYMBOLS[outcome].endswith("-open")
        traces.append(go.Scatter(
            x=xs, y=_list(part[y] * scale), mode="markers", name=f"{OUTCOME_LABELS[outcome]} ({len(part)})",
            legendgroup=outcome, showlegend=showlegend,
            marker=dict(color=_list(np.log2(part[color].clip(lower=1e-9))), coloraxis="coloraxis", size=9,
                        symbol=SYMBOLS[outcome], line=dict(width=1.6) if open_symbol else dict(width=0.5,
                                                                                               color="white"),
                        opacity=0.8 if open_symbol else 1.0),
            customdata=_customdata(part), hovertemplate=HOVER,
            meta={"role": role, "x": x, "y": y, "color": color, "outcome": outcome},
        ))
    return traces


def _coloraxis(values, label: str) -> dict:
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
                      ticktext=[_int_label(t) for t in ticks], len=0.85, thickness=14),
    ))


def _log2_axis(values) -> dict:
    vals = sorted({json_value(v) for v in values if v is not None and not math.isnan(v)})
    if len(vals) > 6:  # powers of two only, else the labels collide (the widths d of one run)
        vals = [2**k for k in range(math.floor(math.log2(vals[0])), math.ceil(math.log2(vals[-1])) + 1)]
    return dict(type="log", tickvals=vals, ticktext=[_int_label(v) for v in vals])


def _log_pos(v, off):
    return json_value(v * 2**off)


def _lin_pos(v, off):
    return json_value(v + off)


def _empty(key: str, title: str, note: str) -> Section:
    return Section(key, title, note=note)


# --- figures ---------------------------------------------------------------------------------------
def _median_ci_trace(table: pd.DataFrame, xs: list, fid: ev.Fidelity, by: str, labels: list[str],
                     showlegend: bool) -> go.Scatter:
    """Medians per group with their bootstrap interval (`evidence.grouped_median_ci`'s table), n beside
    each; a group of one trial has no bar (resampling one value says nothing)."""
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
        x=xs, y=_list(med), mode="lines+markers+text", name="median, 95% bootstrap interval",
        showlegend=showlegend, text=text, textposition="middle right", hovertext=hover, hoverinfo="text",
        line=dict(color="#333333", width=2, dash="dot"), marker=dict(symbol="diamond", size=11, color="#333333"),
        error_y=dict(type="data", array=_list(up), arrayminus=_list(down), color="#333333", thickness=2, width=7),
        meta={"role": "median-ci", "by": by, "epoch": fid.epoch, "n": fid.n, "fidelity": fid.label,
              "groups": _list(table[by]), "median": _list(table["median"]), "lo": _list(table["lo"]),
              "hi": _list(table["hi"]), "group_n": _list(table["n"])},
    )


def _panel_titles(fids) -> list[str]:
    return [fid.title + _fid_note(fid) for fid in fids]


def accuracy_vs(run: RunData, x: str, color: str, *, key: str, title: str, x_title: str,
                color_label: str, log_x: bool = True) -> Section:
    """Accuracy against `x` at each fidelity (two panels): the trials as points, the median per
    value of x (per power-of-two bin for the width, whose feasible values are nearly all distinct)
    with a bootstrap interval."""
    if run.measured().empty:
        return _empty(key, title, "No trial has reported an accuracy yet.")
    fids = fidelities(run)
    binned = x == "width"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=_panel_titles(fids))
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
            xs = _list(table[by] * 2**0.5 if log_x else table[by])
            labels = [ev.bin_label(v) for v in table[by]]
        else:
            xs, labels = _list(table[by]), [_int_label(v) for v in table[by]]
        fig.add_trace(_median_ci_trace(table.rename(columns={by: x}) if binned else table, xs, fid, x, labels,
                                       col == 1), row=1, col=col)
        offsets = _offsets(data, x, color, 0.45 if log_x else 0.6)
        for tr in _trial_points(data, x, color, _log_pos if log_x else _lin_pos, offsets, showlegend=col == 1):
            tr.meta = {**tr.meta, "epoch": fid.epoch, "fidelity": fid.label}
            fig.add_trace(tr, row=1, col=col)
        xaxis = _log2_axis(all_x) if log_x else dict(dtick=1)
        fig.update_xaxes(title_text=x_title, row=1, col=col, **xaxis)
        fig.update_yaxes(title_text=ACC_TITLE if col == 1 else None, row=1, col=col)
    fig.update_layout(**LAYOUT, **_coloraxis(all_x if x == color else pd.concat(
        [f.frame[color] for f in fids if not f.frame.empty]), color_label))
    fig.update_layout(**SUBPLOT_LEGEND)
    n_failed = run.failed()
    failed_note = ""
    if len(n_failed):
        per = n_failed.groupby(x)["trial_id"].count() if x in n_failed else pd.Series(dtype=int)
        parts = ", ".join(f"{_int_label(k)}: {v}" for k, v in per.items())
        failed_note = (f" {len(n_failed)} failed trial(s) have no accuracy and are not plotted"
                       f"{f' (by {x}: {parts})' if parts else ''}; they are listed under Failed trials.")
    group = "power-of-two bin of d (8-15, 16-31...)" if binned else x
    caption = (f"Left: every trial's accuracy measured at the same epoch, the highest one all of them reached "
               f"(ASHA's first rung); right: the completed trials only. Trials stopped early are never mixed "
               f"with trials that trained longer: that would reward whichever {x} ASHA happened to keep. "
               f"Points are coloured by {color_label}; the dotted line is the median per {group} with its "
               f"95% percentile-bootstrap interval (n written beside it; a group of one has no interval, "
               f"with n=2 the interval is just the two values).{failed_note} Hover a point for its architecture.")
    return Section(key, title, fig, caption)


def accuracy_vs_depth(run: RunData) -> Section:
    key, title = "depth", "Accuracy vs depth (total and per stage)"
    data = run.measured()
    stages = depth_columns(data)
    if data.empty or data["depth_total"].isna().all():
        return _empty(key, title, "No trial has reported an accuracy yet.")
    # One fidelity: every trial at the common epoch (the completed ones alone are too few per depth
    # value to show a trend in a short search).
    fid = fidelities(run)[0]
    base = data = fid.frame
    if base.empty:
        return _empty(key, title, f"No accuracy at a common epoch ({fid.label}).")
    basis_text = f"the same trials ({fid.title})"
    title = f"{title} — {fid.title}"
    cols = ["depth_total", *stages]
    fig = make_subplots(rows=1, cols=len(cols), shared_yaxes=True, horizontal_spacing=0.025,
                        subplot_titles=["total (blocks)"] + [f"stage {i + 1}" for i in range(len(stages))])
    for i, col in enumerate(cols, start=1):
        d = data[data[col].notna()]
        for tr in _spread_traces(base, col, lambda v: json_value(v), "#333333", "median (trend)", i == 1):
            fig.add_trace(tr, row=1, col=i)
        for tr in _trial_points(d, col, "cardinality", _lin_pos, _offsets(d, col, "cardinality", 0.6),
                                showlegend=i == 1):
            fig.add_trace(tr, row=1, col=i)
        span = d[col].max() - d[col].min() if not d.empty else 0
        fig.update_xaxes(title_text="blocks" if i > 1 else "blocks in all stages", tick0=0,
                         dtick=1 if span <= 6 else 2 if span <= 12 else 5, row=1, col=i)
    fig.update_yaxes(title_text=ACC_TITLE, row=1, col=1)
    fig.update_layout(**LAYOUT, **_coloraxis(data["cardinality"], "C"))
    fig.update_layout(height=480, **SUBPLOT_LEGEND)
    caption = (f"All trials at {fid.label}{_fid_note(fid)}. "
               f"Left: accuracy against the total number of bottleneck blocks; then one panel per stage "
               f"(blocks in that stage). Points coloured by cardinality C; symbols as above; grey bars and "
               f"dotted line: range, inter-quartile range and median over {basis_text}.")
    return Section(key, title, fig, caption)


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
        return _empty(key, title, "No completed trial yet.")
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
        x=x_seed, y=_list(done["error"]), mode="markers", name="one seed",
        marker=dict(size=9, color="#1f77b4", opacity=0.8), customdata=_customdata(done),
        hovertemplate=HOVER.replace("<extra></extra>", "<br>seed %{text}<extra></extra>"),
        text=[str(json_value(s)) for s in done["seed"]], meta={"role": "trials", "x": "setting"},
    ))
    fig.add_trace(go.Scatter(
        x=[i + 0.08 for i in range(len(table))], y=_list(table["error % (mean)"]), mode="lines+markers",
        name="mean ± std over seeds", line=dict(color="#d62728"), marker=dict(size=11, symbol="diamond"),
        error_y=dict(type="data", array=[s if s is not None else 0 for s in _list(table["± std"])],
                     visible=True),
        text=list(table["setting"]), meta={"role": "mean"},
        hovertemplate="%{text}: %{y:.2f}% mean error<extra></extra>",
    ))
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(title_text="cardinality C, with the bottleneck width d matched to it", tickmode="array",
                     tickvals=list(range(len(table))), ticktext=ticktext, range=[-0.5, len(table) - 0.5],
                     showgrid=False, zeroline=False)
    fig.update_yaxes(title_text="top-1 validation error (%)")
    caption = (f"Each setting keeps {what} about equal by shrinking the width d as the cardinality C grows "
               "(the ResNeXt paper's Table 2). Blue: one point per seed; red: mean ± standard deviation.")
    return Section(key, title, fig, caption, table=table)


def error_edfs(run: RunData) -> Section:
    key, title = "edf", "Error EDFs per cardinality"
    fids = fidelities(run)
    if all(f.frame.empty for f in fids):
        return _empty(key, title, "No trial has reported an accuracy yet.")
    colors = value_colors(pd.concat([f.frame["cardinality"] for f in fids]))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=_panel_titles(fids))
    for col, fid in enumerate(fids, start=1):
        base = fid.frame[fid.frame["cardinality"].notna()]
        for c, color in colors.items():
            err = np.sort(base.loc[base["cardinality"] == c, "error"].to_numpy())
            n = len(err)
            if not n:
                continue
            ys = np.arange(1, n + 1) / n
            fig.add_trace(go.Scatter(
                x=_list(np.r_[err[0], err]), y=_list(np.r_[0.0, ys]), mode="lines", line_shape="hv",
                name=f"C={_int_label(c)}", legendgroup=str(c), showlegend=col == 1,
                line=dict(color=color, width=2.5),
                hovertemplate=(f"C={_int_label(c)}, {fid.label}: %{{y:.0%}} of {n} trials have error "
                               "≤ %{x:.2f}%<extra></extra>"),
                meta={"role": "edf", "cardinality": json_value(c), "n": n, "epoch": fid.epoch,
                      "fidelity": fid.label},
            ), row=1, col=col)
        fig.update_xaxes(title_text="top-1 validation error (%)", row=1, col=col)
        fig.update_yaxes(title_text="cumulative fraction of trials" if col == 1 else None, range=[0, 1.02],
                         tickformat=".0%", row=1, col=col)
    fig.update_layout(**LAYOUT, legend_title_text="cardinality:")
    fig.update_layout(**SUBPLOT_LEGEND)
    caption = ("Empirical distribution function of the error per cardinality (Radosavovic et al., "
               "\"On Network Design Spaces for Visual Recognition\"): a curve further left and higher means "
               "the cardinality gives good models more often. Left: every trial at the common epoch; right: "
               "the completed trials. Hover a curve for its n; a curve of one or two trials says little.")
    return Section(key, title, fig, caption)


def accuracy_vs_cost(run: RunData, cost: str) -> Section:
    """cost: 'gflops' or 'mparams'. Points coloured by cardinality, Pareto front, FLOPs budget band."""
    is_flops = cost == "gflops"
    key = "flops" if is_flops else "params"
    res = run.search.get("budget_resolution")
    unit = f"GFLOPs at {res}×{res}" if (is_flops and res) else ("GFLOPs" if is_flops else "M parameters")
    title = f"Accuracy vs {'FLOPs' if is_flops else 'parameters'} with the Pareto front"
    data = run.measured()
    data = data[data[cost].notna()]
    if data.empty:
        return _empty(key, title, "No trial has reported an accuracy yet.")
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
        if isinstance(tol, int | float) and tol > 0:
            fig.add_vrect(x0=b * (1 - tol), x1=b * (1 + tol), fillcolor="#2ca02c", opacity=0.08, line_width=0)
        fig.add_vline(x=b, line=dict(color="#2ca02c", dash="dash"),
                      annotation_text=f"budget {b:g} GFLOPs" + (f" ± {tol:.0%}" if tol else ""),
                      annotation_position="top left")
    for tr in _trial_points(data, cost, "cardinality", _lin_pos, {}):
        fig.add_trace(tr)
    front = pareto_front(base, cost)
    if not front.empty:
        fig.add_trace(go.Scatter(
            x=_list(front[cost]), y=_list(front["accuracy"] * 100), mode="lines+markers", line_shape="hv",
            name=f"Pareto front ({len(front)})", line=dict(color="#d62728", width=2),
            marker=dict(size=14, symbol="circle-open", color="#d62728", line=dict(width=2)),
            customdata=_customdata(front), hovertemplate=HOVER.replace("<b>", "<b>Pareto: "),
            meta={"role": "pareto", "cost": cost, "epoch": fid.epoch, "n": fid.n},
        ))
    fig.update_layout(**LAYOUT, **_coloraxis(data["cardinality"], "C"))
    fig.update_xaxes(title_text=unit)
    fig.update_yaxes(title_text=ACC_TITLE)
    caption = (f"Red: the trials no cheaper trial beats (higher accuracy for fewer {unit}), over "
               f"{basis_text}." + (" Green band: the FLOPs budget and its tolerance." if is_flops else ""))
    return Section(key, title, fig, caption)


def speed(run: RunData) -> Section:
    key, title = "speed", "Accuracy vs measured training speed"
    data = run.measured()
    data = data[data["images_per_second"].notna()]
    if data.empty:
        return _empty(key, title, "No trial has reported a training throughput yet.")
    res = run.search.get("train_resolution")
    unit = f"training throughput (images/s{f' at {res}×{res}' if res else ''})"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.09, column_widths=[0.55, 0.45],
                        subplot_titles=["accuracy vs throughput", "throughput per cardinality"])
    for tr in _trial_points(data, "images_per_second", "cardinality", _lin_pos, {}):
        fig.add_trace(tr, row=1, col=1)
    for tr in _spread_traces(data, "cardinality", lambda v: json_value(v), "#333333", "median throughput", False,
                             y="images_per_second", scale=1.0):
        fig.add_trace(tr, row=1, col=2)
    for tr in _trial_points(data, "cardinality", "cardinality", _log_pos, {}, y="images_per_second",
                            scale=1.0, showlegend=False, role="trials-throughput"):
        fig.add_trace(tr, row=1, col=2)
    fig.update_xaxes(title_text=unit, row=1, col=1)
    fig.update_yaxes(title_text=ACC_TITLE, row=1, col=1)
    fig.update_xaxes(title_text="cardinality C", row=1, col=2, **_log2_axis(data["cardinality"]))
    fig.update_yaxes(title_text=unit, row=1, col=2)
    fig.update_layout(**LAYOUT, **_coloraxis(data["cardinality"], "C"))
    fig.update_layout(**SUBPLOT_LEGEND)
    gflops = data["gflops"]
    spread = (f" All these trials cost {gflops.min():.2f}–{gflops.max():.2f} GFLOPs." if gflops.notna().any()
              else "")
    caption = ("Mean training throughput measured during each trial. At (nearly) equal FLOPs, more and "
               "thinner paths (larger C) run slower on a GPU: grouped convolutions use it less efficiently. "
               f"Right: throughput per cardinality (median dotted).{spread}")
    return Section(key, title, fig, caption)


def learning_curves(run: RunData) -> Section:
    key, title = "curves", "Learning curves (validation accuracy per epoch)"
    ep = run.epochs[run.epochs["val_accuracy"].notna()]
    if ep.empty:
        return _empty(key, title, "No epoch has been reported yet (epochs.csv is missing or empty).")
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
            x=_list(g["epoch"]), y=_list(g["val_accuracy"] * 100), mode="lines+markers",
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


def importance(run: RunData, which: str = "common") -> Section:
    """optuna.importance of the searcher's parameters at one fidelity ("common": every trial at the
    common epoch; "completed"), with its spread over bootstrap resamples of the trials; below
    evidence.MIN_IMPORTANCE_TRIALS trials the figure says so instead of drawing bars."""
    common, done = fidelities(run)
    fid = common if which == "common" else done
    key = "importance" if which == "common" else "importance-completed"
    title = f"Hyperparameter importance — {fid.title}"
    params = [c for c in searched_columns(fid.frame) if fid.frame[c].notna().any()]
    if not params:
        return _empty(key, title, "trials.csv has no param_ columns: the sampler's parameters are unknown.")
    imp = ev.importance_with_spread(fid.frame, params, n_boot=N_BOOT_IMPORTANCE)
    fig = importance_figure(imp, fid)
    if imp.reason:
        caption = (f"{imp.reason}. A bar chart from so few trials would look confident and mean little; "
                   "run more trials (or read the trends above).")
    else:
        caption = (f"{imp.evaluator} from optuna.importance on the trials {fid.title}{_fid_note(fid)}: bars are "
                   f"the mean over {imp.n_boot} bootstrap resamples of the trials, whiskers their 95% interval; "
                   "overlapping intervals mean the data do not order those parameters.")
        if imp.constant:
            caption += f" Constant, so left out: {', '.join(c.removeprefix('param_') for c in imp.constant)}."
    return Section(key, title, fig, caption)


def ranking_holds(run: RunData) -> Section:
    """Proxy (search) vs validated accuracy per architecture, from nas.validate's validation.csv."""
    key, title = "validation", "Does the search's ranking hold?"
    rel = f"{VALIDATION}/{VALIDATION_CSV}"  # through the run's location: local, shared or s3://
    if not run.location.is_file(rel):
        return Section(key, title, skip=True)
    v = pd.read_csv(io.StringIO(run.location.read_text(rel)), dtype={"arch_id": str})
    if v.empty:
        return _empty(key, title, f"{VALIDATION}/{VALIDATION_CSV} has no rows yet.")
    proxy = v.drop_duplicates("arch_id").set_index("arch_id")["proxy_accuracy"]
    ra = ev.rank_agreement(proxy, v.rename(columns={"arch_id": "arch", "validated_accuracy": "accuracy"}))
    epochs = ", ".join(str(int(e)) for e in sorted(v.loc[v["status"] == "ok", "epochs"].unique()))
    res = ", ".join(str(int(r)) for r in sorted(v["train_resolution"].dropna().unique()))
    fig = rank_scatter(ra, proxy_label="search (proxy) accuracy",
                       validated_label=f"validated accuracy at {epochs} epochs, {res}x{res}, mean ± std over seeds")
    names = v.drop_duplicates("arch_id").set_index("arch_id")
    per = ra.per_arch.assign(name=lambda t: t["arch"].map(names["name"]), role=lambda t: t["arch"].map(names["role"]))
    table = pd.DataFrame({
        "proxy rank": per["proxy_rank"].astype(int), "architecture": per["name"], "trial": per["arch"],
        "role": per["role"], "proxy acc. %": (100 * per["proxy"]).round(2),
        "validated acc. % (mean)": (100 * per["mean"]).round(2), "± std": (100 * per["std"]).round(2),
        "seeds": per["n_seeds"], "validated rank": per["validated_rank"].astype(int)})
    if ra.reason:
        verdict = ra.reason + "."
    else:
        verdict = (f"{ra.describe()} (95% bootstrap intervals over architectures). "
                   + ("The search's best stays best." if ra.best_stays_best else
                      f"The search's best is not the validated best: {100 * ra.best_gap:.2f} points behind it."))
        if ra.tau_lo <= 0:
            verdict += " The interval of tau includes 0: these architectures do not show that the proxy ranks."
    caption = (f"Each architecture retrained by nas.validate ({len(v)} trials): the search's accuracy (its "
               f"proxy: short training, possibly stopped early by ASHA) against the accuracy after {epochs} "
               f"epochs, mean and standard deviation over seeds. {verdict}")
    return Section(key, title, fig, caption, table=table)


def build_sections(run: RunData) -> list[Section]:
    """All figure sections, in report order."""
    sections = [
        accuracy_vs(run, "cardinality", "width", key="cardinality", title="Accuracy vs cardinality",
                    x_title="cardinality C (parallel paths, stage 1; log scale)", color_label="d"),
        accuracy_vs(run, "width", "cardinality", key="width", title="Accuracy vs bottleneck width",
                    x_title="bottleneck width d (channels per path, stage 1; log scale)", color_label="C"),
        accuracy_vs_depth(run),
        matched_sweep(run),
        error_edfs(run),
        accuracy_vs_cost(run, "gflops"),
        accuracy_vs_cost(run, "mparams"),
        speed(run),
        learning_curves(run),
        importance(run, "common"),
        importance(run, "completed"),
        ranking_holds(run),
    ]
    return [s for s in sections if not s.skip]


__all__ = ["Section", "build_sections", "fidelities", "importance", "pareto_front"]
