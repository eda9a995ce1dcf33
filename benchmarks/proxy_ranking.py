"""Which training proxy ranks a run's architectures better per unit of compute? (issue 12)

    python benchmarks/proxy_ranking.py RUN_DIR [--proxy 28x2 --proxy 33x1] [--proxy-seed S] [--out DIR]

Reference: RUN_DIR's validation (`nas.validate`: E epochs at resolution R, seeds s1..sk; the mean over
seeds is the "true" accuracy of an architecture). Every distinct architecture the run ranked takes part;
those validation.csv lacks are trained at the validation's own settings first (folder proxy-reference/).

Proxies: each `RESxEPOCHS` trains every architecture once, with a seed no reference run used, as Tune
trials on the search's machinery (nas.orchestration.validation, folder proxy-<res>px-<epochs>ep-seed<S>/),
and is read at each of its epochs (a 2-epoch proxy read at epoch 1 is what ASHA's first rung saw in the
search: the same learning-rate schedule). The search's own numbers are one more proxy ("search").

Compute: analytic training multiply-adds = 3 x forward (forward + backward, the usual estimate) x
training images x epochs, summed over the architectures; measured epoch seconds beside it.

Agreement with the reference: Kendall tau and Spearman rho with percentile-bootstrap intervals over
architectures (nas.report.evidence.rank_agreement), the reference accuracy lost by trusting the proxy's
best (regret), and, for a proxy at another resolution, its tau minus that of the native-resolution reading
of the nearest compute, with a *paired* bootstrap interval (the same resampled architectures for both),
which is what "ranks better" needs. The reference's own
seed-to-seed tau is printed as the ceiling no proxy can beat.

Writes OUT/proxy_ranking.csv (one row per proxy reading), OUT/proxy_scores.csv (per architecture) and
prints both as markdown. Every training folder is resumable: run the command again after an interruption.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.orchestration.validation import (  # noqa: E402
    at_fidelity,
    build_validation_tuner,
    epoch_table,
    search_settings,
    select,
    write_csv,
)
from nas.report.evidence import kendall_tau_b, rank_agreement  # noqa: E402
from nas.report.run_data import load_run  # noqa: E402
from nas.rundir.schema import VALIDATION, VALIDATION_CSV, VALIDATION_EPOCHS_CSV  # noqa: E402
from search_spaces import Architecture, complexity, with_io  # noqa: E402

N_BOOT = 2000


def parse_proxy(text: str) -> tuple[int, int]:
    try:
        res, epochs = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--proxy: expected RESxEPOCHS such as 33x2, got {text!r}") from None
    if res < 1 or epochs < 1:
        raise argparse.ArgumentTypeError(f"--proxy: expected positive numbers, got {text!r}")
    return res, epochs


class LazyRay:
    """Starts Ray the first time a training needs it (a rerun that only re-analyses starts none)."""

    def __init__(self, dashboard_port: int) -> None:
        self.port, self.cluster = dashboard_port, None

    def resources(self) -> dict:
        if self.cluster is None:
            from nas.orchestration import start_ray

            self.cluster = start_ray(None, "127.0.0.1", self.port)["resources"]
        return self.cluster

    def close(self) -> None:
        if self.cluster is not None:
            import ray

            ray.shutdown()


def train(run_dir: Path, folder: str, chosen: pd.DataFrame, settings, epochs: int, resolution: int,
          seeds: list[int], ray_: LazyRay) -> pd.DataFrame:
    """Every (architecture, seed) of `chosen` for `epochs` at `resolution`; its per-epoch rows."""
    path = run_dir / folder / VALIDATION_EPOCHS_CSV
    if path.is_file():  # finished earlier
        return pd.read_csv(path, dtype={"arch_id": str}).drop_duplicates(["arch_id", "seed", "epoch"], keep="last")
    cluster = ray_.resources()
    trial_settings, trial_train = at_fidelity(settings, epochs, resolution)
    print(f"[{folder}] {len(chosen)} architectures x seeds {seeds}, {epochs} epochs at {resolution}px", flush=True)
    results = build_validation_tuner(run_dir, trial_settings, chosen, trial_train, seeds, cluster, folder=folder).fit()
    frame = epoch_table(results, chosen, resolution)
    done = frame[frame["epoch"] == epochs]
    if len(done) < len(chosen) * len(seeds):  # interrupted: keep no table, so a rerun continues the Tuner
        raise SystemExit(f"[{folder}] {len(done)} of {len(chosen) * len(seeds)} trials finished; run again to continue")
    write_csv(frame, path)
    return frame


def train_flops(arch_json: str, resolution: int, channels: int, classes: int) -> int:
    """Multiply-adds of one training image: 3 x the forward pass (forward + backward)."""
    arch = with_io(Architecture.from_dict(json.loads(arch_json)), in_channels=channels, num_classes=classes)
    return 3 * complexity(arch, resolution).flops


def paired_tau_difference(a: np.ndarray, b: np.ndarray, ref: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """tau(a, ref) - tau(b, ref) and its 95% percentile interval, resampling architectures jointly."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ref), size=(N_BOOT, len(ref)))
    diff = kendall_tau_b(a[idx], ref[idx]) - kendall_tau_b(b[idx], ref[idx])
    diff = diff[~np.isnan(diff)]
    point = float(kendall_tau_b(a, ref) - kendall_tau_b(b, ref))
    lo, hi = np.quantile(diff, [0.025, 0.975])
    return point, float(lo), float(hi)


def figure(table: pd.DataFrame, ceiling: float, reference: str):
    """Kendall tau (95% bootstrap interval) of each proxy reading against its training compute."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for res, group in table.groupby("train_resolution"):
        fig.add_trace(go.Scatter(
            x=group["train_tflops"], y=group["tau"], mode="markers+text", name=f"{res}x{res}",
            text=group["proxy"], textposition="top center", marker={"size": 10},
            error_y={"type": "data", "symmetric": False, "array": group["tau_hi"] - group["tau"],
                     "arrayminus": group["tau"] - group["tau_lo"]}))
    if ceiling == ceiling:  # not NaN
        fig.add_hline(y=ceiling, line_dash="dot", annotation_position="bottom left",
                      annotation_text=f"reference seed vs seed: tau {ceiling:+.2f}")
    fig.update_layout(title=f"Does the proxy rank like the reference ({reference})?", width=900, height=520,
                      xaxis_title="training compute of the proxy, all architectures (TFLOPs, 3 x forward)",
                      yaxis_title="Kendall tau vs reference (95% bootstrap)", template="plotly_white",
                      yaxis_range=[min(-0.05, float(table["tau_lo"].min()) - 0.1), 1.08])
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--proxy", type=parse_proxy, action="append",
                        help="RESxEPOCHS (default 28x2 and 33x1: about the same compute, 33x1 12%% more)")
    parser.add_argument("--proxy-seed", type=int, default=None, help="default: one past the reference's seeds")
    parser.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/proxy-ranking")
    parser.add_argument("--dashboard-port", type=int, default=8265)
    args = parser.parse_args(argv)
    proxies = args.proxy or [(28, 2), (33, 1)]
    run_dir = args.run_dir.resolve()
    out = args.out or run_dir / "proxy-ranking"

    run = load_run(run_dir)
    settings = search_settings(run_dir)
    n_archs = run.ranked()["architecture"].map(lambda a: json.dumps(a.to_dict(), sort_keys=True)).nunique()
    chosen = select(run, n_archs, 0)  # every distinct architecture, in the search's order
    ref_path = run_dir / VALIDATION / VALIDATION_CSV
    if not ref_path.is_file():
        parser.error(f"{ref_path}: no validation to compare against; run python -m nas.validate first")
    ref = pd.read_csv(ref_path, dtype={"arch_id": str})  # ids such as "1e691598" would parse as numbers
    ref = ref[ref["status"] == "ok"]
    ref_epochs, ref_res = int(ref["epochs"].max()), int(ref["train_resolution"].iloc[0])
    ref_seeds = sorted(int(s) for s in ref["seed"].unique())
    proxy_seed = args.proxy_seed if args.proxy_seed is not None else max(ref_seeds) + 1
    if proxy_seed in ref_seeds:
        parser.error(f"--proxy-seed: {proxy_seed} is one of the reference's seeds {ref_seeds}")
    from nas.orchestration.plan import dataset_shape

    channels, classes, native = dataset_shape(settings.dataset, settings.data_dir)
    n_train = settings.train_subset

    ray_ = LazyRay(args.dashboard_port)
    try:
        missing = chosen[~chosen["arch_id"].isin(ref["arch_id"])]
        if len(missing):
            extra = train(run_dir, "proxy-reference", missing, settings, ref_epochs, ref_res, ref_seeds, ray_)
            last = extra[extra["epoch"] == ref_epochs]
            ref = pd.concat([ref, pd.DataFrame({"arch_id": last["arch_id"], "seed": last["seed"],
                                                "validated_accuracy": last["val_accuracy"]})])
        readings = {}
        for res, epochs in proxies:
            folder = f"proxy-{res}px-{epochs}ep-seed{proxy_seed}"
            readings[(res, epochs)] = train(run_dir, folder, chosen, settings, epochs, res, [proxy_seed], ray_)
    finally:
        ray_.close()

    validated = ref.rename(columns={"arch_id": "arch", "validated_accuracy": "accuracy"})[["arch", "seed", "accuracy"]]
    truth = validated.groupby("arch")["accuracy"].mean()
    ids = list(chosen["arch_id"])
    flops = {(a, r): train_flops(j, r, channels, classes)
             for a, j in zip(chosen["arch_id"], chosen["arch"], strict=True)
             for r in {native, ref_res, *(p[0] for p in proxies)}}

    scores, rows = {}, []
    # the search itself: the accuracy it ranked by (ASHA: at the last epoch each trial reached)
    trials = run.trials.drop_duplicates("trial_id").set_index("trial_id")
    search_res = settings.train_resolution or native
    epochs_run = trials.loc[ids, "epochs"].astype(int)
    scores["search (ASHA)"] = (chosen.set_index("arch_id")["proxy_accuracy"], search_res,
                               sum(flops[(a, search_res)] * n_train * e for a, e in epochs_run.items()),
                               float(trials.loc[ids, "seconds"].sum()))
    for (res, epochs), frame in readings.items():
        for k in range(1, epochs + 1):
            at_k = frame[frame["epoch"] == k].set_index("arch_id")
            upto = frame[frame["epoch"] <= k].groupby("arch_id")["epoch_seconds"].sum()
            scores[f"{res}px, {k} ep"] = (at_k["val_accuracy"], res,
                                          sum(flops[(a, res)] * n_train * k for a in ids), float(upto.sum()))
    base = {k: v for k, v in scores.items() if k.startswith(f"{native}px")}
    truth_vec = truth.loc[ids].to_numpy()
    for label, (score, res, cost, seconds) in scores.items():
        agree = rank_agreement(score.loc[ids], validated, n_boot=N_BOOT)
        row = {"proxy": label, "train_resolution": res, "n": agree.n, "tau": agree.tau, "tau_lo": agree.tau_lo,
               "tau_hi": agree.tau_hi, "rho": agree.rho, "rho_lo": agree.rho_lo, "rho_hi": agree.rho_hi,
               "best_stays_best": agree.best_stays_best, "regret_points": 100 * agree.best_gap,
               "train_tflops": cost / 1e12, "epoch_seconds": seconds}
        if res != native and label != "search (ASHA)" and base:
            # against the native-resolution reading of the nearest compute
            twin = min(base, key=lambda k: abs(base[k][2] - cost))
            d, lo, hi = paired_tau_difference(score.loc[ids].to_numpy(), base[twin][0].loc[ids].to_numpy(), truth_vec)
            row.update({"compared_with": twin, "tau_minus_that": d, "diff_lo": lo, "diff_hi": hi})
        rows.append(row)
    table = pd.DataFrame(rows)
    per_arch = pd.DataFrame({"arch_id": ids, "name": list(chosen["name"]), "search_rank": list(chosen["rank"]),
                             "reference": truth_vec,
                             "reference_std": validated.groupby("arch")["accuracy"].std().loc[ids].to_numpy(),
                             **{label: s[0].loc[ids].to_numpy() for label, s in scores.items()}})
    # the ceiling: how well one reference seed ranks like another
    wide = validated.pivot_table(index="arch", columns="seed", values="accuracy").loc[ids]
    seeds = list(wide.columns)
    ceiling = (float(kendall_tau_b(wide[seeds[0]].to_numpy(), wide[seeds[1]].to_numpy()))
               if len(seeds) >= 2 else float("nan"))

    out.mkdir(parents=True, exist_ok=True)
    write_csv(table, out / "proxy_ranking.csv")
    write_csv(per_arch, out / "proxy_scores.csv")
    shutil.copy(run_dir / VALIDATION / VALIDATION_CSV, out / "reference_validation.csv")
    figure(table, ceiling, f"{ref_epochs} epochs at {ref_res}px, {len(ref_seeds)} seeds, n={len(ids)}").write_html(
        out / "proxy_ranking.html", include_plotlyjs=True)
    print(f"reference: {ref_epochs} epochs at {ref_res}px, seeds {ref_seeds}, {len(ids)} architectures; "
          f"seed {seeds[0]} vs seed {seeds[-1]} of the reference: Kendall tau {ceiling:+.2f}")
    print(table.to_markdown(index=False, floatfmt="+.2f"))
    print(per_arch.to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
