"""The latency section: accuracy against the latency a device's table predicts (search_spaces.latency), with
the Pareto front, and the table's measured milliseconds per GFLOP of each cardinality."""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go

from search_spaces import Architecture, LatencyError, LatencyTable, load_table, time_per_gflop

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
from .cost import pareto_front

TITLE = "Accuracy vs predicted latency with the Pareto front"


def run_table(run: RunData) -> tuple[LatencyTable | None, str]:
    """The run's latency table (search.json's settings.latency_table, else the cache's table for this
    machine at the run's resolution) and where it came from; (None, why) when there is none."""
    path = (run.search.get("settings") or {}).get("latency_table")
    try:
        if path:
            return load_table(path), str(path)
        from search_spaces import cache_dir, current_meta  # current_meta imports torch: only without a path

        res = run.search.get("budget_resolution") or 224
        cached = cache_dir() / current_meta(resolution=int(res)).file_name()
        if cached.exists():
            return load_table(cached), str(cached)
    except (LatencyError, OSError, ValueError) as exc:
        return None, str(exc)
    return None, "no latency table for this run's device"


def predicted_ms(table: LatencyTable, arch_json) -> float:
    """The table's prediction for one trial's architecture; NaN when it lacks a part (or the arch is unknown)."""
    try:
        return table.predict(Architecture.from_dict(json.loads(arch_json)))
    except (LatencyError, TypeError, ValueError, KeyError):
        return float("nan")


def speed_table(table: LatencyTable) -> pd.DataFrame:
    rows = [{"C": c, "ms per GFLOP": round(v, 3), "blocks measured": n} for c, (v, n) in time_per_gflop(table).items()]
    return pd.DataFrame(rows)


def accuracy_vs_latency(run: RunData) -> Section:
    table, source = run_table(run)
    if table is None:
        space = run.search.get("space") or "resnext-imagenet"
        return empty_section("latency", TITLE, f"No latency table ({source}): build one with `python -m nas.profile "
                                               f"--space {space}`, then rerun the report.")
    data = run.measured().copy()
    data["latency_ms"] = [predicted_ms(table, a) for a in data.get("arch", pd.Series([None] * len(data)))]
    data = data[data["latency_ms"].notna()]
    if data.empty:
        return Section("latency", TITLE, note=f"The latency table ({source}) predicts none of the measured trials.",
                       table=speed_table(table))
    common, done = fidelities(run)
    fid = done if done.n else common
    base = fid.frame.copy()
    base["latency_ms"] = [predicted_ms(table, a) for a in base.get("arch", pd.Series([None] * len(base)))]
    fig = go.Figure()
    for tr in trial_points(data, "latency_ms", "cardinality", lin_pos, {}):
        fig.add_trace(tr)
    front = pareto_front(base, "latency_ms")
    if not front.empty:
        fig.add_trace(go.Scatter(
            x=json_list(front["latency_ms"]), y=json_list(front["accuracy"] * 100), mode="lines+markers",
            line_shape="hv", name=f"Pareto front ({len(front)})", line=dict(color="#d62728", width=2),
            marker=dict(size=14, symbol="circle-open", color="#d62728", line=dict(width=2)),
            customdata=customdata(front), hovertemplate=HOVER.replace("<b>", "<b>Pareto: "),
            meta={"role": "pareto", "cost": "latency_ms", "epoch": fid.epoch, "n": fid.n},
        ))
    fig.update_layout(**LAYOUT, **coloraxis(data["cardinality"], "C"))
    fig.update_xaxes(title_text=f"predicted latency, ms ({table.meta.device}, {table.meta.threads} threads, "
                                f"batch {table.meta.batch})")
    fig.update_yaxes(title_text=ACC_TITLE)
    caption = (f"Predicted by the latency table {source} (the sum of its measured parts). Red: the trials no "
               f"faster trial beats, over the trials {fid.title}. The table: milliseconds per GFLOP of the "
               "measured blocks of each cardinality C on that device (equal FLOPs, unequal time).")
    return Section("latency", TITLE, fig, caption, table=speed_table(table))
