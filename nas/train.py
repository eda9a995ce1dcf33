"""`python -m nas.train ARCH.json`: train one architecture to completion and report its test accuracy.

The architecture's input channels and classes are adapted to the dataset (and the command says
so). Given a run's best.json, it trains on the run's dataset at the run's training resolution (from
search.json beside it) unless --dataset / --train-resolution say otherwise. Progress within each epoch
is shown as it trains (a line rewritten in place on a terminal; every 30 s when piped). It trains on
the whole training set (or --train-subset images) and evaluates on the test set every epoch
(TrainConfig(final=True)); writes model.pt (a state_dict) and summary.json to --out.
With --json the last line on stdout is a JSON object (test_accuracy, epochs, seconds, ...).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import posixpath
import sys
import tempfile
import time
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from search_spaces import Architecture, load_architecture, with_io

from .cli import Parser, UsageError, non_negative_float, non_negative_int, positive_float, positive_int, run_main

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_DATASET = "fashion-mnist"
SEARCH_JSON = "search.json"  # nas.rundir.schema's name (importing it here would import pandas before parsing)


class StepLine:
    """Progress within an epoch (trials.loop calls it after every step): on a terminal one line rewritten
    in place, at most every `tty_interval` seconds; piped (a log), a plain line after the first step and
    then every `interval` seconds, so a log shows the training started and how fast it goes. An epoch of
    the full Fashion-MNIST took 2.5 minutes with nothing printed before this."""

    def __init__(self, epochs: int, stream: TextIO | None = None, interval: float = 30.0,
                 tty_interval: float = 0.2, clock=time.monotonic) -> None:
        self.epochs, self.stream, self.interval, self.tty_interval, self.clock = (
            epochs, stream, interval, tty_interval, clock)
        self.epoch, self.t0, self.last, self.drawn = 0, 0.0, 0.0, False

    @property
    def out(self) -> TextIO:
        return self.stream or sys.stdout

    @property
    def tty(self) -> bool:
        try:
            return bool(self.out.isatty())
        except (AttributeError, ValueError):
            return False

    def __call__(self, p) -> None:  # p: trials.loop.StepProgress
        now = self.clock()
        if p.epoch != self.epoch:
            self.epoch, self.t0, self.last = p.epoch, now, -math.inf
        last_step = p.step == p.steps
        if not (p.step == 1 or last_step or now - self.last >= (self.tty_interval if self.tty else self.interval)):
            return
        self.last = now
        left = ""
        if p.step > 1:  # the first step sets the clock (it pays for warm-up)
            per_step = (now - self.t0) / (p.step - 1)
            left = f", ~{_duration(per_step * (p.steps - p.step))} left in the epoch"
        text = (f"epoch {p.epoch}/{self.epochs}: step {p.step}/{p.steps} ({100 * p.step / p.steps:.0f}%), "
                f"loss {p.loss:.4f}{left}" + (", evaluating" if last_step else ""))
        if self.tty:
            self.out.write("\r\x1b[K" + text)
            self.drawn = True
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def clear(self) -> None:
        """Before a line of its own (the epoch's result): the in-place line goes."""
        if self.drawn and self.tty:
            self.out.write("\r\x1b[K")
            self.drawn = False


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def run_settings(arch_text: str) -> tuple[str | None, dict[str, Any]]:
    """(where, search.json) of the run ARCH.json belongs to, when it sits in a run directory (RUN/best.json,
    locally or on an object store); (None, {}) otherwise or when unreadable."""
    from .rundir.location import RunLocation, StorageError, is_uri

    try:
        if is_uri(arch_text):
            s = urlsplit(arch_text)
            folder = urlunsplit((s.scheme, s.netloc, posixpath.dirname(s.path.rstrip("/")), s.query, s.fragment))
            loc = RunLocation.from_run_uri(folder)
            return f"{loc.display}/{SEARCH_JSON}", json.loads(loc.read_text(SEARCH_JSON))
        path = Path(arch_text).expanduser().parent / SEARCH_JSON
        return (str(path), json.loads(path.read_text())) if path.is_file() else (None, {})
    except (StorageError, OSError, ValueError):
        return None, {}


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
    p.add_argument("--dataset", type=dataset_name, default=None,
                   help="fashion-mnist, cifar10, cifar100, synthetic or imagefolder:PATH (default: the run's "
                        f"when ARCH.json sits in a run directory beside its {SEARCH_JSON}, else {DEFAULT_DATASET})")
    p.add_argument("--data-dir", default=None,
                   help="where the dataset lives (else $NAS_DATA_DIR, /usr/share/datasets)")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"training epochs (default {d.epochs})")
    p.add_argument("--train-subset", type=positive_int, default=None, help="train on N images only")
    p.add_argument("--batch-size", type=positive_int, default=None, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=positive_float, default=None, help=f"peak learning rate (default {d.lr:g})")
    p.add_argument("--warmup-epochs", type=non_negative_float, default=None,
                   help=f"linear warm-up epochs (default {d.warmup_epochs:g})")
    p.add_argument("--train-resolution", type=positive_int, default=None,
                   help="resize inputs to N x N (default: the run's training resolution, else the dataset's)")
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
    # A run's best.json trains on what the run searched on, at its resolution, unless the flags say else.
    where, search = run_settings(args.arch)
    dataset_name_ = args.dataset or search.get("dataset") or DEFAULT_DATASET
    resolution = args.train_resolution or search.get("train_resolution")
    taken = [f"{k} {v}" for k, v, flag in (("dataset", dataset_name_, args.dataset),
                                           ("resolution", resolution, args.train_resolution))
             if flag is None and v is not None and search.get("dataset")]
    if taken and where:
        print(f"note: {' and '.join(taken)} from {where}", flush=True)
    config = TrainConfig.from_dict({
        "dataset": dataset_name_, "data_dir": args.data_dir, "epochs": args.epochs,
        "train_subset": args.train_subset, "batch_size": args.batch_size, "lr": args.lr,
        "warmup_epochs": args.warmup_epochs, "train_resolution": resolution,
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

    steps = StepLine(config.epochs)

    def progress(m: dict[str, Any]) -> None:
        steps.clear()
        if m["status"] != "ok":
            return
        print(f"epoch {m['epoch']}/{config.epochs}  loss {m['train_loss']:.4f}  "
              f"test accuracy {100 * m['val_accuracy']:.2f}%  {m['images_per_second']:.1f} images/s  "
              f"{m['epoch_seconds']:.1f}s", flush=True)

    history: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nas_train_") as work:
        result = train(adapted, config, report=lambda m: (history.append(m), progress(m)),
                       checkpoint_dir=work, dataset=dataset, on_step=steps)
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
