"""`python -m nas.validate RUN_DIR --top K [--controls M] [--seeds S] [--epochs E] [--train-resolution R]
[--references]`: does the search's ranking hold at a higher fidelity, and did it beat the reference designs?

Retrains the run's top K architectures and M others drawn across its ranking (with --references: the
sampled trials' top K and controls, and every reference design the search trained), S fresh seeds each
(after the search's), for E epochs (default: twice the search's), as Ray Tune trials on the search's
machinery, evaluated on held-out images that did not select the top K (training-split images the search
neither trained nor validated on; the test split when none is left). Writes RUN_DIR/validation/
validation.csv, summary.csv (each architecture's mean, std and difference to the best reference with a
bootstrap interval) and the run's report, which gains "Does the search's ranking hold?" (proxy at one
epoch vs validated accuracy, Kendall tau and Spearman rho with bootstrap intervals) and the validated
rows of "Search vs the reference designs". Run it again to continue an interrupted validation. The work
is done by nas.orchestration.validation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import Parser, UsageError, non_negative_int, port, positive_int, run_main, setting_errors, wrap
from .rundir.schema import VALIDATION_SUMMARY_CSV

FLAGS = {"run_dir": None, "top": "--top", "controls": "--controls", "seeds": "--seeds", "epochs": "--epochs",
         "train_resolution": "--train-resolution", "references": "--references"}


def local_run_dir(text: str) -> Path:
    """RUN_DIR: a local directory. A run on an object store is refused, not misread as a path."""
    if "://" in text:
        raise ValueError(f"{text} is a URI; nas.validate retrains from a local run directory (copy the run "
                         "there first)")
    return Path(text)


def print_summary(path: Path) -> None:
    """summary.csv as a table: each architecture's mean +- std over seeds and its difference to the best
    reference with its interval (points of accuracy)."""
    import pandas as pd

    s = pd.read_csv(path, dtype={"arch_id": str})
    print(f"{'role':<10} {'architecture':<34} {'seeds':>5} {'mean +- std %':>15} {'vs best reference':>18} "
          f"{'95% interval':>17}  verdict")
    for r in s.itertuples():
        std = "" if pd.isna(r.std) else f" +- {100 * r.std:.2f}"
        diff = "" if pd.isna(r.difference) else f"{100 * r.difference:+.2f}"
        ci = "" if pd.isna(r.lo) else f"[{100 * r.lo:+.2f}, {100 * r.hi:+.2f}]"
        print(f"{r.role:<10} {r.name:<34} {r.seeds:>5} {100 * r.mean:>7.2f}{std:<8} {diff:>18} {ci:>17}  "
              f"{'' if pd.isna(r.verdict) else r.verdict}")
    print(path)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.validate", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=wrap(local_run_dir), help="the search's run directory (local)")
    parser.add_argument("--top", type=positive_int, required=True, help="retrain the K best architectures")
    parser.add_argument("--controls", type=non_negative_int, default=0,
                        help="and M more drawn evenly across the rest of the ranking (default 0)")
    parser.add_argument("--seeds", type=positive_int, default=2, help="seeds per architecture (default 2)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs per trial (default: twice the search's max epochs)")
    parser.add_argument("--train-resolution", type=positive_int, default=None,
                        help="training resolution (default: the search's)")
    parser.add_argument("--references", action="store_true",
                        help="also retrain the search's reference designs; the top K and controls are then the "
                        "sampled trials' (summary.csv: each one's difference to the best reference)")
    parser.add_argument("--dashboard-port", type=port, help="Ray dashboard port (default 8265, or the next free one)")
    args = parser.parse_args(argv)

    from .orchestration import configure_ray_env, start_ray
    from .orchestration.validation import (
        ValidationSettings,
        held_out,
        plan,
        retrain_for_validation,
        validation_seeds,
    )

    vs = ValidationSettings(args.top, args.controls, args.seeds, args.epochs, args.train_resolution, args.references)
    with setting_errors(FLAGS):
        _, settings, chosen, train = plan(args.run_dir, vs)  # every check before Ray starts
    print(f"validating {len(chosen)} architectures x {args.seeds} seeds at {settings.max_epochs} epochs: "
          + ", ".join(f"#{r} {n}" + (" (reference)" if role == "reference" else "")
                      for r, n, role in zip(chosen["rank"], chosen["name"], chosen["role"], strict=True)), flush=True)
    print(f"seeds {', '.join(map(str, validation_seeds(settings, args.seeds)))} (after the search's); evaluated on "
          f"{held_out(settings)[1]}", flush=True)
    configure_ray_env(None)
    import ray

    try:
        with setting_errors(FLAGS):  # a dashboard port asked for that is taken
            info = start_ray(None, "127.0.0.1", args.dashboard_port)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot start Ray ({str(exc).splitlines()[0]})") from None
    try:
        with setting_errors(FLAGS):
            path = retrain_for_validation(args.run_dir, vs, info["resources"])
    finally:
        ray.shutdown()
    print(path)
    print_summary(path.with_name(VALIDATION_SUMMARY_CSV))
    from .report import write_report

    print(write_report(args.run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["main"]
