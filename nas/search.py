"""`python -m nas.search --budget 4GFLOPs`: search ResNeXt cardinality, width and depth under a FLOPs budget.

Trials are Ray Tune trials, proposed by Optuna (only budget-feasible architectures) and cut early by
ASHA. `--dry-run` shows what would be proposed, without training or starting Ray.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from dataclasses import asdict, replace

from search_spaces import complexity
from search_spaces.budget import Budget, format_flops, parse_flops
from search_spaces.sampling import BudgetError, FeasibleSampler, propose_many
from search_spaces.spaces import SPACES

from .cli import (
    Parser,
    UsageError,
    choice,
    float_where,
    int_list,
    int_where,
    non_negative_int,
    positive_float,
    positive_int,
    run_main,
    wrap,
)
from .tuner import OBJECTIVES, SAMPLERS, SCHEDULERS, SearchSettings

# The CPU preset (2 cores, under 15 minutes, >= 8 trials): measured in docs/performance.md.
CPU_PRESET = {"trials": 9, "max_epochs": 2, "grace_epochs": 1, "reduction_factor": 2, "train_subset": 2000,
              "val_size": 1000}
FULL_PRESET = {"trials": 64, "max_epochs": 12, "grace_epochs": 1, "reduction_factor": 3}
FULL_FLAGS = "--full (all 55,000 training images, --max-epochs 12, --trials 64)"
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?"
                       r"\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'30m', '2h', '1h30m', '90s', '600' (seconds) -> seconds."""
    match = _DURATION.match(text or "")
    if not text or not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"cannot read duration {text!r}; accepted: 90s, 30m, 2h, 1h30m, 1d, or seconds")
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    seconds = ((d * 24 + h) * 60 + m) * 60 + s
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\]"


def parse_host_port(text: str) -> str:
    match = re.fullmatch(rf"(?:ray://)?(?:{_HOST}):(\d{{1,5}})", text)
    if text == "auto" or (match and 0 < int(match[1]) <= 65535):
        return text
    raise ValueError(f"expected HOST:PORT (port 1-65535), ray://HOST:PORT or auto, got {text!r}")


def parse_host(text: str) -> str:
    if re.fullmatch(_HOST, text) or text in ("0.0.0.0", "::"):
        return text
    raise ValueError(f"expected a host name or IP address (default 127.0.0.1), got {text!r}")


gpu_share = float_where("a number in [0, 1] (a share of one GPU)", lambda v: 0 <= v <= 1)
tolerance = float_where("a fraction in (0, 1)", lambda v: 0 < v < 1)
port = int_where("a port number 1-65535", lambda v: 0 < v <= 65535)
reduction_factor = int_where("an integer >= 2 (ASHA keeps 1/factor of the trials per rung)", lambda v: v >= 2)


def build_parser() -> Parser:
    p = Parser(prog="python -m nas.search", description=__doc__,
               epilog="On a CPU-only machine the search is scaled down unless --full is given.")
    p.add_argument("--budget", type=wrap(parse_flops), help="FLOPs budget, e.g. 4GFLOPs, 400MFLOPs, 4e9")
    p.add_argument("--tolerance", type=tolerance, default=0.1,
                   help="feasible FLOPs lie in [(1 - tolerance) * budget, budget] (default 0.1)")
    p.add_argument("--space", type=choice(tuple(SPACES)), default="resnext-imagenet")
    p.add_argument("--free", action="store_true", help="each stage picks its own C and d (default: shared)")
    p.add_argument("--resolution", type=positive_int, help="resolution the budget is measured at "
                   "(default: the space's, 224 or 32)")
    data = p.add_argument_group("data (passed to every trial)")
    data.add_argument("--dataset", default="fashion-mnist",
                      help="fashion-mnist, cifar10, cifar100, synthetic or imagefolder:PATH")
    data.add_argument("--data-dir")
    data.add_argument("--train-subset", type=positive_int, help="train on N images of the training split")
    data.add_argument("--train-resolution", type=positive_int, help="resize training inputs to N x N")
    data.add_argument("--batch-size", type=positive_int)
    data.add_argument("--lr", type=positive_float)
    s = p.add_argument_group("search")
    s.add_argument("--sampler", type=choice(SAMPLERS), default="tpe")
    s.add_argument("--cardinality", type=int_list, default=[1, 2, 4, 8, 32],
                   help="grid sampler: cardinalities of the capacity-matched sweep (first sets the width)")
    s.add_argument("--match", type=choice(("params", "flops")), default="params")
    s.add_argument("--depths", type=int_list, help="grid sampler: fixed depths (default 3,4,6,3 / 3,3,3)")
    s.add_argument("--seeds", type=positive_int, default=1, help="grid sampler: seeds per architecture")
    s.add_argument("--objective", type=choice(OBJECTIVES), default="accuracy")
    s.add_argument("--scheduler", type=choice(SCHEDULERS), default="asha")
    s.add_argument("--max-epochs", type=positive_int)
    s.add_argument("--grace-epochs", type=positive_int)
    s.add_argument("--reduction-factor", type=reduction_factor)
    s.add_argument("--trials", type=positive_int)
    s.add_argument("--time-budget", type=wrap(parse_duration), help="stop after 30m, 2h, ...")
    s.add_argument("--max-concurrent", type=positive_int)
    s.add_argument("--seed", type=non_negative_int, default=0)
    s.add_argument("--full", action="store_true", help="no CPU scale-down: " + FULL_FLAGS)
    r = p.add_argument_group("Ray")
    r.add_argument("--address", type=wrap(parse_host_port), help="join a Ray cluster (HOST:PORT or auto)")
    r.add_argument("--dashboard-host", type=wrap(parse_host), default="127.0.0.1")
    r.add_argument("--dashboard-port", type=port, default=8265)
    r.add_argument("--gpus-per-trial", type=gpu_share)
    r.add_argument("--cpus-per-trial", type=positive_float)
    r.add_argument("--max-failures", type=non_negative_int, default=2,
                   help="retries of a failed trial, from its last checkpoint")
    o = p.add_argument_group("output")
    o.add_argument("--storage-path", default="nas_runs")
    o.add_argument("--name", help="run name (default: search-<budget>-<time>); RUN_DIR = storage/name")
    o.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted search")
    o.add_argument("--dry-run", action="store_true", help="show proposals, train nothing")
    o.add_argument("--samples", type=positive_int, default=10, help="--dry-run: how many proposals")
    o.add_argument("--json", action="store_true", help="--dry-run: one JSON object per line")
    return p


def settings_from_args(args) -> SearchSettings:
    if args.budget is None:
        raise UsageError("--budget: required (e.g. --budget 4GFLOPs), unless --resume RUN_DIR")
    if args.time_budget is not None and args.time_budget < 1:
        raise UsageError("--time-budget: must be at least 1s")
    name = args.name or time.strftime(f"search-{format_flops(args.budget).replace(' ', '')}-%Y%m%d-%H%M%S")
    if "/" in name or name in (".", ".."):
        raise UsageError(f"--name: must be a plain directory name, got {name!r}")
    return SearchSettings(
        budget_flops=args.budget, tolerance=args.tolerance, space=args.space, free=args.free,
        budget_resolution=args.resolution, dataset=args.dataset, data_dir=args.data_dir,
        train_subset=args.train_subset, train_resolution=args.train_resolution, sampler=args.sampler,
        cardinality=args.cardinality, match=args.match, depths=args.depths, seeds=args.seeds,
        objective=args.objective, scheduler=args.scheduler, max_epochs=args.max_epochs or 0,
        grace_epochs=args.grace_epochs or 0, reduction_factor=args.reduction_factor or 0,
        trials=args.trials or 0, time_budget_s=args.time_budget, max_concurrent=args.max_concurrent,
        seed=args.seed, batch_size=args.batch_size, lr=args.lr, gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial, max_failures=args.max_failures,
        storage_path=args.storage_path, name=name,
    )


def apply_preset(settings: SearchSettings, has_gpu: bool, full: bool) -> tuple[SearchSettings, str]:
    """Fill unset sizes: full search on a GPU (or with --full), the measured CPU preset otherwise."""
    preset = FULL_PRESET if (has_gpu or full) else CPU_PRESET
    changes = {k: v for k, v in preset.items() if k in asdict(settings) and not getattr(settings, k)}
    note = ""
    if preset is CPU_PRESET:
        if settings.train_subset is None:
            changes["train_subset"] = preset["train_subset"]
        if settings.dataset != "fashion-mnist":
            changes.pop("train_subset", None)
        scaled = {k: v for k, v in changes.items()}
        if scaled:
            note = ("No GPU: scaled down to " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in scaled.items())
                    + f". Full search: {FULL_FLAGS}.")
    settings = replace(settings, **changes)
    if settings.grace_epochs > settings.max_epochs:
        raise UsageError(f"--grace-epochs {settings.grace_epochs} exceeds --max-epochs {settings.max_epochs}")
    return settings, note


def validate(settings: SearchSettings) -> None:
    """Everything that can be refused before Ray starts is refused here (nothing is written yet)."""
    from pathlib import Path

    from .tuner import grid_points, resolve_space

    if settings.data_dir is not None and not Path(settings.data_dir).expanduser().is_dir():
        raise UsageError(f"--data-dir: {settings.data_dir} is not a directory")
    if settings.grace_epochs and settings.max_epochs and settings.grace_epochs > settings.max_epochs:
        raise UsageError(f"--grace-epochs {settings.grace_epochs} exceeds --max-epochs {settings.max_epochs}")
    space = resolve_space(settings)
    budget = Budget(settings.budget_flops, settings.tolerance)
    if settings.sampler == "grid":
        grid_points(settings, space, budget)  # wrong --depths, unreachable budget
    else:
        FeasibleSampler(space, budget)  # unreachable budget: the error gives the space's range


# --- dry run ---------------------------------------------------------------------------------------------

def dry_run(settings: SearchSettings, samples: int, as_json: bool) -> int:
    from .tuner import grid_points, resolve_space

    space = resolve_space(settings)
    budget = Budget(settings.budget_flops, settings.tolerance)
    if settings.sampler == "grid":
        archs = [p.arch for p in grid_points(settings, space, budget)]
    else:
        if settings.sampler not in ("tpe", "random"):
            print(f"note: --dry-run shows {settings.sampler}'s start-up proposals with the random sampler",
                  file=sys.stderr)
        archs = propose_many(space, budget, samples, "tpe" if settings.sampler == "tpe" else "random",
                             settings.seed)
    if not as_json:
        print(f"space {space.name} ({'free' if settings.free else 'shared'} C and d), budget {budget} at "
              f"{space.resolution}x{space.resolution} ({space.in_channels} input channels, {space.num_classes} "
              f"classes; trials adapt both ends to {settings.dataset})")
        print(f"{'#':>3} {'architecture':<32} {'GFLOPs':>7} {'params (M)':>10} {'of budget':>9}")
    for i, arch in enumerate(archs):
        cx = complexity(arch, space.resolution)
        if as_json:
            print(json.dumps({"arch": arch.to_dict(), "name": arch.describe(), "flops": cx.flops,
                              "params": cx.params, "feasible": budget.contains(cx.flops)}))
        else:
            print(f"{i + 1:>3} {arch.describe():<32} {cx.flops / 1e9:>7.3f} {cx.params / 1e6:>10.2f} "
                  f"{100 * cx.flops / budget.flops:>8.1f}%")
    return 0


# --- the search ------------------------------------------------------------------------------------------

def _discard(run_dir, created: bool) -> None:
    import shutil

    if created and run_dir.is_dir() and not (run_dir / "trials.csv").exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def search(settings: SearchSettings, args, resume: bool) -> int:
    from .tuner import check_run_dir, configure_ray_env, run, start_ray

    created = not settings.run_dir.exists()
    check_run_dir(settings, resume)
    configure_ray_env(args.address)
    import ray

    try:
        ray_info = start_ray(args.address, args.dashboard_host, args.dashboard_port)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        _discard(settings.run_dir, created)
        raise UsageError(f"--address: cannot start or reach Ray ({str(exc).splitlines()[0]})") from None
    try:
        if args.dashboard_host not in ("127.0.0.1", "localhost") and not args.address:
            print(f"warning: the Ray dashboard listens on {args.dashboard_host}, reachable beyond this "
                  "machine; token authentication stays on", file=sys.stderr)
        print(f"Ray dashboard: {ray_info['dashboard'] or '(not running)'}  (token authentication: the "
              f"token is in {ray_info['token_path']}; `ray get-auth-token` prints it)", flush=True)
        has_gpu = ray_info["resources"].get("GPU", 0) > 0
        if not resume:
            settings, note = apply_preset(settings, has_gpu, args.full)
            if note:
                print(note, flush=True)
        summary = run(settings, resume, ray_info["resources"])
    except UsageError:
        _discard(settings.run_dir, created)  # refused before any trial ran: leave nothing behind
        raise
    finally:
        ray.shutdown()
    print(f"\nBest: {summary.get('best', 'none')}"
          + (f"  val accuracy {100 * summary['best_val_accuracy']:.1f}%" if "best" in summary else ""))
    for key in ("best_json", "report"):
        if key in summary:
            print(f"{key.replace('_', ' ')}: {summary[key]}")
    print(f"trials: {settings.run_dir / 'trials.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    resume = args.resume is not None
    try:
        if resume:
            from pathlib import Path

            from .tuner import load_settings

            run_dir = Path(args.resume).expanduser().resolve()
            if not (run_dir / "search.json").is_file():
                raise UsageError(f"--resume: {args.resume} is not a search run directory (no search.json)")
            settings = replace(load_settings(run_dir), storage_path=str(run_dir.parent), name=run_dir.name)
        else:
            settings = settings_from_args(args)
        if args.dry_run:
            settings, _ = apply_preset(settings, has_gpu=False, full=True)
            return dry_run(settings, args.samples, args.json)
        if not resume:
            validate(settings)
        return search(settings, args, resume)
    except BudgetError as exc:
        raise UsageError(f"--budget: {exc}") from None
    except ValueError as exc:  # from the spaces and samplers: bad combinations of valid flags
        raise UsageError(str(exc)) from None


if __name__ == "__main__":
    raise SystemExit(run_main(main))
