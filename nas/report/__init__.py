"""The report side of a search: read a run directory, draw its figures, write report.html, export the
best architectures. Plain files in, plain files out: no Ray, and it knows no command line (its errors
are `RunDataError`s naming the setting; nas.analyze and nas.export turn them into `--flag: ...`).

    run_data.py               load_run: the run directory into pandas
    evidence.py               equal-fidelity subsets, bootstrap intervals, rank agreement, differences to
                              the reference designs (numbers only)
    importance.py             hyperparameter importance (optuna.importance)
    _plotting.py              what the figures share: layout, titles, colours, trial points, medians, Section
    figures/                  the report's plotly figures, one module per section family; build_sections
      cardinality_width.py    accuracy vs cardinality C and vs bottleneck width d, medians with intervals
      depth.py                accuracy vs depth, total and per stage
      matched.py              the capacity-matched sweep: error vs cardinality, one point per seed
      edf.py                  error EDFs per cardinality
      cost.py                 accuracy vs FLOPs and vs parameters, the Pareto front
      latency.py              accuracy vs predicted latency, its Pareto front, ms per GFLOP per C
      throughput.py           accuracy vs measured training speed, throughput per cardinality
      curves.py               learning curves, where ASHA stopped trials
      param_importance.py     hyperparameter importance with its bootstrap spread
      ranking.py              does the search's ranking hold: proxy vs validated accuracy (validation.csv)
      references.py           search vs the reference designs: best sampled vs best reference, in words
    evidence_figures.py       evidence.py's results drawn: medians with intervals, EDFs, importance, ranks
    html.py                   the page
    write.py                  write_report: report.html, trials.parquet, architectures/*.json
    compare.py                several runs' error EDFs overlaid in one page
    export.py                 export_top: the best architectures, with the best one's weights
    deploy.py                 trained weights (safetensors), ONNX and TorchScript files, each checked

The run directory's format and location are `nas.rundir`'s (below this package and the orchestration).
Its names load on first use (PEP 562 `__getattr__`), on purpose: the search's driver imports this
package only when it writes the report, and should not pay for pandas and plotly before.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "export_top": "export", "Section": "figures", "build_sections": "figures", "pareto_front": "figures",
    "RunData": "run_data", "RunDataError": "run_data",
    "load_run": "run_data", "normalize_trials": "run_data",
    "report_run": "write", "write_report": "write",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'nas.report' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
