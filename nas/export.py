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
import json
import sys
from pathlib import Path

from .api import callable_command
from .cli import Parser, positive_int, run_main, setting_errors
from .report import export_top
from .report.export import DEFAULT_TOP

FLAGS = {"run_dir": None, "top": "--top", "out": "--out"}  # RunDataError.setting -> this command's names


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.export", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(
                        __doc__.splitlines()[2:]))
    parser.add_argument("run_dir", type=Path, help="the search's run directory (contains trials.csv)")
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                        help=f"how many architectures to export (default {DEFAULT_TOP})")
    parser.add_argument("--out", type=Path, default=None, help="where to write them (default RUN_DIR/export)")
    args = parser.parse_args(argv)
    with setting_errors(FLAGS):
        paths = export_top(args.run_dir, args.top, args.out)
    out = paths[0].parent.parent
    for p in paths:
        metrics = json.loads((p.parent / "metrics.json").read_text())
        acc = metrics.get("accuracy")
        acc_text = f"{acc * 100:.2f}%" if isinstance(acc, int | float) else "n/a"
        weights = f", weights {p.parent / metrics['weights']}" if metrics.get("weights") else ""
        print(f"#{metrics['rank']} {metrics['name']} ({metrics['outcome']}, {acc_text}): {p}{weights}")
    best = json.loads((paths[0].parent / "metrics.json").read_text())
    if not best.get("weights"):
        print(f"note: no weights exported for the best trial ({best.get('weights_note')})", file=sys.stderr)
    print(f"index: {out / 'index.json'}")
    return 0


# `nas.export(...)` is the API function (nas.api), also once `import nas.export` made it this module.
callable_command(__name__)

if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["main"]
