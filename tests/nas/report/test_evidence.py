"""nas/report/evidence.py and evidence_figures.py on constructed tables whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nas.report import evidence as ev
from nas.report import evidence_figures as evf
from nas.rundir.schema import MEASURED


def make_run(rows):
    """rows: (trial_id, outcome, cardinality, width, [accuracy per epoch]) -> (trials, epochs) shaped
    like nas.run_data's frames (best_val_accuracy = best epoch, epochs = epochs reported)."""
    trials, epochs = [], []
    for tid, outcome, c, d, accs in rows:
        trials.append({"trial_id": tid, "outcome": outcome, "cardinality": float(c), "width": float(d),
                       "val_accuracy": accs[-1] if accs else math.nan,
                       "best_val_accuracy": max(accs) if accs else math.nan, "epochs": float(len(accs))})
        epochs += [{"trial_id": tid, "epoch": i + 1, "val_accuracy": a} for i, a in enumerate(accs)]
    return pd.DataFrame(trials), pd.DataFrame(epochs, columns=["trial_id", "epoch", "val_accuracy"])


# As in the default CPU run: ASHA kept the C=2 trials, which then gained 8 points in their second
# epoch, and stopped the C=8 ones, which were better at epoch 1.
ARTEFACT = [
    ("a", "completed", 2, 24, [0.70, 0.80]),
    ("b", "completed", 2, 19, [0.71, 0.81]),
    ("c", "completed", 2, 23, [0.72, 0.82]),
    ("d", "stopped", 8, 8, [0.75]),
    ("e", "stopped", 8, 7, [0.76]),
    ("f", "stopped", 8, 6, [0.77]),
    ("g", "diverged", 16, 5, [0.50]),
    ("h", "pending", 4, 12, []),
]


def test_equal_epoch_trend_does_not_pool_fidelities():
    trials, epochs = make_run(ARTEFACT)
    # What pooling each trial's final accuracy says (today's report): C=2 is best.
    pooled = trials[trials["outcome"].isin(MEASURED)].assign(accuracy=trials["best_val_accuracy"])
    pooled_med = ev.grouped_median_ci(pooled, "cardinality", "accuracy", n_boot=50)
    assert pooled_med.set_index("cardinality")["median"].idxmax() == 2

    fid = ev.at_common_epoch(trials, epochs)
    frame, epoch = fid  # unpacks as the brief's (frame, epoch)
    assert epoch == 1 and fid.n == 6 and fid.title == "at epoch 1, n=6"
    assert set(frame["trial_id"]) == set("abcdef")
    assert (frame["epoch"] == 1).all()
    # Each trial's accuracy is its epoch-1 measurement, not its best over later epochs.
    assert frame.set_index("trial_id")["accuracy"].to_dict() == pytest.approx(
        {"a": 0.70, "b": 0.71, "c": 0.72, "d": 0.75, "e": 0.76, "f": 0.77})
    assert dict(fid.left_out) == {"failed": 1, "not started": 1}
    med = ev.grouped_median_ci(frame, "cardinality", "accuracy", n_boot=200).set_index("cardinality")
    assert med["median"].idxmax() == 8
    assert med.loc[8, "median"] == pytest.approx(0.76) and med.loc[2, "median"] == pytest.approx(0.71)
    # The error column is in percent, at the same fidelity.
    assert frame.set_index("trial_id").loc["d", "error"] == pytest.approx(25.0)

    # The figure shows exactly these medians and says which epoch and how many trials.
    fig = evf.median_ci_figure(med.reset_index(), "cardinality", fid, what="Median accuracy per C",
                               x_title="C", log_x=True)
    trace = next(t for t in fig.data if t.meta["role"] == "median-ci")
    assert list(trace.y) == pytest.approx([0.71, 0.76])
    assert "at epoch 1, n=6" in fig.layout.title.text


def test_completed_and_later_epoch_keep_one_fidelity():
    trials, epochs = make_run(ARTEFACT + [("i", "completed", 4, 12, [0.70])])  # resumed with fewer epochs
    done = ev.completed_only(trials)
    assert done.epoch == 2 and done.label == "completed (2 epochs)" and done.n == 3
    assert set(done.frame["trial_id"]) == set("abc")
    assert done.left_out["completed with fewer than 2 epochs"] == 1
    later = ev.at_common_epoch(trials, epochs, epoch=2)
    assert later.n == 3 and later.left_out["did not reach epoch 2"] == 4
    with pytest.raises(ev.EvidenceError, match="epoch"):
        ev.at_common_epoch(trials, epochs, epoch=0)


def test_common_epoch_is_the_first_rung_every_live_trial_reached():
    trials, epochs = make_run([("a", "completed", 2, 8, [0.5, 0.6, 0.7]), ("b", "stopped", 2, 8, [0.5, 0.6]),
                               ("c", "running", 4, 8, [0.5, 0.6, 0.65]), ("x", "oom", 4, 8, [0.1])])
    assert ev.common_epoch(trials, epochs) == 2  # the oom trial (1 epoch) does not pull it down
    none = ev.at_common_epoch(*make_run([("p", "pending", 2, 8, [])]))
    assert none.epoch is None and none.n == 0


def test_bootstrap_interval_covers_the_true_median():
    # 300 independent samples of 15 draws from N(10, 2) (true median 10), one group each: the 90%
    # percentile-bootstrap interval should hold 10 in about 90% of them.
    rng = np.random.default_rng(1)
    reps, n = 300, 15
    frame = pd.DataFrame({"rep": np.repeat(np.arange(reps), n), "v": rng.normal(10, 2, reps * n)})
    res = ev.grouped_median_ci(frame, "rep", "v", n_boot=400, ci=0.90, seed=3)
    cover = ((res["lo"] <= 10) & (10 <= res["hi"])).mean()
    assert 0.84 <= cover <= 0.97, cover
    # The intervals are not trivially wide: a 50% interval covers far less often.
    narrow = ev.grouped_median_ci(frame, "rep", "v", n_boot=400, ci=0.50, seed=3)
    assert ((narrow["lo"] <= 10) & (10 <= narrow["hi"])).mean() < 0.7
    assert (res["lo"] <= res["median"]).all() and (res["median"] <= res["hi"]).all()


def test_groups_of_one_have_no_interval_and_seed_is_reproducible():
    frame = pd.DataFrame({"C": [1, 2, 2, 2], "acc": [0.5, 0.6, 0.7, 0.8]})
    res = ev.grouped_median_ci(frame, "C", "acc", n_boot=100).set_index("C")
    assert res.loc[1, "n"] == 1 and not res.loc[1, "has_ci"] and math.isnan(res.loc[1, "lo"])
    assert res.loc[2, "has_ci"] and res.loc[2, "median"] == pytest.approx(0.7)
    again = ev.grouped_median_ci(frame, "C", "acc", n_boot=100).set_index("C")
    assert res.loc[2, "lo"] == again.loc[2, "lo"]


@pytest.mark.parametrize("x, y, tau, rho", [
    ([1, 2, 3, 4, 5], [10, 20, 30, 40, 50], 1.0, 1.0),
    ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], -1.0, -1.0),
    # pairs: 4 concordant, 2 discordant -> 2/6; sum d^2 = 4 -> 1 - 6*4/(4*15)
    ([1, 2, 3, 4], [2, 1, 4, 3], 1 / 3, 0.6),
    # a tie in x: P=5, Q=0, n1=1 -> 5/sqrt(5*6); ranks x (1, 2.5, 2.5, 4): 4.5/sqrt(4.5*5)
    ([1, 2, 2, 3], [1, 3, 2, 4], 5 / math.sqrt(30), 4.5 / math.sqrt(22.5)),
])
def test_rank_correlations_hand_computed(x, y, tau, rho):
    assert float(ev.kendall_tau_b(x, y)) == pytest.approx(tau)
    assert float(ev.spearman_rho(x, y)) == pytest.approx(rho)


def _tau_b_by_pairs(x, y):
    """Kendall tau-b from its definition, pair by pair (independent of the vectorised version)."""
    p = q = tx = ty = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            tx += sx == 0
            ty += sy == 0
            p += sx * sy > 0
            q += sx * sy < 0
    n0 = n * (n - 1) / 2
    return (p - q) / math.sqrt((n0 - tx) * (n0 - ty)) if n0 > max(tx, ty) else math.nan


def test_rank_correlations_batched_match_the_definitions():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (40, 9)).astype(float)  # many ties
    y = x + rng.integers(-2, 3, (40, 9))
    taus, rhos = ev.kendall_tau_b(x, y), ev.spearman_rho(x, y)
    for i in range(40):
        assert taus[i] == pytest.approx(_tau_b_by_pairs(x[i], y[i]))
        # Spearman rho = Pearson correlation of average ranks (pandas ranks independently of us).
        ref = pd.Series(x[i]).rank().corr(pd.Series(y[i]).rank())
        assert rhos[i] == pytest.approx(ref)
    assert math.isnan(float(ev.kendall_tau_b([1, 1, 1], [1, 2, 3])))


def _validated(means, seeds=(0, 1), spread=0.002):
    return pd.DataFrame([{"arch": a, "seed": s, "accuracy": m + (spread if s % 2 else -spread)}
                         for a, m in means.items() for s in seeds])


def test_rank_agreement_perfect_reversed_and_best():
    proxy = pd.Series({"a": 0.60, "b": 0.65, "c": 0.70, "d": 0.72, "e": 0.75, "f": 0.80})
    same = ev.rank_agreement(proxy, _validated({k: v + 0.1 for k, v in proxy.items()}), n_boot=300)
    assert same.tau == pytest.approx(1) and same.rho == pytest.approx(1)
    assert same.tau_hi == pytest.approx(1) and same.tau_lo == pytest.approx(1)  # every resample agrees
    assert same.best_stays_best and same.proxy_best == "f" and same.best_gap == 0
    row = same.per_arch.set_index("arch").loc["f"]
    assert row["mean"] == pytest.approx(0.90) and row["std"] == pytest.approx(0.002 * math.sqrt(2))
    assert row["n_seeds"] == 2

    rev = ev.rank_agreement(proxy, _validated({k: 1.5 - v for k, v in proxy.items()}), n_boot=300)
    assert rev.tau == pytest.approx(-1) and rev.rho == pytest.approx(-1)
    assert not rev.best_stays_best and rev.validated_best == "a"
    assert rev.best_gap == pytest.approx((1.5 - 0.60) - (1.5 - 0.80))

    # A middling agreement has an interval around its estimate, inside [-1, 1].
    noisy = ev.rank_agreement(proxy, _validated(dict(zip(proxy.index, [0.7, 0.62, 0.75, 0.66, 0.8, 0.78],
                                                          strict=True))), n_boot=500)
    assert -1 <= noisy.tau_lo < noisy.tau < noisy.tau_hi <= 1
    assert "Kendall tau" in noisy.describe()
    fig = evf.rank_scatter(noisy)
    assert "Kendall tau" in fig.layout.title.text and "not the validated best" in fig.layout.title.text
    scatter = next(t for t in fig.data if t.meta["role"] == "rank-scatter")
    assert len(scatter.x) == 6


def test_rank_agreement_needs_three_architectures():
    ra = ev.rank_agreement(pd.Series({"a": 0.5, "b": 0.6, "z": 0.9}), _validated({"a": 0.5, "b": 0.6}))
    assert ra.n == 2 and "too few" in ra.reason and math.isnan(ra.tau)


def test_importance_too_few_trials_says_so():
    trials, _ = make_run(ARTEFACT)
    done = ev.completed_only(trials)
    imp = ev.importance_with_spread(done.frame, ["cardinality", "width"])
    assert imp.table.empty and imp.n == 3 and "too few trials (n=3" in imp.reason
    fig = evf.importance_figure(imp, done)
    assert not fig.data  # no bars at all
    assert fig.layout.annotations[0].text == imp.reason and "n=3" in fig.layout.title.text


def test_importance_with_spread_finds_the_parameter_that_matters():
    rng = np.random.default_rng(0)
    n = 16
    frame = pd.DataFrame({"cardinality": rng.choice([1, 2, 4, 8], n), "width": rng.integers(4, 64, n),
                          "depth_1": np.full(n, 3)})
    frame["accuracy"] = 0.6 + 0.05 * np.log2(frame["cardinality"]) + rng.normal(0, 0.002, n)
    imp = ev.importance_with_spread(frame, ["cardinality", "width", "depth_1"], n_boot=20)
    assert imp.reason == "" and imp.constant == ("depth_1",) and imp.n_boot == 20
    t = imp.table.set_index("param")
    assert t.index[0] == "cardinality" and t.loc["cardinality", "mean"] > t.loc["width", "mean"]
    assert ((t["lo"] <= t["mean"]) & (t["mean"] <= t["hi"])).all()
    fid = ev.Fidelity(frame, 2, "completed (2 epochs)")
    fig = evf.importance_figure(imp, fid)
    assert fig.data[0].meta["role"] == "importance" and "n=16" in fig.layout.title.text


def test_edf_values_and_ties():
    got = ev.edf([3.0, 1.0, 2.0, 2.0, math.nan])
    assert list(got["value"]) == [1, 2, 2, 3]
    assert list(got["fraction"]) == pytest.approx([0.25, 0.75, 0.75, 1.0])
    assert ev.edf([]).empty


def test_edf_by_run_uses_one_epoch_for_all_runs():
    run_a = make_run([("a1", "completed", 2, 8, [0.70, 0.80]), ("a2", "completed", 2, 8, [0.60, 0.90])])
    run_b = make_run([("b1", "completed", 8, 8, [0.75, 0.85]), ("b2", "stopped", 8, 8, [0.65]),
                      ("b3", "stopped", 8, 8, [0.55])])
    curves = ev.edf_by_run({"shared": run_a, "free": run_b})
    assert [c.fidelity.epoch for c in curves] == [1, 1]  # run A alone would say 2
    assert [c.n for c in curves] == [2, 3]
    assert list(curves[0].curve["value"]) == pytest.approx([30.0, 40.0])
    fig = evf.edf_overlay(curves)
    assert [t.name for t in fig.data] == ["shared, at epoch 1 (n=2)", "free, at epoch 1 (n=3)"]
    assert "at epoch 1" in fig.layout.title.text
    done = ev.edf_by_run({"shared": run_a, "free": run_b}, epoch="completed")
    assert [c.n for c in done] == [2, 1]


def test_width_bins_are_powers_of_two():
    lo = ev.log2_bin(pd.Series([1, 7, 8, 15, 16, None]))
    assert lo.iloc[:5].tolist() == [1, 4, 8, 8, 16] and math.isnan(lo.iloc[5])
    assert ev.bin_label(8) == "8-15" and ev.bin_label(1) == "1"
