"""The report's plotly figures, built from a loaded run (`nas.report.run_data.RunData`): one module per
section family (listed in nas.report's docstring), put in the page's order by `build_sections`. What they
share is in nas/report/_plotting.py.

Every figure is plain data: traces carry Python lists (not numpy arrays, which plotly would encode
as binary blobs), per-trial point traces carry `meta={"role": "trials", ...}` and the trial id as the
first `customdata` field, so tests (and anyone reading the JSON) can tell which trial is which point.

Accuracies are plotted in percent. Trials stopped early by ASHA were measured after fewer epochs than
completed ones, so no trend, EDF or importance pools them (in the default CPU run that made
C=2 look best only because ASHA let the C=2 trials train longer). Those figures are drawn at one
fidelity each (`fidelities`, from nas.report.evidence): every trial at the common epoch (the highest
epoch every live trial reached: the first ASHA rung), and the completed trials alone; each panel's
title says its epoch and n, and medians carry percentile-bootstrap intervals.
"""

from __future__ import annotations

from .._plotting import Section, fidelities
from ..run_data import RunData
from .cardinality_width import accuracy_vs
from .cost import accuracy_vs_cost, pareto_front
from .curves import learning_curves
from .depth import accuracy_vs_depth
from .edf import error_edfs
from .latency import accuracy_vs_latency
from .matched import matched_sweep
from .param_importance import importance
from .ranking import ranking_holds
from .references import search_vs_references
from .throughput import speed


def build_sections(run: RunData) -> list[Section]:
    """All figure sections, in report order."""
    sections = [
        search_vs_references(run),
        accuracy_vs(run, "cardinality", "width", key="cardinality", title="Accuracy vs cardinality",
                    x_title="cardinality C (parallel paths, stage 1; log scale)", color_label="d"),
        accuracy_vs(run, "width", "cardinality", key="width", title="Accuracy vs bottleneck width",
                    x_title="bottleneck width d (channels per path, stage 1; log scale)", color_label="C"),
        accuracy_vs_depth(run),
        matched_sweep(run),
        error_edfs(run),
        accuracy_vs_cost(run, "gflops"),
        accuracy_vs_cost(run, "mparams"),
        accuracy_vs_latency(run),
        speed(run),
        learning_curves(run),
        importance(run, "common"),
        importance(run, "completed"),
        ranking_holds(run),
    ]
    return [s for s in sections if not s.skip]


__all__ = ["Section", "build_sections", "fidelities", "importance", "pareto_front"]
