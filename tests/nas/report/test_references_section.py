"""The report's "Search vs the reference designs": the best sampled trial against the best reference at the
common epoch, and after nas.validate --references the validated differences; said in words, "cannot tell"
included, on tables whose truth is known."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from nas.orchestration.validation import COLUMNS
from nas.report import evidence as ev
from nas.report import write_report
from nas.rundir.schema import VALIDATION, VALIDATION_CSV
from tests.nas.orchestration.test_references import run_with_references


def tables(accuracy: dict[str, tuple[str, list[float]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """trials and epochs frames: per trial id its role and its accuracy at each epoch."""
    trials = pd.DataFrame({"trial_id": list(accuracy), "role": [r for r, _ in accuracy.values()],
                           "name": [f"arch-{t}" for t in accuracy], "reference": "",
                           "outcome": ["completed" if len(a) == 2 else "stopped" for _, a in accuracy.values()]})
    epochs = pd.DataFrame([{"trial_id": t, "epoch": e + 1, "val_accuracy": v}
                           for t, (_, accs) in accuracy.items() for e, v in enumerate(accs)])
    return trials, epochs


def test_a_gap_far_beyond_the_images_sampling_error_can_be_told():
    trials, epochs = tables({"s1": ("sampled", [0.80, 0.85]), "s2": ("sampled", [0.70]),
                             "r1": ("reference", [0.60, 0.62]), "r2": ("reference", [0.55])})
    vs = ev.versus_references(trials, epochs, images=1000)
    assert vs.fidelity.epoch == 1  # the common epoch: ASHA's cut trials are compared where all were measured
    assert vs.sampled["trial_id"] == "s1" and vs.reference["trial_id"] == "r1"
    assert vs.difference == pytest.approx(0.20) and vs.can_tell and vs.lo > 0
    text = vs.describe()
    assert text.startswith("At epoch 1: Can tell: the best sampled architecture (arch-s1, best of 2) is ahead")
    assert "nas.validate --references" in text


def test_a_small_gap_cannot_be_told_and_says_so():
    trials, epochs = tables({"s1": ("sampled", [0.817]), "s2": ("sampled", [0.80]),
                             "r1": ("reference", [0.810])})
    vs = ev.versus_references(trials, epochs, images=1000)
    assert vs.difference == pytest.approx(0.007) and not vs.can_tell and vs.lo < 0 < vs.hi
    assert "Cannot tell them apart" in vs.describe() and "includes 0" in vs.describe()
    unknown = ev.versus_references(trials, epochs, images=None)  # no search.json: no interval, no claim
    assert not unknown.can_tell and "Cannot tell" in unknown.describe() and "unknown" in unknown.describe()


def _section(report_path) -> str:
    text = report_path.read_text()
    match = re.search(r"<section id='references'>(.*?)</section>", text, re.S)
    assert match, "no references section"
    return html.unescape(match.group(1))


def test_the_report_has_the_section_first_and_adds_the_validated_differences(tmp_path):
    run_dir, trials = run_with_references(tmp_path / "run")
    section = _section(write_report(run_dir))
    assert "Search vs the reference designs" in section and "best sampled" in section
    assert "best reference" in section and ("Can tell" in section or "Cannot tell" in section)
    page = (run_dir / "report.html").read_text()
    assert page.index("id='references'") < page.index("id='cardinality'")
    # nas.validate --references: three seeds each, the top one clearly ahead of the best reference
    top, ref = trials.loc[0, "trial_id"], trials.loc[2, "trial_id"]
    rows = [{"arch_id": a, "rank": 1, "role": role, "name": a, "proxy_accuracy": 0.5, "proxy_epochs": 1, "seed": s,
             "validated_accuracy": v, "epochs": 2, "train_resolution": 32, "status": "ok", "eval_split": "holdout"}
            for a, role, values in ((top, "top", [0.90, 0.91, 0.905]), (ref, "reference", [0.80, 0.81, 0.805]))
            for s, v in zip((5, 6, 7), values, strict=True)]
    (run_dir / VALIDATION).mkdir()
    pd.DataFrame(rows, columns=COLUMNS).to_csv(run_dir / VALIDATION / VALIDATION_CSV, index=False)
    section = _section(write_report(run_dir))
    assert "Retrained by nas.validate (2 epochs, 3 seeds, evaluated on the holdout images): Can tell" in section
    assert "+10.00" in section and "ahead" in section


def test_a_run_without_references_says_that_nothing_compares_it(tmp_path):
    from tests.helpers.fake_run import write_fake_run

    section = _section(write_report(write_fake_run(tmp_path / "run", n_trials=6, failures=False)))
    assert "This search trained no reference designs" in section


def test_difference_interval_needs_two_seeds_each():
    d, lo, hi = ev.difference_interval([0.8], [0.7, 0.72])
    assert d == pytest.approx(0.09) and np.isnan(lo) and np.isnan(hi)
    d, lo, hi = ev.difference_interval([0.8, 0.82], [0.7, 0.72])
    assert lo <= d <= hi and lo > 0
