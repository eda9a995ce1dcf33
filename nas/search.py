"""`python -m nas.search --budget 4GFLOPs`: search ResNeXt cardinality, width and depth under a FLOPs budget.

Trials are Ray Tune trials, proposed by Optuna (only budget-feasible architectures) and cut early by
ASHA. `--dry-run` shows what would be proposed, without training or starting Ray. The search itself is
`nas.orchestration.run_search`; this command parses flags into settings, names them in errors and prints.
"""

from __future__ import annotations

import json
import sys
import time

from search_spaces import SPACES, complexity, format_flops, parse_flops, smallest_resolution, stage_map_sizes

from .cli import (
    Parser,
    UsageError,
    choice,
    float_where,
    int_list,
    int_where,
    parse_duration,
    parse_host,
    parse_host_port,
    parse_ms,
    port,
    run_main,
    setting_errors,
    wrap,
)
from .orchestration import (
    ACCEPTS,
    DEFAULT_KEEP_CHECKPOINTS,
    FULL_FLAGS,
    GRID_ASHA_NOTE,
    GRID_REFERENCES_NOTE,
    MATCHES,
    OBJECTIVES,
    REFERENCES,
    SAMPLERS,
    SCHEDULERS,
    RayOptions,
    SearchSettings,
    apply_preset,
    budget_of,
    check_settings,
    dataset_shape,
    grid_points,
    latency_cost_of,
    load_settings,
    memory_line,
    outside_lines,
    proposals,
    reference_designs,
    resolve_space,
    run_search,
    scheduler_of,
    train_resolution,
    with_absolute_paths,
)

# SearchSettings fields whose flag is not `--` + the field with dashes.
FLAGS = {"budget_flops": "--budget", "latency_budget_ms": "--latency-budget",
         "budget_resolution": "--resolution", "time_budget_s": "--time-budget"}
# Flags a resumed search takes; every other setting comes from RUN_DIR/search.json.
RESUME_FLAGS = {"resume", "address", "dashboard_host", "dashboard_port", "dry_run", "samples", "json"}


def checked(setting: str):
    """The flag type of a number-valued setting: the settings' own rule (ACCEPTS), so the command refuses
    exactly what nas.run_search refuses, with argparse's one-line message."""
    rule = ACCEPTS[setting]
    return (int_where if rule.kind is int else float_where)(rule.words, rule.ok)


def cluster_address(text: str) -> str:
    """--address: HOST:PORT or auto. Ray Client (ray://) is refused: with it Tune runs on the head node and
    the results never reach this process; `ray job submit` runs the driver there."""
    if text.startswith("ray://"):
        raise ValueError("ray:// (Ray Client) is not supported: run the search on the cluster with "
                         "`ray job submit --address http://HEAD:8265 --working-dir . -- python -m nas.search ...`")
    return parse_host_port(text)


def build_parser() -> Parser:
    p = Parser(prog="python -m nas.search", description=__doc__,
               epilog="On a CPU-only machine the search is scaled down unless --full is given.")
    p.add_argument("--budget", type=wrap(parse_flops), help="FLOPs budget, e.g. 4GFLOPs, 400MFLOPs, 4e9")
    p.add_argument("--latency-budget", type=wrap(parse_ms), default=None,
                   help="a latency budget, e.g. 20ms, alone or with --budget: only architectures whose predicted "
                   "latency (the device's table, python -m nas.profile) lies in [(1 - tolerance) * B, B]; "
                   "alone, the FLOPs window is the whole space's range")
    p.add_argument("--latency-table", default=None, metavar="PATH",
                   help="the latency table (default: the cache's table for this machine)")
    p.add_argument("--tolerance", type=checked("tolerance"), default=0.1,
                   help="feasible FLOPs lie in [(1 - tolerance) * budget, budget] (default 0.1)")
    p.add_argument("--space", type=choice(tuple(SPACES)), default=None, help="a built-in space (default "
                   "resnext-imagenet): " + ", ".join(SPACES))
    p.add_argument("--space-file", metavar="SPACE.json", help="a search space of your own: cardinalities, width "
                   "and depth ranges per stage, stem, base widths and the budget's resolution (format: the "
                   "built-in spaces' files in search_spaces/space_files/)")
    p.add_argument("--free", action="store_true", help="each stage picks its own C and d (default: shared)")
    p.add_argument("--resolution", type=checked("budget_resolution"), help="resolution the budget is measured at "
                   "(default: the space's, 224 or 32)")
    data = p.add_argument_group("data (passed to every trial)")
    data.add_argument("--dataset", default="fashion-mnist",
                      help="fashion-mnist, cifar10, cifar100, synthetic or imagefolder:PATH")
    data.add_argument("--data-dir")
    data.add_argument("--train-subset", type=checked("train_subset"), help="train on N images of the training split")
    data.add_argument("--val-size", type=checked("val_size"), help="validation images held out of the training split "
                      "(default: the CPU preset's 1000, else min(5000, a tenth of the training images))")
    data.add_argument("--train-resolution", type=checked("train_resolution"),
                      help="resize training inputs to N x N (default: the dataset's own; on a GPU the smallest "
                      "size keeping every stage's maps >= 2x2, 33 for Fashion-MNIST)")
    data.add_argument("--batch-size", type=checked("batch_size"))
    data.add_argument("--lr", type=checked("lr"))
    s = p.add_argument_group("search")
    s.add_argument("--sampler", type=choice(SAMPLERS), default="tpe")
    s.add_argument("--cardinality", type=int_list, default=[1, 2, 4, 8, 32],
                   help="grid sampler: cardinalities of the capacity-matched sweep (first sets the width)")
    s.add_argument("--match", type=choice(MATCHES), default="params")
    s.add_argument("--depths", type=int_list, help="grid sampler: fixed depths (default 3,4,6,3 / 3,3,3)")
    s.add_argument("--seeds", type=checked("seeds"), default=1, help="grid sampler: seeds per architecture")
    s.add_argument("--references", type=choice(REFERENCES), default="paper",
                   help="paper (default): the reference designs train first, within --trials, and the sampler "
                   "observes them: the space file's `references`, else the paper's capacity-matched C=1 and C=32 "
                   "(their nearest feasible variants when outside the budget's window); none: leave them out. "
                   "The grid sweep trains none (its points are the paper's)")
    s.add_argument("--objective", type=choice(OBJECTIVES), default="accuracy")
    s.add_argument("--scheduler", type=choice(SCHEDULERS), default=None,
                   help="asha (default) or none; the grid sweep defaults to none (every point trains fully)")
    s.add_argument("--max-epochs", type=checked("max_epochs"))
    s.add_argument("--grace-epochs", type=checked("grace_epochs"))
    s.add_argument("--reduction-factor", type=checked("reduction_factor"))
    s.add_argument("--trials", type=checked("trials"))
    s.add_argument("--time-budget", type=wrap(parse_duration), help="stop after 30m, 2h, ...")
    s.add_argument("--max-concurrent", type=checked("max_concurrent"))
    s.add_argument("--seed", type=checked("seed"), default=0)
    s.add_argument("--keep-checkpoints", type=checked("keep_checkpoints"), default=DEFAULT_KEEP_CHECKPOINTS,
                   metavar="K",
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
    r.add_argument("--dashboard-port", type=port, help="the embedded Ray's dashboard port (default 8265, or the next "
                   "free one when another search's Ray holds it)")
    r.add_argument("--gpus-per-trial", type=checked("gpus_per_trial"))
    r.add_argument("--cpus-per-trial", type=checked("cpus_per_trial"))
    r.add_argument("--max-failures", type=checked("max_failures"), default=2,
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
    o.add_argument("--samples", type=checked("trials"), default=10, help="--dry-run: how many proposals")
    o.add_argument("--json", action="store_true", help="--dry-run: one JSON object per line")
    return p


def settings_from_args(args) -> SearchSettings:
    if args.budget is None and args.latency_budget is None:
        raise UsageError("--budget: required (e.g. --budget 4GFLOPs), unless --latency-budget or --resume RUN_DIR")
    if args.space and args.space_file:
        raise UsageError("--space-file: give --space or --space-file, not both")
    stamp = format_flops(args.budget).replace(" ", "") if args.budget is not None else f"{args.latency_budget:g}ms"
    name = args.name or time.strftime(f"search-{stamp}-%Y%m%d-%H%M%S")
    return SearchSettings(
        budget_flops=args.budget, tolerance=args.tolerance, latency_budget_ms=args.latency_budget,
        latency_table=args.latency_table, space=args.space or "resnext-imagenet", free=args.free,
        space_file=args.space_file, budget_resolution=args.resolution, dataset=args.dataset, data_dir=args.data_dir,
        train_subset=args.train_subset, val_size=args.val_size, train_resolution=args.train_resolution,
        sampler=args.sampler, references=args.references, cardinality=args.cardinality, match=args.match,
        depths=args.depths, seeds=args.seeds,
        objective=args.objective, scheduler=args.scheduler, max_epochs=args.max_epochs,
        grace_epochs=args.grace_epochs, reduction_factor=args.reduction_factor, trials=args.trials,
        time_budget_s=args.time_budget, max_concurrent=args.max_concurrent, seed=args.seed,
        batch_size=args.batch_size, lr=args.lr, gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial, max_failures=args.max_failures, storage_path=args.storage_path,
        name=name, compile=args.compile, optuna_storage=args.optuna_storage, log=args.log,
        keep_checkpoints=args.keep_checkpoints,
    )


def refuse_flags_with_resume(args, parser: Parser) -> None:
    """A resumed search runs with the settings it was started with: a flag that would change one is
    refused instead of ignored."""
    defaults = vars(parser.parse_args([]))
    changed = [k for k, v in vars(args).items() if k not in RESUME_FLAGS and v != defaults.get(k)]
    if changed:
        flag = "--" + changed[0].replace("_", "-")
        raise UsageError(f"{flag}: --resume continues a search with the settings in its search.json; drop "
                         f"{flag} (or start a new search with it)")


def dry_run(settings: SearchSettings, samples: int, as_json: bool) -> int:
    space, budget = resolve_space(settings), budget_of(settings)
    if settings.sampler not in ("tpe", "random", "grid"):
        print(f"note: --dry-run shows {settings.sampler}'s start-up proposals with the random sampler",
              file=sys.stderr)
    refs, notes = reference_designs(settings)
    archs = proposals(settings, samples, refs)
    cost = latency_cost_of(settings, space)
    if settings.sampler == "grid":
        for line in outside_lines(grid_points(settings, space, budget)):
            print(line, file=sys.stderr)
        if scheduler_of(settings) == "asha":
            print(GRID_ASHA_NOTE, file=sys.stderr)
        if settings.references != "none":
            print(GRID_REFERENCES_NOTE, file=sys.stderr)
    for line in notes + [f"note: reference {r.name}: {r.note}" for r in refs if r.note]:
        print(line, file=sys.stderr)
    if not as_json:
        window = (f"budget {budget}" if settings.budget_flops is not None else
                  f"no FLOPs budget (the space's {budget.low / 1e9:.3g} .. {budget.high / 1e9:.3g} GFLOPs), latency "
                  f"budget {settings.latency_budget_ms:g} ms")
        print(f"space {space.name} ({'free' if settings.free else 'shared'} C and d), {window} at "
              f"{space.resolution}x{space.resolution} ({space.in_channels} input channels, {space.num_classes} "
              f"classes; trials adapt both ends to {settings.dataset})")
        if archs:
            print(stage_maps_line(archs[0], train_resolution(settings)))
            print(memory_line(archs, settings, train_resolution(settings),
                              dataset_shape(settings.dataset, settings.data_dir)[:2]))
        if refs:
            print(f"R1..R{len(refs)}: the reference designs, trained first within --trials (--references none "
                  "leaves them out); then the sampler's proposals")
        print(f"{'#':>3} {'architecture':<32} {'GFLOPs':>7} {'params (M)':>10} {'of budget':>9}"
              + (f" {'pred. ms':>8}" if cost else ""))
    for i, arch in enumerate(archs):
        cx = complexity(arch, space.resolution)
        ref = refs[i] if i < len(refs) else None
        if as_json:
            role = {} if not refs else {"role": "reference", "reference": ref.name} if ref else {"role": "sampled"}
            latency = {} if cost is None else {"latency_ms_predicted": round(cost.of(arch, space), 3)}
            print(json.dumps({"arch": arch.to_dict(), "name": arch.describe(), "flops_nominal": cx.flops,
                              "params_nominal": cx.params, "feasible": budget.contains(cx.flops), **latency, **role}))
        else:
            number = f"R{i + 1}" if ref else str(i + 1 - len(refs))
            print(f"{number:>3} {arch.describe():<32} {cx.flops / 1e9:>7.3f} {cx.params / 1e6:>10.2f} "
                  f"{100 * cx.flops / budget.flops:>8.1f}%"
                  + (f" {cost.of(arch, space):>8.1f}" if cost else "") + (f"  reference: {ref.name}" if ref else ""))
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

def print_summary(summary: dict) -> None:
    print(f"\nBest: {summary.get('best', 'none')}"
          + (f"  val accuracy {100 * summary['best_val_accuracy']:.1f}%" if "best" in summary else ""))
    for key in ("best_json", "report", "optuna_storage", "optuna_dashboard", "mlflow", "mlflow_ui"):
        if key in summary:
            print(f"{key.replace('_', ' ')}: {summary[key]}")
    outcomes = summary.get("outcomes") or {}
    failed = {k: outcomes[k] for k in ("oom", "error", "diverged") if outcomes.get(k)}
    if failed:
        print("ended without finishing: " + ", ".join(f"{n} {k}" for k, n in failed.items())
              + f" of {summary['trials']} trials (reasons in the trials table's `reason` column)")
    print(f"trials: {summary['trials_csv']}")
    if "://" in summary["run_dir"]:
        print(f"run: {summary['run_dir']}  (give this to --resume, nas.analyze, nas.export)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with setting_errors(FLAGS):
            summary = _run(args, parser)
    except ValueError as exc:  # from the spaces and samplers: bad combinations of valid flags
        raise UsageError(str(exc)) from None
    if summary is not None:
        print_summary(summary)
    return 0


def _run(args, parser: Parser) -> dict | None:
    """The search's summary, or None after a dry run (which printed what it had to)."""
    ray = RayOptions(args.address, args.dashboard_host, args.dashboard_port)
    log = lambda line: print(line, flush=True)  # noqa: E731 - the progress lines must reach a pipe at once
    if args.resume is not None:  # a directory or a URI (s3://bucket/runs/NAME?endpoint_override=...)
        settings = load_settings(args.resume)  # a run that cannot be resumed is refused first
        refuse_flags_with_resume(args, parser)
        if args.dry_run:
            dry_run(apply_preset(settings, has_gpu=False, full=True)[0], args.samples, args.json)
            return None
        return run_search(resume=settings.location, ray=ray, log=log)
    settings = with_absolute_paths(settings_from_args(args))
    if args.dry_run:
        check_settings(settings)
        dry_run(apply_preset(settings, has_gpu=False, full=True)[0], args.samples, args.json)
        return None
    return run_search(settings, ray=ray, full=args.full, log=log)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
