"""`python -m nas.analyze RUN_DIR`: the search's report, `RUN_DIR/report.html`.

One self-contained page (plotly.js is embedded, so it works offline) with the figures of
`nas.report.figures`, a header summarising the run, the top-k table (linking to each architecture's
resnext-arch/1 JSON, written to `RUN_DIR/architectures/<trial_id>.json`) and the failed trials.
Also writes `RUN_DIR/trials.parquet` beside the search's trials.csv, and PNG copies of the figures
under `RUN_DIR/figures/` when kaleido is installed. The work is done by `nas.report`.

`python -m nas.analyze RUN_A RUN_B ... [--out comparison.html]`: also compares the runs, overlaying
their error EDFs (n per curve, at one fidelity) in one page, written to --out (default
./comparison.html); each run still gets its own report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import Parser, UsageError, positive_int, run_main, setting_errors
from .report import load_run, report_run
from .report.compare import DEFAULT_OUT, check_out, write_comparison
from .report.write import DEFAULT_TOP

FLAGS = {"run_dir": None, "top": "--top", "out": "--out"}  # RunDataError.setting -> how this command names it


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.analyze", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="+",
                        help="the search's run directory (contains trials.csv): a path, or the URI the search "
                        "printed (s3://bucket/runs/NAME?endpoint_override=...); several: also compare them")
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                        help=f"rows of the top-k table (default {DEFAULT_TOP})")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"with several runs: the comparison page to write (default ./{DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.out is not None and len(args.run_dir) < 2:
        raise UsageError("--out: the comparison page needs two or more run directories")
    with setting_errors(FLAGS):
        if len(args.run_dir) > 1:  # check every input before writing anything
            check_out(args.out or DEFAULT_OUT)
            for run_dir in args.run_dir:
                load_run(run_dir)
        for run_dir in args.run_dir:
            path, run = report_run(run_dir, args.top)
            for warning in run.warnings:
                print(f"warning: {run.run_dir}: {warning}", file=sys.stderr)
            counts = ", ".join(f"{n} {o}" for o, n in run.outcome_counts().items()) or "no trials"
            print(f"{path} ({len(run.trials)} trials: {counts})")
        if len(args.run_dir) > 1:
            out, runs = write_comparison(args.run_dir, args.out or DEFAULT_OUT)
            print(f"{out} (comparison of {len(runs)} runs)")
    return 0



if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["main"]
