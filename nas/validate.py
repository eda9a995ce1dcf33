"""`python -m nas.validate RUN_DIR --top K [--controls M] [--seeds S] [--epochs E] [--train-resolution R]`:
does the search's ranking hold at a higher fidelity?

Retrains the run's top K architectures and M others drawn across its ranking, S seeds each, for E
epochs (default: twice the search's), as Ray Tune trials on the search's machinery; writes
RUN_DIR/validation/validation.csv and the run's report, which gains "Does the search's ranking hold?"
(proxy vs validated accuracy, Kendall tau and Spearman rho with bootstrap intervals). Run it again to
continue an interrupted validation. The work is done by nas.orchestration.validation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import Parser, UsageError, non_negative_int, port, positive_int, run_main, setting_errors, wrap

FLAGS = {"run_dir": None, "top": "--top", "controls": "--controls", "seeds": "--seeds", "epochs": "--epochs",
         "train_resolution": "--train-resolution"}


def local_run_dir(text: str) -> Path:
    """RUN_DIR: a local directory. A run on an object store is refused, not misread as a path."""
    if "://" in text:
        raise ValueError(f"{text} is a URI; nas.validate retrains from a local run directory (copy the run "
                         "there first)")
    return Path(text)


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
    parser.add_argument("--dashboard-port", type=port, help="Ray dashboard port (default 8265, or the next free one)")
    args = parser.parse_args(argv)

    from .orchestration import configure_ray_env, start_ray
    from .orchestration.validation import ValidationSettings, plan, retrain_for_validation

    vs = ValidationSettings(args.top, args.controls, args.seeds, args.epochs, args.train_resolution)
    with setting_errors(FLAGS):
        _, settings, chosen, train = plan(args.run_dir, vs)  # every check before Ray starts
    print(f"validating {len(chosen)} architectures x {args.seeds} seeds at {settings.max_epochs} epochs: "
          + ", ".join(f"#{r} {n}" for r, n in zip(chosen["rank"], chosen["name"], strict=True)), flush=True)
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
    from .report import write_report

    print(write_report(args.run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["main"]
