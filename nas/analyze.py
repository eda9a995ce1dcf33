"""`python -m nas.analyze RUN_DIR`: the search's report, `RUN_DIR/report.html`.

One self-contained page (plotly.js is embedded, so it works offline) with the figures of
`nas.figures`, a header summarising the run, the top-k table (linking to each architecture's
resnext-arch/1 JSON, written to `RUN_DIR/architectures/<trial_id>.json`) and the failed trials.
Also writes `RUN_DIR/trials.parquet` beside the search's trials.csv, and PNG copies of the figures
under `RUN_DIR/figures/` when kaleido is installed.

Each figure's JSON sits in the page in a `<script type="application/json" id="figure-KEY">` element,
which is what the page draws from and what tests read back.

Works on partial runs (a search still running or interrupted) and on failed trials: whatever is
missing becomes a note in the page, never an exception.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from search_spaces import save_architecture

from .cli import Parser, UsageError, positive_int, run_main
from .figures import Section, build_sections
from .run_data import FAILED, OUTCOMES, RunData, load_run, safe_name, trials_for_export

DEFAULT_TOP = 10


def write_report(run_dir: str | Path, top: int = DEFAULT_TOP) -> Path:
    """Analyse RUN_DIR; write report.html, trials.parquet and architectures/*.json; return the report's path.

    Raises `nas.run_data.RunDataError` (a UsageError) when RUN_DIR is not a run directory.
    """
    return _write_report(run_dir, top)[0]


def _write_report(run_dir: str | Path, top: int) -> tuple[Path, RunData]:
    if top < 1:
        raise UsageError(f"--top: expected a positive integer, got {top}")
    run = load_run(run_dir)
    run_dir = run.run_dir
    write_parquet(run)
    arch_links = write_architectures(run)
    sections = build_sections(run)
    page = render(run, sections, arch_links, top)
    path = run_dir / "report.html"
    tmp = path.with_name(f".report.html.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    write_pngs(run, sections)
    return path, run


def write_parquet(run: RunData) -> Path | None:
    path = run.run_dir / "trials.parquet"
    try:
        trials_for_export(run.trials).to_parquet(path, index=False)
    except (ImportError, ValueError, TypeError, OSError) as exc:  # pyarrow missing or odd column
        run.warnings.append(f"trials.parquet not written: {exc}")
        return None
    return path


def write_architectures(run: RunData) -> dict[str, str]:
    """architectures/<trial_id>.json for every trial with a valid arch; {trial_id: relative link}."""
    links = {}
    for tid, arch in zip(run.trials["trial_id"], run.trials["architecture"], strict=True):
        if arch is None:
            continue
        rel = f"architectures/{safe_name(tid)}.json"
        save_architecture(arch, run.run_dir / rel)
        links[tid] = rel
    return links


def write_pngs(run: RunData, sections: list[Section]) -> list[Path]:
    """PNG copies of the figures, only where kaleido (and the browser it drives) is available."""
    if importlib.util.find_spec("kaleido") is None:
        return []
    out = []
    for s in sections:
        if s.figure is None:
            continue
        path = run.run_dir / "figures" / f"{s.key}.png"
        path.parent.mkdir(exist_ok=True)
        try:
            s.figure.write_image(path, width=1200, height=s.figure.layout.height or 500, scale=2)
        except Exception as exc:  # noqa: BLE001 - optional output: any kaleido/browser failure just skips
            run.warnings.append(f"PNG copies skipped: {exc}")
            break
        out.append(path)
    return out


# --- HTML ------------------------------------------------------------------------------------------
CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0; color: #222;
       background: #fafafa; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 28px 48px; }
h1 { font-size: 1.7em; margin: 0.4em 0 0.1em; }
h2 { font-size: 1.3em; margin: 0 0 0.3em; }
.sub { color: #666; margin: 0 0 1em; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 16px 20px;
          margin: 18px 0; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 4px 36px; }
.summary div { padding: 3px 0; border-bottom: 1px solid #f0f0f0; display: flex; }
.summary b { flex: 0 0 100px; color: #555; font-weight: 600; }
.best { margin-top: 12px; font-size: 1.1em; padding: 10px 14px; background: #eef5ff; border-radius: 5px; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 9px; margin: 2px 4px 2px 0; color: #fff;
         font-size: 0.9em; }
.caption { color: #444; font-size: 0.93em; max-width: 1100px; line-height: 1.4; }
.note { color: #8a6d3b; background: #fcf8e3; padding: 8px 12px; border-radius: 4px; }
.warn { color: #8a6d3b; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; margin-top: 8px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.l, th.l { text-align: left; }
td.reason { white-space: normal; max-width: 560px; text-align: left; }
nav { font-size: 0.9em; line-height: 1.8; }
nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
a { color: #1f5fa8; }
.figure { width: 100%; }
"""

DRAW = """
document.querySelectorAll('script[type="application/json"][id^="figure-"]').forEach(function (el) {
  var fig = JSON.parse(el.textContent);
  var div = document.getElementById(el.id.replace('figure-', 'plot-'));
  Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false,
    toImageButtonOptions: {format: 'png', filename: el.id.replace('figure-', ''), scale: 2}});
});
"""

OUTCOME_BADGE = {"completed": "#1f77b4", "stopped": "#7f7f7f", "running": "#ff7f0e", "pending": "#aaaaaa",
                 "diverged": "#d62728", "oom": "#8c564b", "error": "#e377c2"}


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def figure_json(fig) -> str:
    # "</" would end the <script> element early; "<\/" is the same JSON string.
    return pio.to_json(fig, validate=False).replace("</", "<\\/")


def _fmt_flops(v) -> str:
    return f"{v / 1e9:.2f} GFLOPs" if isinstance(v, int | float) and v else "unknown"


def _num(v, fmt: str, empty: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return empty
    return format(v, fmt)


def render(run: RunData, sections: list[Section], arch_links: dict[str, str], top: int) -> str:
    s = run.search
    space = s.get("space", "unknown space")
    title = f"ResNeXt search: {space}, {_fmt_flops(s.get('budget_flops'))}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body><main>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">{esc(run.run_dir.resolve())} &middot; report generated '
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        header(run, arch_links),
        nav(sections),
        top_table(run, arch_links, top),
    ]
    for sec in sections:
        parts.append(section_html(sec))
    parts.append(failed_table(run))
    parts.append(files_section(run))
    parts.append(f"</main><script>{DRAW}</script></body></html>")
    return "\n".join(parts)


def header(run: RunData, arch_links: dict[str, str]) -> str:
    s = run.search
    budget = s.get("budget_flops")
    tol = s.get("tolerance")
    res = s.get("budget_resolution")
    budget_text = _fmt_flops(budget)
    if isinstance(tol, int | float) and tol:
        budget_text += f" ± {tol:.0%}"
    if res:
        budget_text += f" at {res}×{res}"
    items = [
        ("budget", budget_text),
        ("space", s.get("space", "unknown")),
        ("dataset", s.get("dataset", "unknown")),
        ("train res.", f"{s['train_resolution']}×{s['train_resolution']}" if s.get("train_resolution")
         else "unknown"),
        ("objective", s.get("objective", "unknown")),
        ("sampler", s.get("sampler", "unknown")),
        ("matched on", s.get("match") or "—"),
        ("max epochs", s.get("max_epochs", "unknown")),
        ("started", s.get("started", "unknown")),
    ]
    versions = s.get("versions")
    if isinstance(versions, dict) and versions:
        items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    grid = "".join(f"<div><b>{esc(k)}</b>{esc(v)}</div>" for k, v in items)
    counts = run.outcome_counts()
    badges = " ".join(f'<span class="badge" style="background:{OUTCOME_BADGE.get(o, "#555")}">'
                      f"{esc(o)}: {n}</span>" for o, n in counts.items())
    total = len(run.trials)
    ranked = run.ranked()
    if ranked.empty:
        best = "<div class='best'>No trial has reported an accuracy yet.</div>"
    else:
        b = ranked.iloc[0]
        link = arch_links.get(b["trial_id"])
        name = (f'<a href="{esc(link)}">{esc(b["name"])}</a>' if link else esc(b["name"]))
        provisional = "" if b["outcome"] == "completed" else (
            f" <i>(provisional: {esc(b['outcome'])}, no trial has completed yet)</i>")
        best = (f"<div class='best'><b>Best architecture:</b> {name} &mdash; "
                f"{_num(b['accuracy'] * 100, '.2f')}% validation accuracy, "
                f"{_num(b['gflops'], '.2f')} GFLOPs, "
                f"{_num(b['mparams'], '.1f')} M params, trial {esc(b['trial_id'])}{provisional}</div>")
    warn = "".join(f"<p class='warn'>⚠ {esc(w)}</p>" for w in run.warnings)
    state = ""
    if counts.get("running") or counts.get("pending"):
        state = " <i>(search still running or interrupted: figures show the trials so far)</i>"
    return (f"<section id='summary'><h2>Run</h2><div class='summary'>{grid}</div>"
            f"<p><b>{total} trial(s):</b> {badges}{state}</p>{best}{warn}</section>")


def nav(sections: list[Section]) -> str:
    links = ['<a href="#top-k">Top architectures</a>']
    links += [f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections]
    links += ['<a href="#failed">Failed trials</a>', '<a href="#files">Files</a>']
    return f"<nav>{''.join(links)}</nav>"


def top_table(run: RunData, arch_links: dict[str, str], top: int) -> str:
    ranked = run.ranked().head(top)
    head = f"<section id='top-k'><h2>Top {top} architectures</h2>"
    if ranked.empty:
        return head + "<p class='note'>No trial has reported an accuracy yet.</p></section>"
    cols = ["rank", "architecture", "JSON", "trial", "outcome", "accuracy %", "error %", "GFLOPs", "M params",
            "images/s", "epochs", "C", "d", "depths", "seed"]
    rows = []
    for rank, (_, r) in enumerate(ranked.iterrows(), start=1):
        link = arch_links.get(r["trial_id"])
        cells = [
            str(rank), esc(r["name"]),
            f'<a href="{esc(link)}">{esc(link.split("/")[-1])}</a>' if link else "",
            esc(r["trial_id"]), esc(r["outcome"]), _num(r["accuracy"] * 100, ".2f"),
            _num(r["error"], ".2f"), _num(r["gflops"], ".2f"), _num(r["mparams"], ".1f"),
            _num(r["images_per_second"], ",.0f"), _num(r["epochs"], ".0f"), _num(r["cardinality"], ".0f"),
            _num(r["width"], ".0f"), esc(r["depths"]), _num(r["seed"], ".0f"),
        ]
        rows.append("<tr>" + "".join(f"<td{_left(i)}>{c}</td>" for i, c in enumerate(cells)) + "</tr>")
    th = "".join(f"<th{_left(i)}>{c}</th>" for i, c in enumerate(cols))
    note = ("<p class='caption'>Completed trials first, by best validation accuracy; trials stopped by ASHA "
            "or still running follow (their accuracy is from fewer epochs). Export them with "
            f"<code>python -m nas.export {esc(run.run_dir)} --top {top}</code>.</p>")
    return f"{head}{note}<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"


def _left(column: int) -> str:
    return " class='l'" if column in (1, 2, 3, 4, 13) else ""


def section_html(sec: Section) -> str:
    out = [f"<section id='{esc(sec.key)}'><h2>{esc(sec.title)}</h2>"]
    if sec.figure is None:
        out.append(f"<p class='note'>{esc(sec.note)}</p>")
    else:
        out.append(f"<div class='figure' id='plot-{esc(sec.key)}'></div>")
        out.append(f"<script type='application/json' id='figure-{esc(sec.key)}'>{figure_json(sec.figure)}"
                   "</script>")
        if sec.caption:
            out.append(f"<p class='caption'>{esc(sec.caption)}</p>")
    if sec.table is not None and not sec.table.empty:
        out.append(df_table(sec.table))
    out.append("</section>")
    return "".join(out)


def df_table(df: pd.DataFrame) -> str:
    th = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _cell(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else esc(v)


def failed_table(run: RunData) -> str:
    failed = run.failed()
    head = "<section id='failed'><h2>Failed trials</h2>"
    if failed.empty:
        return head + "<p>No trial failed.</p></section>"
    rows = "".join(
        f"<tr><td class='l'>{esc(r['trial_id'])}</td><td class='l'>{esc(r['name'])}</td>"
        f"<td class='l'><span class='badge' style='background:{OUTCOME_BADGE.get(r['outcome'], '#555')}'>"
        f"{esc(r['outcome'])}</span></td><td>{_num(r['gflops'], '.2f')}</td>"
        f"<td>{_num(r['mparams'], '.1f')}</td>"
        f"<td>{_num(r['epochs'], '.0f')}</td><td class='reason'>{esc(r['reason'])}</td></tr>"
        for _, r in failed.iterrows())
    return (f"{head}<p class='caption'>{len(failed)} trial(s) ended as {', '.join(FAILED)}: they are not "
            "plotted as accuracies (a diverged trial's accuracy is chance level, an out-of-memory one has "
            "none).</p><table><thead><tr><th class='l'>trial</th><th class='l'>architecture</th>"
            "<th class='l'>outcome</th><th>GFLOPs</th><th>M params</th><th>epochs</th>"
            f"<th class='l'>reason</th></tr></thead><tbody>{rows}</tbody></table></section>")


def files_section(run: RunData) -> str:
    files = [("trials.csv", "one row per trial (written by the search)"),
             ("trials.parquet", "the same table, typed"),
             ("epochs.csv", "one row per trial per epoch"),
             ("search.json", "the search's settings"),
             ("architectures/", "every trial's architecture as resnext-arch/1 JSON")]
    items = "".join(f"<li><a href='{esc(f)}'>{esc(f)}</a>: {esc(d)}</li>" for f, d in files
                    if (run.run_dir / f).exists())
    return f"<section id='files'><h2>Files</h2><ul>{items}</ul></section>"


# --- command line ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.analyze", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="the search's run directory (contains trials.csv)")
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                        help=f"rows of the top-k table (default {DEFAULT_TOP})")
    args = parser.parse_args(argv)
    path, run = _write_report(args.run_dir, args.top)
    for warning in run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    counts = ", ".join(f"{n} {o}" for o, n in run.outcome_counts().items()) or "no trials"
    print(f"{path} ({len(run.trials)} trials: {counts})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["OUTCOMES", "main", "write_report"]
