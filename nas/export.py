"""`python -m nas.export RUN_DIR [--top K] [--out DIR] [--format F]`: the best architectures, ready to reuse.

Layout of OUT (default RUN_DIR/export):

    OUT/index.json                  the ranking: one entry per exported architecture, with its files
    OUT/rank01_<trial_id>/arch.json the architecture as trained, plain resnext-arch/1: the stem's input
                                        channels and the classifier of the dataset it trained on, so it
                                        fits the weights (nas.build_model + load_state_dict)
    OUT/rank01_<trial_id>/arch_nominal.json  the architecture as searched: the space's nominal ends
                                        (3 channels, 1000 classes for resnext-imagenet), what its FLOPs
                                        budget was measured on
    OUT/rank01_<trial_id>/metrics.json  what the search measured for it, where it came from, and the
                                        input the model expects (`input`: normalisation, classes, resolution)
    OUT/rank01_<trial_id>/weights.safetensors  the trial's trained weights, for every rank whose trial
                                        kept a checkpoint, with arch.json in the file's metadata:
                                        nas.report.deploy.load_model(p) (weights.pt, a torch state_dict,
                                        without the `export` extra: pip install 'resnext-nas[export]')
    OUT/rank01_<trial_id>/model.onnx    --format onnx: the model with dynamic batch, height and width, and
                                        metadata_props: architecture, mean, std, class_names,
                                        train_resolution, preprocessing; checked against PyTorch on random
                                        inputs of two sizes with onnxruntime (max abs difference in metrics.json)
    OUT/rank01_<trial_id>/model.torchscript.pt  --format torchscript: the traced model, checked the same
                                        way after torch.jit.load

Trials are ranked as in the report and as the search's checkpoint keeping: completed trials first, then
best validation accuracy, epochs, fewer FLOPs (nas.rundir.schema.rank_key). Each rank's weights are its
trial's last checkpoint: metrics.json's `val_accuracy` describes them, `accuracy` ranked the trial. The
work is done by `nas.report.export`.
"""

from __future__ import annotations

import argparse
import sys

from .cli import Parser, positive_int, run_main, setting_errors
from .report.deploy import FORMATS
from .report.export import DEFAULT_TOP, export_run

# RunDataError.setting -> this command's names
FLAGS = {"run_dir": None, "top": "--top", "out": "--out", "format": "--format"}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.export", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(
                        __doc__.splitlines()[2:]))
    parser.add_argument("run_dir", help="the search's run directory (contains trials.csv): a path, or the "
                        "URI the search printed (s3://bucket/runs/NAME?endpoint_override=...)")
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                        help=f"how many architectures to export (default {DEFAULT_TOP})")
    parser.add_argument("--out", default=None, help="where to write them, a path or a URI (default RUN_DIR/export)")
    parser.add_argument("--format", action="append", default=[], metavar=",".join(FORMATS),
                        help="also write each exported model as ONNX and/or TorchScript, checked against "
                        "PyTorch on random inputs (a difference beyond the tolerance is an error)")
    args = parser.parse_args(argv)
    formats = [f.strip() for text in args.format for f in text.split(",")]
    with setting_errors(FLAGS):
        exported = export_run(args.run_dir, args.top, args.out, formats)
    for entry, path in zip(exported.entries, exported.paths, strict=True):
        metrics = entry["metrics_data"]
        acc = metrics.get("accuracy")
        acc_text = f"{acc * 100:.2f}%" if isinstance(acc, int | float) else "n/a"
        weights = f", weights {exported.out}/{entry['weights']}" if entry.get("weights") else ""
        print(f"#{metrics['rank']} {metrics['name']} ({metrics['outcome']}, {acc_text}): {path}{weights}")
        for fmt, check in metrics.get("models", {}).items():
            print(f"    {fmt}: {check['file']} checked with {check['check']}: max abs difference "
                  f"{check['max_abs_diff']:.2g} (allowed {check['tolerance']:.2g}), exported in "
                  f"{check['export_seconds']:.1f} s")
    if formats and not any(e["metrics_data"].get("models") for e in exported.entries):
        print("note: no exported trial kept a checkpoint, so no model file was written", file=sys.stderr)
    best = exported.entries[0]["metrics_data"]
    if not best.get("weights"):
        print(f"note: no weights exported for the best trial ({best.get('weights_note')})", file=sys.stderr)
    print(f"index: {exported.out}/index.json")
    return 0



if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["main"]
