"""`python -m nas.analyze RUN_DIR`: the search's report, `RUN_DIR/report.html`.

One self-contained page (plotly.js is embedded, so it works offline) with the figures of
`nas.report.figures`, a header summarising the run, the top-k table (linking to each architecture's
resnext-arch/1 JSON, written to `RUN_DIR/architectures/<trial_id>.json`) and the failed trials.
Also writes `RUN_DIR/trials.parquet` beside the search's trials.csv, and PNG copies of the figures
under `RUN_DIR/figures/` when kaleido is installed. The work is done by `nas.report`.
"""

from __future__ import annotations

import argparse
import sys

from .cli import Parser, positive_int, run_main, setting_errors
from .report import report_run
from .report.write import DEFAULT_TOP

FLAGS = {"run_dir": None, "top": "--top"}  # RunDataError.setting -> how this command names it


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.analyze", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="the search's run directory (contains trials.csv): a path, or the "
                        "URI the search printed (s3://bucket/runs/NAME?endpoint_override=...)")
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                        help=f"rows of the top-k table (default {DEFAULT_TOP})")
    args = parser.parse_args(argv)
    with setting_errors(FLAGS):
        path, run = report_run(args.run_dir, args.top)
    for warning in run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    counts = ", ".join(f"{n} {o}" for o, n in run.outcome_counts().items()) or "no trials"
    print(f"{path} ({len(run.trials)} trials: {counts})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["main"]
