"""`python -m nas.search --budget 4GFLOPs`: search ResNeXt cardinality, width and depth under a FLOPs budget.

Trials are Ray Tune trials, proposed by Optuna (only budget-feasible architectures) and cut early by
ASHA. `--dry-run` shows what would be proposed, without training or starting Ray. The work is done by
`nas.orchestration`; this command parses flags, names them in errors and prints.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

from search_spaces import SPACES, BudgetError, complexity, format_flops, parse_flops
from search_spaces.complexity import smallest_resolution, stage_map_sizes

from . import orchestration
from .api import callable_command
from .cli import (
    Parser,
    UsageError,
    choice,
    gpu_share,
    int_list,
    non_negative_int,
    parse_duration,
    parse_host,
    parse_host_port,
    port,
    positive_float,
    positive_int,
    reduction_factor,
    run_main,
    setting_errors,
    tolerance,
    wrap,
)
from .orchestration import OBJECTIVES, SAMPLERS, SCHEDULERS, SearchConfigError, SearchSettings
from .orchestration.data import absolute_data_env
from .orchestration.settings import DEFAULT_KEEP_CHECKPOINTS, resolve_data_paths, train_resolution
from .orchestration.tracking import dashboard_line
from .report.schema import TRIALS_CSV

FULL_FLAGS = "--full (all 55,000 training images, --max-epochs 12, --trials 64)"
# SearchSettings fields whose flag is not `--` + the field with dashes.
FLAGS = {"budget_flops": "--budget", "budget_resolution": "--resolution", "time_budget_s": "--time-budget"}


def cluster_address(text: str) -> str:
    """--address: HOST:PORT or auto. Ray Client (ray://) is refused: with it Tune runs on the head node and
    the results never reach this process (review finding 12); `ray job submit` runs the driver there."""
    if text.startswith("ray://"):
        raise ValueError("ray:// (Ray Client) is not supported: run the search on the cluster with "
                         "`ray job submit --address http://HEAD:8265 --working-dir . -- python -m nas.search ...`")
    return parse_host_port(text)


def job_address() -> str | None:
    """The cluster of the Ray job this process runs in (`ray job submit` sets RAY_ADDRESS to its GCS
    address): joined instead of starting a second Ray. A dashboard (http) address is for `ray job` only."""
    address = os.environ.get("RAY_ADDRESS", "")
    return address if address and "://" not in address else None


def build_parser() -> Parser:
    p = Parser(prog="python -m nas.search", description=__doc__,
               epilog="On a CPU-only machine the search is scaled down unless --full is given.")
    p.add_argument("--budget", type=wrap(parse_flops), help="FLOPs budget, e.g. 4GFLOPs, 400MFLOPs, 4e9")
    p.add_argument("--tolerance", type=tolerance, default=0.1,
                   help="feasible FLOPs lie in [(1 - tolerance) * budget, budget] (default 0.1)")
    p.add_argument("--space", type=choice(tuple(SPACES)), default=None, help="a built-in space (default "
                   "resnext-imagenet): " + ", ".join(SPACES))
    p.add_argument("--space-file", metavar="SPACE.json", help="a search space of your own: cardinalities, width "
                   "and depth ranges per stage, stem, base widths and the budget's resolution (format: the "
                   "built-in spaces' files in search_spaces/space_files/)")
    p.add_argument("--free", action="store_true", help="each stage picks its own C and d (default: shared)")
    p.add_argument("--resolution", type=positive_int, help="resolution the budget is measured at "
                   "(default: the space's, 224 or 32)")
    data = p.add_argument_group("data (passed to every trial)")
    data.add_argument("--dataset", default="fashion-mnist",
                      help="fashion-mnist, cifar10, cifar100, synthetic or imagefolder:PATH")
    data.add_argument("--data-dir")
    data.add_argument("--train-subset", type=positive_int, help="train on N images of the training split")
    data.add_argument("--val-size", type=positive_int, help="validation images held out of the training split "
                      "(default: the CPU preset's 1000, else min(5000, a tenth of the training images))")
    data.add_argument("--train-resolution", type=positive_int,
                      help="resize training inputs to N x N (default: the dataset's own; on a GPU the smallest "
                      "size keeping every stage's maps >= 2x2, 33 for Fashion-MNIST)")
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
    s.add_argument("--scheduler", type=choice(SCHEDULERS), default=None,
                   help="asha (default) or none; the grid sweep defaults to none (every point trains fully)")
    s.add_argument("--max-epochs", type=positive_int)
    s.add_argument("--grace-epochs", type=positive_int)
    s.add_argument("--reduction-factor", type=reduction_factor)
    s.add_argument("--trials", type=positive_int)
    s.add_argument("--time-budget", type=wrap(parse_duration), help="stop after 30m, 2h, ...")
    s.add_argument("--max-concurrent", type=positive_int)
    s.add_argument("--seed", type=non_negative_int, default=0)
    s.add_argument("--keep-checkpoints", type=non_negative_int, default=DEFAULT_KEEP_CHECKPOINTS, metavar="K",
                   help="keep the checkpoints of the best K finished trials (for nas.export's weights; default "
                   f"{DEFAULT_KEEP_CHECKPOINTS}); running and paused trials always keep theirs")
    s.add_argument("--full", action="store_true", help="no CPU scale-down: " + FULL_FLAGS)
    s.add_argument("--compile", action="store_true",
                   help="torch.compile each trial's model (pays off on long GPU trials; on the CPU preset "
                        "compiling costs more than it saves: docs/performance.md)")
    r = p.add_argument_group("Ray")
    r.add_argument("--address", type=wrap(cluster_address), help="join a Ray cluster (HOST:PORT or auto; inside "
                   "`ray job submit`, the job's cluster)")
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
    o.add_argument("--optuna-storage", metavar="PATH_OR_URL",
                   help="the Optuna study's storage: a journal file or an RDB URL such as sqlite:///s.db "
                   "(default RUN_DIR/optuna.journal; `optuna-dashboard` reads it live)")
    o.add_argument("--log", action="append", default=[], metavar="mlflow[=URI]",
                   help="also log to MLflow (default URI: $MLFLOW_TRACKING_URI, else RUN_DIR/mlflow.db)")
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
    if args.space and args.space_file:
        raise UsageError("--space-file: give --space or --space-file, not both")
    return SearchSettings(
        budget_flops=args.budget, tolerance=args.tolerance, space=args.space or "resnext-imagenet", free=args.free,
        # absolute: search.json keeps it for --resume, which may run elsewhere
        space_file=os.path.abspath(args.space_file) if args.space_file else None,
        budget_resolution=args.resolution, dataset=args.dataset, data_dir=args.data_dir,
        train_subset=args.train_subset, val_size=args.val_size, train_resolution=args.train_resolution,
        sampler=args.sampler,
        cardinality=args.cardinality, match=args.match, depths=args.depths, seeds=args.seeds,
        objective=args.objective, scheduler=args.scheduler, max_epochs=args.max_epochs or 0,
        grace_epochs=args.grace_epochs or 0, reduction_factor=args.reduction_factor or 0,
        trials=args.trials or 0, time_budget_s=args.time_budget, max_concurrent=args.max_concurrent,
        seed=args.seed, batch_size=args.batch_size, lr=args.lr, gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial, max_failures=args.max_failures,
        storage_path=args.storage_path, name=name, compile=args.compile, optuna_storage=args.optuna_storage,
        log=args.log, keep_checkpoints=args.keep_checkpoints,
    )


def dry_run(settings: SearchSettings, samples: int, as_json: bool) -> int:
    space, budget = orchestration.resolve_space(settings), orchestration.budget_of(settings)
    if settings.sampler not in ("tpe", "random", "grid"):
        print(f"note: --dry-run shows {settings.sampler}'s start-up proposals with the random sampler",
              file=sys.stderr)
    archs = orchestration.proposals(settings, samples)
    if settings.sampler == "grid":
        for line in orchestration.outside_lines(orchestration.grid_points(settings, space, budget)):
            print(line, file=sys.stderr)
        if orchestration.scheduler_of(settings) == "asha":
            print(orchestration.GRID_ASHA_NOTE, file=sys.stderr)
    if not as_json:
        print(f"space {space.name} ({'free' if settings.free else 'shared'} C and d), budget {budget} at "
              f"{space.resolution}x{space.resolution} ({space.in_channels} input channels, {space.num_classes} "
              f"classes; trials adapt both ends to {settings.dataset})")
        if archs:
            print(stage_maps_line(archs[0], train_resolution(settings)))
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


def stage_maps_line(arch, resolution: int) -> str:
    """Each stage's feature-map size at the training resolution (it depends only on the stem and the
    resolution, not on C, d or depth), with a warning when a stage works on 1x1 maps: there a 3x3
    grouped convolution sees only its centre tap, so that stage's cardinality is barely tested."""
    maps = stage_map_sizes(arch, resolution)
    text = ", ".join(f"stage{i} {hw}x{hw}" for i, hw in enumerate(maps, 1))
    line = f"training at {resolution}x{resolution}: feature maps {text}"
    if min(maps) < 2:
        ok = smallest_resolution(arch, 2, start=resolution)
        line += (f"\nwarning: 1x1 maps make a 3x3 convolution its centre tap; --train-resolution {ok} or more "
                 "keeps every stage >= 2x2")
    return line


# --- the search ------------------------------------------------------------------------------------------

def search(settings: SearchSettings, args, resume: bool) -> int:
    created = not resume  # check_run_dir refuses a new run whose directory holds anything
    orchestration.check_run_dir(settings, resume)
    address = args.address or job_address()
    orchestration.configure_ray_env(address)
    import ray  # only now: configure_ray_env must come first

    try:
        ray_info = orchestration.start_ray(address, args.dashboard_host, args.dashboard_port)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        _discard(settings, created)
        raise UsageError(f"--address: cannot start or reach Ray ({str(exc).splitlines()[0]})") from None
    try:
        if args.dashboard_host not in ("127.0.0.1", "localhost") and not address:
            print(f"warning: the Ray dashboard listens on {args.dashboard_host}, reachable beyond this "
                  "machine; token authentication stays on", file=sys.stderr)
        print(dashboard_line(ray_info["dashboard"] or "(not running)", ray_info["token_path"]), flush=True)
        if not resume:
            has_gpu = ray_info["resources"].get("GPU", 0) > 0
            asked = settings.train_resolution
            settings, scaled = orchestration.apply_preset(settings, has_gpu, args.full)
            if settings.train_resolution != asked:
                r = settings.train_resolution
                print(f"GPU: trials train at {r}x{r}, the smallest size keeping every stage's maps >= 2x2 "
                      "(docs/results.md; --train-resolution to choose)", flush=True)
            if scaled:
                print("No GPU: scaled down to " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in scaled.items())
                      + f". Full search: {FULL_FLAGS}.", flush=True)
        summary = orchestration.run(settings, resume, ray_info["resources"])
    except SearchConfigError:
        _discard(settings, created)  # refused before any trial ran: leave nothing behind
        raise
    finally:
        ray.shutdown()
    print(f"\nBest: {summary.get('best', 'none')}"
          + (f"  val accuracy {100 * summary['best_val_accuracy']:.1f}%" if "best" in summary else ""))
    for key in ("best_json", "report", "optuna_storage", "mlflow"):
        if key in summary:
            print(f"{key.replace('_', ' ')}: {summary[key]}")
    print(f"trials: {settings.location.display}/{TRIALS_CSV}")
    if not settings.location.is_local:
        print(f"run: {summary['run_dir']}  (give this to --resume, nas.analyze, nas.export)")
    return 0


def _discard(settings: SearchSettings, created: bool) -> None:
    loc = settings.location
    if not created or loc.is_file(TRIALS_CSV):
        return
    if loc.is_local:
        shutil.rmtree(loc.root, ignore_errors=True)
    else:
        try:
            loc.delete("")
        except OSError:
            pass  # a refused search must still say why it was refused


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    resume = args.resume is not None
    try:
        with setting_errors(FLAGS):
            if resume:  # a directory or a URI (s3://bucket/runs/NAME?endpoint_override=...)
                settings = orchestration.load_settings(args.resume)
            else:
                settings = settings_from_args(args)
            settings = resolve_data_paths(settings)  # trials run in their own working directories
            absolute_data_env()
            if args.dry_run:
                settings, _ = orchestration.apply_preset(settings, has_gpu=False, full=True)
                return dry_run(settings, args.samples, args.json)
            if not resume:
                orchestration.validate(settings)
            return search(settings, args, resume)
    except BudgetError as exc:
        raise UsageError(f"--budget: {exc}") from None
    except ValueError as exc:  # from the spaces and samplers: bad combinations of valid flags
        raise UsageError(str(exc)) from None


# `nas.search(...)` is the API function (nas.api), also once `import nas.search` made it this module.
callable_command(__name__)

if __name__ == "__main__":
    raise SystemExit(run_main(main))
