"""How sure the report can be: equal-fidelity subsets, bootstrap intervals, rank agreement.

Pure analysis on pandas frames (no plotting, no files): `evidence_figures.py` draws what this returns.

- Fidelity: ASHA stops most trials after the first rung, so a trial's final accuracy is measured after
  1 epoch for some and after `max_epochs` for others. Pooling them makes "C=2 looks best" out of "the
  C=2 trials were the ones that completed" (the default CPU run). Every result here is computed on one
  `Fidelity`: all trials at one common epoch, or only the completed ones, and carries its epoch and n.
- Uncertainty: percentile bootstrap of per-group medians, as pycls' design-space analysis
  (Radosavovic et al., "On Network Design Spaces for Visual Recognition") does; importance with its
  spread over bootstrap resamples of trials, or a reason when there are too few trials.
- The search against its reference designs (the paper's, trained in the same search): best sampled vs best
  reference at the common epoch, and after nas.validate each architecture's difference to the best
  reference with a bootstrap interval over seeds; in words, whether the numbers can tell them apart.
- Ranking agreement between a proxy (the search's short training) and a longer validation: Kendall
  tau-b and Spearman rho with bootstrap intervals over architectures, and whether the best stays best.

Kendall tau-b and Spearman rho are written here with numpy (scipy is installed on the dev machine but
is not a dependency of the project, and pandas' Kendall calls scipy): batched over bootstrap resamples,
they cost O(B n^2) for n architectures, which is nothing for the n <= ~100 a validation holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..rundir.schema import FAILED, MEASURED  # accuracies that are measurements; failed trials are left out and counted
from .importance import distributions, evaluator, importances

# Importance needs this many trials. optuna's PED-ANOVA (the evaluator available without
# scikit-learn) documents that it "is preferable to include at least 5 trials above target_quantile";
# with the target quantile capped at 0.5 (above that, "top" is most of the trials) that is 10 trials.
# fANOVA's random forest on fewer than 10 points is no better. Below this, a reason is returned.
MIN_IMPORTANCE_TRIALS = 10


class EvidenceError(ValueError):
    """An analysis was asked of a table that cannot answer it (a column missing, an epoch < 1...)."""


# --- equal fidelity --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fidelity:
    """Trials measured at one fidelity: one row per trial, `accuracy` and `error` (%) at that fidelity.

    `epoch` is the epoch every row was measured at (None when the rows do not share one, which only
    happens for an empty frame). `label` says it in words for titles ("at epoch 1", "completed (2
    epochs)"); `left_out` counts trials with no measurement at this fidelity, by reason.
    Unpacks as `frame, epoch = ...`.
    """

    frame: pd.DataFrame
    epoch: int | None
    label: str
    left_out: Mapping[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def title(self) -> str:
        """'at epoch 1, n=9' — what a figure's title says about its data."""
        return f"{self.label}, n={self.n}"

    def __iter__(self) -> Iterator[Any]:
        return iter((self.frame, self.epoch))


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EvidenceError(f"{what}: missing column(s) {', '.join(missing)}")


def _with_error(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(error=100.0 * (1.0 - frame["accuracy"]))


def reached_epochs(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """Highest epoch with a validation accuracy per trial id (trials with none are absent)."""
    _require(epochs, ["trial_id", "epoch", "val_accuracy"], "epochs")
    ep = epochs[epochs["val_accuracy"].notna() & epochs["epoch"].notna()]
    ep = ep[ep["trial_id"].astype(str).isin(set(trials["trial_id"].astype(str)))]
    return ep.groupby(ep["trial_id"].astype(str))["epoch"].max().astype(int)


def common_epoch(trials: pd.DataFrame, epochs: pd.DataFrame) -> int | None:
    """The highest epoch every non-failed trial with a measurement reached (the first ASHA rung in a
    run where ASHA stopped someone there); None when no trial has reported an epoch."""
    _require(trials, ["trial_id", "outcome"], "trials")
    live = trials[trials["outcome"].isin(MEASURED)]
    reached = reached_epochs(live, epochs)
    return int(reached.min()) if len(reached) else None


def at_common_epoch(trials: pd.DataFrame, epochs: pd.DataFrame, epoch: int | None = None) -> Fidelity:
    """Every non-failed trial's validation accuracy at one epoch, one row per trial.

    epoch=None takes `common_epoch` (every trial counts); a higher epoch keeps only the trials that
    reached it, and `left_out` says how many did not. The accuracy is the one measured at that epoch
    (epochs.csv's val_accuracy), not the trial's best over later epochs.
    """
    _require(trials, ["trial_id", "outcome"], "trials")
    _require(epochs, ["trial_id", "epoch", "val_accuracy"], "epochs")
    if epoch is None:
        epoch = common_epoch(trials, epochs)
        if epoch is None:
            return Fidelity(_with_error(trials.iloc[0:0].assign(accuracy=np.nan, epoch=np.nan)), None,
                            "no epoch reported yet", {"no epoch reported": len(trials)})
    if int(epoch) != epoch or epoch < 1:
        raise EvidenceError(f"epoch: must be a whole number >= 1, got {epoch!r}")
    epoch = int(epoch)
    left_out: dict[str, int] = {}
    failed = trials["outcome"].isin(FAILED)
    if failed.any():
        left_out["failed"] = int(failed.sum())
    live = trials[trials["outcome"].isin(MEASURED)].copy()
    other = len(trials) - int(failed.sum()) - len(live)
    if other:
        left_out["not started"] = other
    ep = epochs[(epochs["epoch"] == epoch) & epochs["val_accuracy"].notna()]
    at = ep.assign(trial_id=ep["trial_id"].astype(str)).drop_duplicates("trial_id", keep="last")
    acc = at.set_index("trial_id")["val_accuracy"].astype(float)
    live["trial_id"] = live["trial_id"].astype(str)
    live["accuracy"] = live["trial_id"].map(acc)
    missing = int(live["accuracy"].isna().sum())
    if missing:
        left_out[f"did not reach epoch {epoch}"] = missing
    frame = live[live["accuracy"].notna()].assign(epoch=epoch).reset_index(drop=True)
    return Fidelity(_with_error(frame), epoch, f"at epoch {epoch}", left_out)


def completed_only(trials: pd.DataFrame) -> Fidelity:
    """The completed trials, with the accuracy the report ranks by (best validation accuracy).

    Completed trials normally share their epoch count (max_epochs); if some completed with fewer
    (a run resumed with other settings), only those with the most epochs are kept and the rest are
    counted in `left_out` rather than pooled.
    """
    _require(trials, ["trial_id", "outcome", "epochs"], "trials")
    acc = trials["best_val_accuracy"] if "best_val_accuracy" in trials else trials["val_accuracy"]
    if "val_accuracy" in trials:
        acc = acc.fillna(trials["val_accuracy"])
    done = trials.assign(accuracy=acc.astype(float))
    left_out: dict[str, int] = {}
    not_done = int((done["outcome"] != "completed").sum())
    if not_done:
        left_out["not completed"] = not_done
    done = done[(done["outcome"] == "completed") & done["accuracy"].notna() & done["epochs"].notna()]
    if done.empty:
        return Fidelity(_with_error(done.assign(epoch=np.nan)), None, "completed (none yet)", left_out)
    top = int(done["epochs"].max())
    fewer = int((done["epochs"] < top).sum())
    if fewer:
        left_out[f"completed with fewer than {top} epochs"] = fewer
    done = done[done["epochs"] == top].assign(epoch=top).reset_index(drop=True)
    return Fidelity(_with_error(done), top, f"completed ({top} epoch{'s' if top != 1 else ''})", left_out)


# --- uncertainty -----------------------------------------------------------------------------------
def bootstrap_median(values: np.ndarray, n_boot: int, ci: float, rng: np.random.Generator
                     ) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of `values` (n >= 2)."""
    values = np.asarray(values, dtype=float)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    meds = np.median(values[idx], axis=1)
    lo, hi = np.quantile(meds, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


def grouped_median_ci(frame: pd.DataFrame, by: str, value: str, n_boot: int = 1000, ci: float = 0.95,
                      seed: int = 0) -> pd.DataFrame:
    """Per value of `by`: n, median, and a percentile-bootstrap interval [lo, hi] of the median.

    Groups with n < 2 have no interval (lo = hi = NaN, has_ci False): resampling one trial says
    nothing about how the median would move.
    """
    _require(frame, [by, value], "grouped_median_ci")
    if not 0 < ci < 1:
        raise EvidenceError(f"ci: must be between 0 and 1, got {ci!r}")
    if n_boot < 1:
        raise EvidenceError(f"n_boot: must be >= 1, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    rows = []
    data = frame[frame[by].notna() & frame[value].notna()]
    for key, g in data.groupby(by, sort=True):
        v = g[value].to_numpy(dtype=float)
        lo = hi = math.nan
        if len(v) >= 2:
            lo, hi = bootstrap_median(v, n_boot, ci, rng)
        rows.append({by: key, "n": len(v), "median": float(np.median(v)), "lo": lo, "hi": hi,
                     "has_ci": len(v) >= 2})
    return pd.DataFrame(rows, columns=[by, "n", "median", "lo", "hi", "has_ci"])


def log2_bin(values: pd.Series) -> pd.Series:
    """Lower edge of each value's power-of-two bin (8 for 8..15): the feasible widths d span two orders
    of magnitude across cardinalities, so linear bins would put most C in one bin. Group by this
    (it sorts numerically) and label with `bin_label`."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    return pd.Series(2.0 ** np.floor(np.log2(v.clip(lower=1))), index=values.index).where(v.notna())


def bin_label(lo: float) -> str:
    """'8-15' for the bin with lower edge 8."""
    return "1" if lo <= 1 else f"{int(lo)}-{int(2 * lo - 1)}"


def edf(values: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Empirical distribution function: sorted values and the fraction of values <= each one.

    NaNs are dropped; tied values get the fraction after the last of them (a right-continuous step).
    """
    v = np.sort(np.asarray(values, dtype=float))
    v = v[~np.isnan(v)]
    n = len(v)
    frac = np.searchsorted(v, v, side="right") / n if n else np.array([])
    return pd.DataFrame({"value": v, "fraction": frac})


@dataclass(frozen=True)
class Importance:
    """Importance per parameter with its spread, or a reason why there is none."""

    table: pd.DataFrame  # param, importance (full data), mean, lo, hi (over resamples); empty if reason
    n: int
    n_boot: int
    evaluator: str
    reason: str = ""  # non-empty: too few trials (or nothing varies); no numbers are given
    constant: tuple[str, ...] = ()  # params left out because they took one value


def importance_with_spread(frame: pd.DataFrame, params: Sequence[str], value: str = "accuracy",
                           n_boot: int = 200, ci: float = 0.95, seed: int = 0,
                           min_trials: int = MIN_IMPORTANCE_TRIALS) -> Importance:
    """optuna.importance on a study rebuilt from `frame` (one trial per row), and its spread over
    `n_boot` bootstrap resamples of the trials (mean and percentile interval per parameter).

    Cost: one optuna evaluation is 15-30 ms for 10-60 trials (PED-ANOVA, measured on the 2-core dev
    machine), so the default 200 resamples take 3-6 s; pass fewer for a quick look.
    """
    _require(frame, [value, *params], "importance_with_spread")
    data = frame[frame[value].notna()].reset_index(drop=True)
    n = len(data)
    make, ev_name = evaluator(n, seed)
    empty = pd.DataFrame(columns=["param", "importance", "mean", "lo", "hi"])
    if n < min_trials:
        return Importance(empty, n, 0, ev_name,
                          f"too few trials (n={n}; importance needs at least {min_trials}): no importance shown")
    # Distributions come from the full data, so a resample in which a parameter happens to be
    # constant still scores it (near 0) instead of dropping it.
    dists, constant = distributions(data, params)
    if not dists:
        return Importance(empty, n, 0, ev_name, "every parameter took a single value: nothing to rank",
                          tuple(constant))
    full = importances(data, value, dists, make)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        part = data.iloc[rng.integers(0, n, n)]
        try:
            got = importances(part, value, dists, make)
        except (RuntimeError, ValueError, ZeroDivisionError):
            continue  # e.g. every resampled value equal: that resample has no ranking
        samples.append([got.get(p, 0.0) for p in dists])
    s = np.array(samples) if samples else np.full((0, len(dists)), np.nan)
    lo_q, hi_q = (1 - ci) / 2, (1 + ci) / 2
    rows = []
    for j, p in enumerate(dists):
        col = s[:, j]
        rows.append({"param": p, "importance": full.get(p, 0.0),
                     "mean": float(col.mean()) if len(col) else math.nan,
                     "lo": float(np.quantile(col, lo_q)) if len(col) else math.nan,
                     "hi": float(np.quantile(col, hi_q)) if len(col) else math.nan})
    table = pd.DataFrame(rows).sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
    return Importance(table, n, len(samples), ev_name, "", tuple(constant))


# --- rank agreement --------------------------------------------------------------------------------
def _avg_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share the mean rank) along the last axis, batched."""
    less = (x[..., :, None] > x[..., None, :]).sum(-1)
    equal = (x[..., :, None] == x[..., None, :]).sum(-1)
    return less + (equal + 1) / 2.0


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b along the last axis: (P - Q) / sqrt((n0 - n1)(n0 - n2)), ties in x or y
    counted in n1, n2. Batched: x, y of shape (..., n). NaN where x or y is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    dx = np.sign(x[..., :, None] - x[..., None, :])
    dy = np.sign(y[..., :, None] - y[..., None, :])
    num = (dx * dy).sum((-1, -2))
    den = np.sqrt((dx * dx).sum((-1, -2)) * (dy * dy).sum((-1, -2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def spearman_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho (Pearson correlation of average ranks) along the last axis, batched."""
    rx, ry = _avg_ranks(np.asarray(x, dtype=float)), _avg_ranks(np.asarray(y, dtype=float))
    rx = rx - rx.mean(-1, keepdims=True)
    ry = ry - ry.mean(-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / np.where(den > 0, den, 1), np.nan)


@dataclass(frozen=True)
class RankAgreement:
    per_arch: pd.DataFrame  # arch, proxy, mean, std, n_seeds, proxy_rank, validated_rank
    n: int
    tau: float
    tau_lo: float
    tau_hi: float
    rho: float
    rho_lo: float
    rho_hi: float
    proxy_best: Any
    validated_best: Any
    best_stays_best: bool
    best_gap: float  # validated mean of the validated best minus that of the proxy's best (>= 0)
    n_boot: int  # resamples with a defined tau (all-tied resamples have none)
    reason: str = ""  # non-empty: fewer than 3 architectures, no correlation given

    def describe(self) -> str:
        if self.reason:
            return self.reason
        return (f"Kendall tau {self.tau:+.2f} [{self.tau_lo:+.2f}, {self.tau_hi:+.2f}], Spearman rho "
                f"{self.rho:+.2f} [{self.rho_lo:+.2f}, {self.rho_hi:+.2f}], n={self.n}")


def rank_agreement(proxy: pd.Series, validated: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95,
                   seed: int = 0) -> RankAgreement:
    """Does the proxy rank architectures the way validation does?

    proxy: the search's accuracy per architecture (Series indexed by architecture id).
    validated: one row per (architecture, seed): columns `arch`, `seed`, `accuracy`. An architecture's
    validated accuracy is its mean over seeds; std is the seed spread (NaN with one seed).
    The intervals are percentile bootstraps over architectures (resampled with replacement, so a
    resample may repeat one; tau-b treats the repeats as ties).
    """
    _require(validated, ["arch", "seed", "accuracy"], "validated")
    v = validated[validated["accuracy"].notna()]
    stats = v.groupby("arch")["accuracy"].agg(["mean", "std", "count"]).rename(columns={"count": "n_seeds"})
    proxy = proxy.dropna()
    archs = [a for a in proxy.index if a in stats.index]
    per = pd.DataFrame({"arch": archs, "proxy": [float(proxy[a]) for a in archs]})
    per = per.merge(stats, left_on="arch", right_index=True, how="left")
    per["proxy_rank"] = per["proxy"].rank(ascending=False, method="min")
    per["validated_rank"] = per["mean"].rank(ascending=False, method="min")
    per = per.sort_values("proxy_rank", kind="stable").reset_index(drop=True)
    n = len(per)
    nan = math.nan
    if n < 3:
        return RankAgreement(per, n, nan, nan, nan, nan, nan, nan, None, None, False, nan, 0,
                             f"too few validated architectures (n={n}; a rank correlation needs at least 3)")
    x, y = per["proxy"].to_numpy(), per["mean"].to_numpy()
    tau, rho = float(kendall_tau_b(x, y)), float(spearman_rho(x, y))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    taus, rhos = kendall_tau_b(x[idx], y[idx]), spearman_rho(x[idx], y[idx])
    ok = ~np.isnan(taus)
    q = [(1 - ci) / 2, (1 + ci) / 2]
    tlo, thi = np.quantile(taus[ok], q) if ok.any() else (nan, nan)
    rlo, rhi = np.quantile(rhos[~np.isnan(rhos)], q) if (~np.isnan(rhos)).any() else (nan, nan)
    proxy_best = per.loc[per["proxy"].idxmax(), "arch"]
    validated_best = per.loc[per["mean"].idxmax(), "arch"]
    gap = float(per["mean"].max() - per.loc[per["arch"] == proxy_best, "mean"].iloc[0])
    return RankAgreement(per, n, tau, float(tlo), float(thi), rho, float(rlo), float(rhi), proxy_best,
                         validated_best, bool(proxy_best == validated_best), gap, int(ok.sum()))


# --- the search against its reference designs --------------------------------------------------------
def difference_interval(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, ci: float = 0.95,
                        seed: int = 0) -> tuple[float, float, float]:
    """mean(a) - mean(b) and a percentile-bootstrap interval, each group resampled on its own (two
    architectures' seeds are independent trainings). The interval is NaN when a group has < 2 values:
    one training says nothing about how much another seed would move it."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if not len(a) or not len(b):
        return math.nan, math.nan, math.nan
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1)
    lo, hi = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
    return diff, float(lo), float(hi)


def binomial_difference_interval(p_a: float, p_b: float, images: int, n_boot: int = 2000, ci: float = 0.95,
                                 seed: int = 0) -> tuple[float, float]:
    """Interval of p_a - p_b from the evaluation images alone: a parametric bootstrap of the correct
    counts, Binomial(images, p) for each side. It counts how much `images` images let two accuracies move
    by chance, not how much another seed would (the search trains each architecture once)."""
    rng = np.random.default_rng(seed)
    boots = (rng.binomial(images, p_a, n_boot) - rng.binomial(images, p_b, n_boot)) / images
    lo, hi = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


def can_tell(lo: float, hi: float) -> bool:
    """An interval of a difference that excludes 0 (NaN bounds: no interval, so no)."""
    return not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)


def verdict(difference: float, lo: float, hi: float, a: str, b: str, why_no_interval: str = "") -> str:
    """In words: can the numbers tell `a` from `b` (difference = a - b, accuracy as a fraction)?"""
    points = f"{100 * difference:+.2f} points"
    if math.isnan(difference):
        return f"Cannot tell: {why_no_interval or 'no measurement on one side'}."
    if math.isnan(lo) or math.isnan(hi):
        return f"Cannot tell {a} from {b} ({points}): {why_no_interval or 'no interval'}."
    interval = f"[{100 * lo:+.2f}, {100 * hi:+.2f}]"
    if lo > 0:
        return f"Can tell: {a} is ahead of {b} by {points}, 95% interval {interval}, which excludes 0."
    if hi < 0:
        return f"Can tell: {b} is ahead of {a} by {100 * -difference:.2f} points (difference {points}, 95% " \
               f"interval {interval}, which excludes 0)."
    return (f"Cannot tell them apart: {a} minus {b} is {points}, but the 95% interval {interval} includes 0 "
            "(as large a gap arises by chance).")


@dataclass(frozen=True)
class VersusReferences:
    """The search's best sampled trial against its best reference design at one fidelity (one seed each)."""

    fidelity: Fidelity
    sampled: pd.Series | None  # the best sampled trial's row (name, trial_id, accuracy), None if none
    reference: pd.Series | None
    n_sampled: int
    n_reference: int
    difference: float  # sampled - reference, as a fraction
    lo: float
    hi: float
    images: int | None  # evaluation images behind the interval (None: unknown, no interval)

    @property
    def can_tell(self) -> bool:
        return can_tell(self.lo, self.hi)

    def describe(self) -> str:
        if self.sampled is None or self.reference is None:
            return verdict(math.nan, math.nan, math.nan, "", "", "no sampled trial or no reference design was "
                           f"measured {self.fidelity.label}")
        a = f"the best sampled architecture ({self.sampled['name']}, best of {self.n_sampled})"
        b = f"the best reference ({self.reference['name']}, best of {self.n_reference})"
        why = "the number of validation images is unknown (no search.json)" if self.images is None else ""
        text = verdict(self.difference, self.lo, self.hi, a, b, why)
        return (f"{self.fidelity.label.capitalize()}: {text} The interval counts only the sampling error of the "
                f"{self.images or 'unknown number of'} validation images; each architecture trained once, and the best "
                f"of more tries is favoured by chance, so `nas.validate --references` (seeds, held-out images) "
                "settles it.")


def versus_references(trials: pd.DataFrame, epochs: pd.DataFrame, images: int | None, epoch: int | None = None,
                      seed: int = 0) -> VersusReferences:
    """Best sampled vs best reference design at the common epoch (every live trial measured there, so
    ASHA's cuts do not decide it), with an interval from the validation images' sampling error."""
    _require(trials, ["trial_id", "outcome", "role"], "trials")
    fid = at_common_epoch(trials, epochs, epoch)
    f = fid.frame
    sampled, refs = f[f["role"] == "sampled"], f[f["role"] == "reference"]
    best_s = sampled.loc[sampled["accuracy"].idxmax()] if len(sampled) else None
    best_r = refs.loc[refs["accuracy"].idxmax()] if len(refs) else None
    diff = lo = hi = math.nan
    if best_s is not None and best_r is not None:
        diff = float(best_s["accuracy"] - best_r["accuracy"])
        if images:
            lo, hi = binomial_difference_interval(float(best_s["accuracy"]), float(best_r["accuracy"]), images,
                                                  seed=seed)
    return VersusReferences(fid, best_s, best_r, len(sampled), len(refs), diff, lo, hi, images)


def versus_best_reference(validated: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per retrained architecture (validated: one row per arch and seed, columns arch, role, name, seed,
    accuracy): seeds, mean, std, and its difference to the best reference design (the reference with
    the highest mean) with a bootstrap interval over seeds; `verdict` in words. No reference rows: the
    difference columns are NaN."""
    _require(validated, ["arch", "role", "name", "seed", "accuracy"], "validated")
    v = validated[validated["accuracy"].notna()]
    stats = (v.groupby("arch", sort=False).agg(role=("role", "first"), name=("name", "first"),
                                               seeds=("accuracy", "size"), mean=("accuracy", "mean"),
                                               std=("accuracy", "std")).reset_index())
    refs = stats[stats["role"] == "reference"]
    stats["difference"] = stats["lo"] = stats["hi"] = math.nan
    stats["verdict"] = ""
    if refs.empty:
        return stats
    best = refs.loc[refs["mean"].idxmax()]
    best_values = v.loc[v["arch"] == best["arch"], "accuracy"]
    for i, row in stats.iterrows():
        if row["arch"] == best["arch"]:
            stats.at[i, "verdict"] = "the best reference"
            continue
        d, lo, hi = difference_interval(v.loc[v["arch"] == row["arch"], "accuracy"], best_values, n_boot, seed=seed)
        stats.loc[i, ["difference", "lo", "hi"]] = [d, lo, hi]
        stats.at[i, "verdict"] = ("cannot tell (fewer than 2 seeds)" if math.isnan(lo) else
                                  "ahead" if lo > 0 else "behind" if hi < 0 else "cannot tell")
    return stats


# --- across runs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunEdf:
    label: str
    fidelity: Fidelity
    curve: pd.DataFrame  # value (error %), fraction

    @property
    def n(self) -> int:
        return self.fidelity.n


def _trials_epochs(run: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(run, tuple):
        return run
    return run.trials, run.epochs  # nas' RunData, or anything shaped like it


@dataclass(frozen=True)
class RunSummary:
    """One run at one fidelity: its best and median error (%) with percentile-bootstrap intervals, and
    the trial with the best error. Intervals are NaN below 2 trials."""

    label: str
    fidelity: Fidelity
    best: float
    best_lo: float
    best_hi: float
    median: float
    median_lo: float
    median_hi: float
    best_trial: Any  # the row (pd.Series) of the best trial; None when n = 0

    @property
    def n(self) -> int:
        return self.fidelity.n


def summarise_run(curve: RunEdf, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> RunSummary:
    """Best (lowest) and median error of a run's trials at `curve`'s fidelity, each with a percentile
    bootstrap interval over resampled trials. The best's interval says how much the best depends on
    which trials happened to be drawn; it cannot reach below the observed best (a resample's minimum
    never does), so read it as how lucky the best was, not as a bound on a better architecture."""
    frame = curve.fidelity.frame
    err = frame["error"].to_numpy(dtype=float) if len(frame) else np.array([])
    nan = math.nan
    if len(err) == 0:
        return RunSummary(curve.label, curve.fidelity, nan, nan, nan, nan, nan, nan, None)
    best_row = frame.loc[frame["error"].idxmin()]
    lo_b = hi_b = lo_m = hi_m = nan
    if len(err) >= 2:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(err), size=(n_boot, len(err)))
        q = [(1 - ci) / 2, (1 + ci) / 2]
        lo_b, hi_b = (float(v) for v in np.quantile(err[idx].min(axis=1), q))
        lo_m, hi_m = (float(v) for v in np.quantile(np.median(err[idx], axis=1), q))
    return RunSummary(curve.label, curve.fidelity, float(err.min()), lo_b, hi_b, float(np.median(err)), lo_m,
                      hi_m, best_row)


def edf_by_run(runs: Mapping[str, Any], epoch: int | str | None = None) -> list[RunEdf]:
    """Error EDFs of several runs at one fidelity, to overlay (shared vs free C/d, two budgets...).

    runs: label -> (trials, epochs) or an object with `.trials` and `.epochs` (a loaded run).
    epoch: an epoch number; None: the highest epoch every run's non-failed trials all reached (the
    smallest of the runs' common epochs), so that all curves share it; "completed": each run's
    completed trials (their epoch counts may differ between runs: each curve's fidelity says so).
    """
    loaded = {label: _trials_epochs(run) for label, run in runs.items()}
    if epoch is None:
        commons = [common_epoch(t, e) for t, e in loaded.values()]
        commons = [c for c in commons if c is not None]
        epoch = min(commons) if commons else 1
    out = []
    for label, (trials, epochs) in loaded.items():
        fid = completed_only(trials) if epoch == "completed" else at_common_epoch(trials, epochs, int(epoch))
        out.append(RunEdf(label, fid, edf(fid.frame["error"])))
    return out


__all__ = [
    "EvidenceError", "Fidelity", "Importance", "MIN_IMPORTANCE_TRIALS", "RankAgreement", "RunEdf", "RunSummary",
    "VersusReferences", "at_common_epoch", "bin_label", "binomial_difference_interval", "can_tell", "common_epoch",
    "completed_only", "difference_interval", "edf", "edf_by_run", "grouped_median_ci", "importance_with_spread",
    "kendall_tau_b", "log2_bin", "rank_agreement", "spearman_rho", "summarise_run", "verdict", "versus_best_reference",
    "versus_references",
]
