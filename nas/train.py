"""`python -m nas.train ARCH.json`: train one architecture to completion and report its test accuracy.

The architecture's input channels and classes are adapted to the dataset (and the command says
so). It trains on the whole training set (or --train-subset images) and evaluates on the test set
every epoch (TrainConfig(final=True)); writes model.pt (a state_dict) and summary.json to --out.
With --json the last line on stdout is a JSON object (test_accuracy, epochs, seconds, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from search_spaces import Architecture, load_architecture, with_io

from .cli import Parser, UsageError, non_negative_float, non_negative_int, positive_float, positive_int, run_main

DEVICES = ("auto", "cpu", "cuda")


def dataset_name(text: str) -> str:
    from trials import DATASET_NAMES as NAMES

    if text in NAMES:
        return text
    if text.startswith("imagefolder:") and len(text) > len("imagefolder:"):
        root = Path(text.split(":", 1)[1]).expanduser()
        if not root.is_dir():
            raise argparse.ArgumentTypeError(f"imagefolder: {root} is not a directory (expected one "
                                             "sub-directory per class)")
        return text
    raise argparse.ArgumentTypeError(
        f"unknown dataset {text!r}; accepted: {', '.join(NAMES)}, imagefolder:PATH")


def device_name(text: str) -> str:
    if text in DEVICES or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"unknown value {text!r}; accepted: {', '.join(DEVICES)}, cuda:N")


def build_parser() -> Parser:
    from trials import TrainConfig  # the help states its defaults (imports torch: see _train)

    d = TrainConfig()
    p = Parser(prog="python -m nas.train", description=__doc__.splitlines()[0])
    p.add_argument("arch", metavar="ARCH.json", help="a resnext-arch/1 file (e.g. exported by nas.search): a "
                   "path, or a URI such as s3://bucket/runs/NAME/best.json?endpoint_override=...")
    p.add_argument("--dataset", type=dataset_name, default="fashion-mnist",
                   help="fashion-mnist (default), cifar10, cifar100, synthetic or imagefolder:PATH")
    p.add_argument("--data-dir", default=None,
                   help="where the dataset lives (else $NAS_DATA_DIR, /usr/share/datasets)")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"training epochs (default {d.epochs})")
    p.add_argument("--train-subset", type=positive_int, default=None, help="train on N images only")
    p.add_argument("--batch-size", type=positive_int, default=None, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=positive_float, default=None, help=f"peak learning rate (default {d.lr:g})")
    p.add_argument("--warmup-epochs", type=non_negative_float, default=None,
                   help=f"linear warm-up epochs (default {d.warmup_epochs:g})")
    p.add_argument("--train-resolution", type=positive_int, default=None, help="resize inputs to N x N")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--device", type=device_name, default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (pays off on long GPU trainings; on the CPU compiling a "
                        "ResNeXt-50 costs more than a short training saves: docs/performance.md)")
    p.add_argument("--out", default=None, help="output directory (default ./nas_train/<ARCH file stem>)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last stdout line")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _train(args)
    except ValueError as exc:  # ArchitectureError, DatasetError, TrainConfigError: bad input, not a bug
        raise UsageError(str(exc)) from None


def _check_paths(data_dir: str | None, out: Path) -> None:
    """Refuse a --data-dir that is a file, or an --out that cannot be written, before any training."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if path.exists() and not path.is_dir():
            raise UsageError(f"--data-dir: {data_dir} is not a directory")
    probe = out.expanduser()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--out: cannot write to {out} ({probe} is not a writable directory)")


def _load_arch(text: str) -> tuple[str, PurePath, Architecture]:
    """ARCH.json from a path or from a URI (best.json or an export's arch.json on a bucket); a URI's
    file is read through nas.rundir.location (pyarrow.fs) into a temporary file and checked
    exactly like a local one."""
    from .rundir.location import RunLocation, StorageError, is_uri

    if not is_uri(text):
        return text, Path(text), load_architecture(text)
    try:
        loc = RunLocation.from_run_uri(text)  # the file is the "run" name; its folder the storage path
        with tempfile.TemporaryDirectory(prefix="nas-arch-") as tmp:
            arch = load_architecture(loc.download("", Path(tmp) / loc.name))
    except StorageError as exc:
        raise UsageError(exc.describe(lambda _setting: "ARCH.json")) from None
    except (FileNotFoundError, OSError) as exc:
        raise UsageError(f"ARCH.json: cannot read {loc.display} ({str(exc).splitlines()[0]})") from None
    return loc.display, PurePosixPath(loc.root), arch


def _train(args: argparse.Namespace) -> int:
    # torch and the training code are imported here, after parsing, on purpose: flag errors stay quick.
    import torch

    from trials import TrainConfig, load_checkpoint, load_dataset, resolve_device, train

    arch_file, arch_path, arch = _load_arch(args.arch)
    out = Path(args.out) if args.out else Path("nas_train") / arch_path.stem
    _check_paths(args.data_dir, out)
    config = TrainConfig.from_dict({
        "dataset": args.dataset, "data_dir": args.data_dir, "epochs": args.epochs,
        "train_subset": args.train_subset, "batch_size": args.batch_size, "lr": args.lr,
        "warmup_epochs": args.warmup_epochs, "train_resolution": args.train_resolution,
        "seed": args.seed, "device": args.device, "threads": args.threads, "final": True,
        "compile": args.compile or None,
    })
    device = resolve_device(config.device)
    dataset = load_dataset(config.dataset, config.data_dir, download=config.download,
                           resolution=config.train_resolution)
    adapted = with_io(arch, in_channels=dataset.in_channels, num_classes=dataset.num_classes)
    if adapted != arch:
        print(f"note: adapted {arch_path.name} from {arch.in_channels} input channels / {arch.num_classes} "
              f"classes to {adapted.in_channels} / {adapted.num_classes} for {dataset.name}", flush=True)
    n_train = min(len(dataset.train), config.train_subset or len(dataset.train))
    print(f"training {adapted.describe()} on {dataset.name} ({n_train} train / {len(dataset.test)} test "
          f"images) for {config.epochs} epochs, batch {config.batch_size}, lr {config.lr}, device {device}"
          + (", compiled" if config.compile else ""), flush=True)

    def progress(m: dict[str, Any]) -> None:
        if m["status"] != "ok":
            return
        print(f"epoch {m['epoch']}/{config.epochs}  loss {m['train_loss']:.4f}  "
              f"test accuracy {100 * m['val_accuracy']:.2f}%  {m['images_per_second']:.1f} images/s  "
              f"{m['epoch_seconds']:.1f}s", flush=True)

    history: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nas_train_") as work:
        result = train(adapted, config, report=lambda m: (history.append(m), progress(m)),
                       checkpoint_dir=work, dataset=dataset)
        ok = result["status"] == "ok"
        out.mkdir(parents=True, exist_ok=True)
        if ok:
            torch.save(load_checkpoint(work)["model"], out / "model.pt")
    summary = {
        "arch": adapted.to_dict(),
        "arch_file": arch_file,
        "dataset": dataset.name,
        "status": result["status"],
        "reason": result["reason"],
        "test_accuracy": result.get("test_accuracy", 0.0),
        "test_loss": result.get("test_loss", result["val_loss"]),
        "epochs": result["epoch"] if ok else result["epoch"] - 1,
        "seconds": result["seconds"],
        **{k: result[k] for k in ("flops_nominal", "params_nominal", "flops_trained", "params_trained")},
        "config": config.to_dict(),
        "history": history,
        "model": str(out / "model.pt") if ok else None,
        "device": str(device),
        "torch": torch.__version__,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if ok:
        print(f"test accuracy {100 * summary['test_accuracy']:.2f}% after {summary['epochs']} epochs "
              f"({summary['seconds']:.1f}s); saved {out / 'model.pt'} and {out / 'summary.json'}", flush=True)
    else:
        print(f"error: training stopped: {result['status']}: {result['reason']}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "arch")}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
