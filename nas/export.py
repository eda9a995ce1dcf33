"""`python -m nas.export RUN_DIR [--top K] [--out DIR]`: the search's best architectures, ready to reuse.

Layout of OUT (default RUN_DIR/export):

    OUT/index.json                  the ranking: one entry per exported architecture, with its files
    OUT/rank01_<trial_id>/arch.json the architecture, plain resnext-arch/1 (nas.load_architecture reads it)
    OUT/rank01_<trial_id>/metrics.json  what the search measured for it, and where it came from
    OUT/rank01_<trial_id>/weights.pt    the best trial's trained weights (a state_dict), when it has a
                                        checkpoint: model.load_state_dict(torch.load(p, weights_only=True))
    OUT/rank01_<trial_id>/trained_arch.json  the architecture those weights fit: arch.json with the
                                        stem's input channels and the classifier of the dataset it
                                        trained on (arch.json keeps the space's nominal ends, which
                                        is what its FLOPs budget was measured on)

Trials are ranked as in the report: completed trials by best validation accuracy, then trials with
an accuracy from fewer epochs (stopped by ASHA, or still running in a partial run). The work is done
by `nas.report.export`.
"""

from __future__ import annotations

import argparse
import sys

from .api import callable_command
from .cli import Parser, positive_int, run_main, setting_errors
from .report.export import DEFAULT_TOP, export_run

FLAGS = {"run_dir": None, "top": "--top", "out": "--out"}  # RunDataError.setting -> this command's names


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.export", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(
                        __doc__.splitlines()[2:]))
    parser.add_argument("run_dir", help="the search's run directory (contains trials.csv): a path, or the "
                        "URI the search printed (s3://bucket/runs/NAME?endpoint_override=...)")
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                        help=f"how many architectures to export (default {DEFAULT_TOP})")
    parser.add_argument("--out", default=None, help="where to write them, a path or a URI (default RUN_DIR/export)")
    args = parser.parse_args(argv)
    with setting_errors(FLAGS):
        exported = export_run(args.run_dir, args.top, args.out)
    for entry, path in zip(exported.entries, exported.paths, strict=True):
        metrics = entry["metrics_data"]
        acc = metrics.get("accuracy")
        acc_text = f"{acc * 100:.2f}%" if isinstance(acc, int | float) else "n/a"
        weights = f", weights {exported.out}/{entry['weights']}" if entry.get("weights") else ""
        print(f"#{metrics['rank']} {metrics['name']} ({metrics['outcome']}, {acc_text}): {path}{weights}")
    best = exported.entries[0]["metrics_data"]
    if not best.get("weights"):
        print(f"note: no weights exported for the best trial ({best.get('weights_note')})", file=sys.stderr)
    print(f"index: {exported.out}/index.json")
    return 0


# `nas.export(...)` is the API function (nas.api), also once `import nas.export` made it this module.
callable_command(__name__)

if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["main"]
