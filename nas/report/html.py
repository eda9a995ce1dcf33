"""The report page: one self-contained HTML file (plotly.js embedded, so it works offline).

A header summarising the run, the top-k table (linking to each architecture's resnext-arch/1 JSON),
the figures of nas.report.figures and the failed trials. Each figure's JSON sits in the page in a
`<script type="application/json" id="figure-KEY">` element, which is what the page draws from and
what tests read back.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone

import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from search_spaces import smallest_resolution, stage_map_sizes

from ..rundir.schema import (
    ARCHITECTURES,
    EPOCHS_CSV,
    FAILED,
    OTHER_COLOR,
    OUTCOME_COLORS,
    SEARCH_JSON,
    TRIALS_CSV,
    TRIALS_PARQUET,
)
from .figures import Section
from .run_data import RunData

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
.filters { margin: 6px 0; font-size: 0.9em; }
.filters input, .filters select { margin-right: 14px; padding: 2px 6px; }
.scroll { max-height: 560px; overflow: auto; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th.asc::after { content: " \\25B2"; } table.sortable th.desc::after { content: " \\25BC"; }
"""

DRAW = """
document.querySelectorAll('script[type="application/json"][id^="figure-"]').forEach(function (el) {
  var fig = JSON.parse(el.textContent);
  var div = document.getElementById(el.id.replace('figure-', 'plot-'));
  Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false,
    toImageButtonOptions: {format: 'png', filename: el.id.replace('figure-', ''), scale: 2}});
});
"""

# The trial table (id='trials'): click a column header to sort (again to reverse), type to filter rows by
# any cell, pick an outcome. Numeric cells sort by their data-v value. Plain JS: the page stays offline.
TABLE_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('asc');
      table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v, c;
        if (x !== undefined && y !== undefined) { c = (x === '' ? Infinity : +x) - (y === '' ? Infinity : +y); }
        else { c = a.cells[col].textContent.localeCompare(b.cells[col].textContent); }
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll('.filters').forEach(function (box) {
  var table = document.getElementById(box.dataset.table);
  var text = box.querySelector('input'), outcome = box.querySelector('select'), count = box.querySelector('.count');
  function apply() {
    var q = text.value.toLowerCase(), o = outcome.value, shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) && (!o || r.dataset.outcome === o);
      r.style.display = ok ? '' : 'none';
      shown += ok ? 1 : 0;
    });
    count.textContent = shown + ' of ' + table.tBodies[0].rows.length + ' trials';
  }
  text.addEventListener('input', apply);
  outcome.addEventListener('change', apply);
  apply();
});
"""


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
        f'<p class="sub">{esc(run.where)} &middot; report generated '
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        header(run, arch_links),
        nav(sections),
        top_table(run, arch_links, top),
        trial_table(run, arch_links),
    ]
    for sec in sections:
        parts.append(section_html(sec))
    parts.append(failed_table(run))
    parts.append(files_section(run))
    parts.append(f"</main><script>{DRAW}{TABLE_JS}</script></body></html>")
    return "\n".join(parts)


def header(run: RunData, arch_links: dict[str, str]) -> str:
    s = run.search
    budget = s.get("budget_flops")
    tol = s.get("tolerance")
    res = s.get("budget_resolution")
    budget_text = _fmt_flops(budget)
    if isinstance(tol, int | float) and tol and isinstance(budget, int | float) and budget:
        budget_text += f" (feasible {budget * (1 - tol) / 1e9:.2f}–{budget / 1e9:.2f})"
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
    badges = " ".join(f'<span class="badge" style="background:{OUTCOME_COLORS.get(o, OTHER_COLOR)}">'
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
    warn = "".join(f"<p class='warn'>⚠ {esc(w)}</p>" for w in [*filter(None, [small_maps_warning(run)]),
                                                                   *run.warnings])
    state = ""
    if counts.get("running") or counts.get("pending"):
        state = " <i>(search still running or interrupted: figures show the trials so far)</i>"
    return (f"<section id='summary'><h2>Run</h2><div class='summary'>{grid}</div>"
            f"<p><b>{total} trial(s):</b> {badges}{state}</p>{best}{warn}</section>")


def small_maps_warning(run: RunData) -> str | None:
    """The warning `nas.search --dry-run` prints, for a run whose trials trained with a stage on 1x1 maps:
    there a 3x3 grouped convolution sees only its centre tap, so that stage's cardinality went untested.
    None when every stage had 2x2 or more (or the resolution or architectures are unknown)."""
    res = run.search.get("train_resolution")
    archs = [a for a in run.trials["architecture"] if a is not None] if len(run.trials) else []
    if not isinstance(res, int) or res < 1 or not archs:
        return None
    maps = stage_map_sizes(archs[0], res)  # the stem and strides fix them: the same for every trial
    small = [i for i, hw in enumerate(maps, 1) if hw < 2]
    if not small:
        return None
    stages = ", ".join(f"stage {i}" for i in small)
    sizes = ", ".join(f"{hw}x{hw}" for hw in maps)
    ok = smallest_resolution(archs[0], 2, start=res)
    return (f"Trained at {res}x{res}: the stages' feature maps are {sizes}. {stages} ran on 1x1 maps, where a "
            f"3x3 grouped convolution sees only its centre tap, so this run says little about "
            f"{'its' if len(small) == 1 else 'their'} cardinality C (--train-resolution {ok} or more keeps "
            "every stage at 2x2 or larger).")


def nav(sections: list[Section]) -> str:
    links = ['<a href="#top-k">Top architectures</a>', '<a href="#trials">All trials</a>']
    links += [f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections]
    links += ['<a href="#failed">Failed trials</a>', '<a href="#files">Files</a>']
    return f"<nav>{''.join(links)}</nav>"


def top_table(run: RunData, arch_links: dict[str, str], top: int) -> str:
    ranked = run.ranked().head(top)
    head = f"<section id='top-k'><h2>Top {top} architectures</h2>"
    if ranked.empty:
        return head + "<p class='note'>No trial has reported an accuracy yet.</p></section>"
    cols = ["rank", "architecture", "JSON", "trial", "outcome", "accuracy %", "error %", "flops_nominal (G)",
            "params_nominal (M)", "images/s", "epochs", "C", "d", "depths", "seed"]
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
            f"<code>python -m nas.export {esc(run.where)} --top {top}</code>.</p>")
    return f"{head}{note}<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"


# The trial table's columns: (header, trials column, format or None for text). Numbers sort as numbers.
TRIAL_TABLE = (("trial", "trial_id", None), ("architecture", "name", None), ("outcome", "outcome", None),
               ("accuracy %", "acc_pct", ".2f"), ("epochs", "epochs", ".0f"), ("GFLOPs", "gflops", ".2f"),
               ("M params", "mparams", ".1f"), ("images/s", "images_per_second", ",.0f"),
               ("C", "cardinality", ".0f"), ("d", "width", ".0f"), ("base width", "base_width", ".0f"),
               ("depths", "depths", None), ("seed", "seed", ".0f"), ("reason", "reason", None))


def trial_table(run: RunData, arch_links: dict[str, str]) -> str:
    """Every trial in one table, sortable by any column and filtered by text and outcome (TABLE_JS):
    the ranked trials first (as in the top-k table), then the others (failed, pending)."""
    head = "<section id='trials'><h2>All trials</h2>"
    if run.trials.empty:
        return head + "<p class='note'>No trial yet.</p></section>"
    ranked = run.ranked()
    rest = run.trials[~run.trials["trial_id"].isin(ranked["trial_id"])]
    rows = pd.concat([ranked, rest]).assign(acc_pct=lambda t: t["accuracy"] * 100)
    body = []
    for _, r in rows.iterrows():
        cells = []
        for _header, col, fmt in TRIAL_TABLE:
            v = r.get(col)
            if fmt is None:
                text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                link = arch_links.get(r["trial_id"]) if col == "name" else None
                shown = f'<a href="{esc(link)}">{esc(text)}</a>' if link else esc(text)
                cls = " class='reason'" if col == "reason" else " class='l'"
                cells.append(f"<td{cls}>{shown}</td>")
            else:
                num = _num(v, "")
                cells.append(f"<td data-v='{esc(num)}'>{_num(v, fmt)}</td>")
        body.append(f"<tr data-outcome='{esc(r['outcome'])}'>{''.join(cells)}</tr>")
    th = "".join(f"<th{'' if fmt else ' class=l'}>{esc(h)}</th>" for h, _, fmt in TRIAL_TABLE)
    options = "".join(f"<option value='{esc(o)}'>{esc(o)} ({n})</option>" for o, n in run.outcome_counts().items())
    filters = ("<div class='filters' data-table='trial-table'><input type='search' placeholder='filter: text in "
               f"any cell'><select><option value=''>every outcome</option>{options}</select>"
               "<span class='count'></span></div>")
    note = ("<p class='caption'>Click a column to sort by it (again to reverse). Accuracy is each trial's best "
            "validation accuracy over the epochs it ran: compare trials stopped by ASHA with completed ones "
            "on the figures' common-epoch panels, not here.</p>")
    return (f"{head}{note}{filters}<div class='scroll'><table class='sortable' id='trial-table'><thead><tr>{th}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>")


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
        f"<td class='l'><span class='badge' style='background:{OUTCOME_COLORS.get(r['outcome'], OTHER_COLOR)}'>"
        f"{esc(r['outcome'])}</span></td><td>{_num(r['gflops'], '.2f')}</td>"
        f"<td>{_num(r['mparams'], '.1f')}</td>"
        f"<td>{_num(r['epochs'], '.0f')}</td><td class='reason'>{esc(r['reason'])}</td></tr>"
        for _, r in failed.iterrows())
    return (f"{head}<p class='caption'>{len(failed)} trial(s) ended as {', '.join(FAILED)}: they are not "
            "plotted as accuracies (a diverged trial's accuracy is chance level, an out-of-memory one has "
            "none).</p><table><thead><tr><th class='l'>trial</th><th class='l'>architecture</th>"
            "<th class='l'>outcome</th><th>flops_nominal (G)</th><th>params_nominal (M)</th><th>epochs</th>"
            f"<th class='l'>reason</th></tr></thead><tbody>{rows}</tbody></table></section>")


def files_section(run: RunData) -> str:
    files = [(TRIALS_CSV, "one row per trial (written by the search)"),
             (TRIALS_PARQUET, "the same table, typed"),
             (EPOCHS_CSV, "one row per trial per epoch"),
             (SEARCH_JSON, "the search's settings"),
             (f"{ARCHITECTURES}/", "every trial's architecture as resnext-arch/1 JSON")]
    items = "".join(f"<li><a href='{esc(f)}'>{esc(f)}</a>: {esc(d)}</li>" for f, d in files
                    if run.has(f))
    return f"<section id='files'><h2>Files</h2><ul>{items}</ul></section>"


__all__ = ["render"]
