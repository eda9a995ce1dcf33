"""Issue 6, bad input: every flag of every command line, and the architecture JSON, as one table.

Each case is (command, argv, substrings the message must contain). A wrong value must give exit
code 2 and exactly one line on stderr, without a traceback, that names the flag or field (and, from
the parsers' messages, what is accepted); and nothing may be written: the test's whole temporary
directory (storage path, run directories, --out) is compared before and after.

Cases run in-process (`run_main(module.main, argv)`, argparse's SystemExit caught) for speed; a few
real subprocesses check that the `python -m` entry points behave the same. nas.search never starts
Ray here: reaching Ray (or nas.train reaching training) raises `Reached`, which fails the case.
"""

from __future__ import annotations

import copy
import importlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from nas.cli import run_main

ROOT = Path(__file__).resolve().parents[3]
MODULES = {cmd: f"nas.{cmd}" for cmd in ("search", "train", "inspect", "analyze", "export", "validate")}

# A valid, tiny architecture; the JSON cases below break one field of it at a time.
GOOD_ARCH = {
    "format": "resnext-arch/1", "stem": "cifar", "in_channels": 3, "num_classes": 10,
    "stages": [{"depth": 1, "cardinality": 2, "group_width": 4, "out_channels": 32},
               {"depth": 1, "cardinality": 2, "group_width": 8, "out_channels": 64}],
}


class Reached(Exception):
    """A case got past validation into the expensive part (Ray, a dataset, training)."""


# --- the table -----------------------------------------------------------------------------------------
# argv entries may name fixture paths: {tmp} the test's directory, {arch} a valid architecture file,
# {bad} the case's architecture file (written from `arch_text`), {file} an existing regular file,
# {missing} a path that does not exist, {empty} an existing empty directory, {run} a synthetic run
# directory with trials.csv, {runs} the search storage path, {notjson}/{oldjson}/{nostate} run
# directories whose search.json is not JSON / not from this version / fine but without Tune state.

def _id(cmd: str, argv: tuple[str, ...]) -> str:
    text = " ".join(a if a else "''" for a in argv)
    return f"{cmd} {text}"[:90]


def case(cmd: str, *argv: str, expect: str | tuple[str, ...], xfail: str | None = None, arch_text=None,
         case_id: str | None = None):
    expect = (expect,) if isinstance(expect, str) else expect
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(cmd, argv, expect, arch_text, marks=marks, id=case_id or _id(cmd, argv))


def search(*argv: str, expect, xfail: str | None = None, budget: bool = True):
    """A nas.search case; a valid --budget comes first unless budget=False (argparse: the last wins)."""
    base = ("--budget", "4GFLOPs") if budget else ()
    return case("search", *base, *argv, "--storage-path", "{runs}", expect=expect, xfail=xfail,
                case_id=_id("search", argv))



SEARCH_CASES = [
    # --budget
    search(expect="--budget", budget=False),  # no --budget at all
    search("--budget", "", expect=("--budget", "empty budget", "accepted forms")),
    search("--budget", "   ", expect=("--budget", "accepted forms")),
    search("--budget", "0", expect=("--budget", "positive")),
    search("--budget", "0.4", expect=("--budget", "positive")),
    search("--budget", "-4G", expect=("--budget", "--budget=VALUE")),
    search("--budget=-4G", expect=("--budget", "accepted forms")),
    search("--budget", "nan", expect=("--budget", "accepted forms")),
    search("--budget", "inf", expect=("--budget", "accepted forms")),
    search("--budget", "4GFLOPz", expect=("--budget", "accepted forms")),
    search("--budget", "4 GB", expect=("--budget", "accepted forms")),
    search("--budget", "4,5G", expect=("--budget", "accepted forms")),
    search("--budget", "1e30", expect=("--budget", "absurdly large")),
    search("--budget", "1MFLOPs", expect="--budget"),  # below the smallest architecture of the space
    search("--budget", "1MFLOPs", "--dry-run", expect="--budget"),
    search("--budget", "1e15", expect=("--budget", "cannot be met")),  # above the largest architecture
    search("--budget", "1MFLOPs", "--space", "resnext-cifar", "--free", expect="--budget"),
    search("--budget", "1MFLOPs", "--sampler", "grid", "--dry-run", expect="--budget"),
    search("--budget", "1MFLOPs", "--sampler", "grid", expect="--budget"),
    # --tolerance
    search("--tolerance", "1.5", expect=("--tolerance", "(0, 1)")),
    search("--tolerance", "1", expect=("--tolerance", "(0, 1)")),
    search("--tolerance", "0", expect="--tolerance"),
    search("--tolerance", "-0.1", expect="--tolerance"),
    search("--tolerance", "nan", expect="--tolerance"),
    search("--tolerance", "ten", expect="--tolerance"),
    # --space, --free, --resolution
    search("--space", "resnext-1000", expect=("--space", "resnext-imagenet")),
    search("--space", "", expect=("--space", "accepted")),
    search("--free=yes", expect="--free"),
    search("--resolution", "0", expect=("--resolution", "positive integer")),
    search("--resolution", "-32", expect="--resolution"),
    search("--resolution", "32px", expect="--resolution"),
    # data
    search("--dataset", "nope", expect=("--dataset", "fashion-mnist")),
    search("--dataset", "", expect="--dataset"),
    search("--dataset", "imagefolder:{missing}", expect="--dataset"),
    search("--dataset", "imagefolder:{empty}", expect="--dataset"),
    search("--data-dir", "{file}", expect="--data-dir"),
    search("--train-subset", "0", expect=("--train-subset", "positive integer")),
    search("--train-subset", "many", expect="--train-subset"),
    search("--train-resolution", "0", expect="--train-resolution"),
    search("--batch-size", "0", expect="--batch-size"),
    search("--batch-size", "-1", expect="--batch-size"),
    search("--lr", "0", expect=("--lr", "positive")),
    search("--lr", "nan", expect="--lr"),
    search("--lr", "inf", expect="--lr"),
    search("--lr", "-0.1", expect="--lr"),
    # search
    search("--sampler", "bayes", expect=("--sampler", "tpe")),
    search("--cardinality", "0,2", expect=("--cardinality", "positive integers")),
    search("--cardinality", "a,b", expect="--cardinality"),
    search("--cardinality", ",", expect="--cardinality"),
    search("--cardinality", "-1", expect="--cardinality"),
    search("--match", "macs", expect=("--match", "params")),
    search("--references", "resnet", expect=("--references", "paper, none")),
    search("--depths", "0,1,1,1", expect="--depths"),
    search("--depths", "3,4", "--sampler", "grid", "--dry-run", expect="depths"),
    search("--depths", "3,4", "--sampler", "grid", expect="depths"),
    search("--seeds", "0", expect="--seeds"),
    search("--objective", "loss", expect=("--objective", "accuracy")),
    search("--scheduler", "hyperband", expect=("--scheduler", "asha")),
    search("--max-epochs", "0", expect="--max-epochs"),
    search("--grace-epochs", "0", expect="--grace-epochs"),
    search("--grace-epochs", "5", "--max-epochs", "2", "--dry-run", expect=("--grace-epochs", "--max-epochs")),
    search("--grace-epochs", "5", "--max-epochs", "2", expect=("--grace-epochs", "--max-epochs")),
    search("--reduction-factor", "0", expect="--reduction-factor"),
    search("--reduction-factor", "1", expect="--reduction-factor"),
    search("--trials", "0", expect=("--trials", "positive integer")),
    search("--trials", "-3", expect="--trials"),
    search("--trials", "1.5", expect="--trials"),
    search("--time-budget", "", expect=("--time-budget", "30m")),
    search("--time-budget", "0", expect="--time-budget"),
    search("--time-budget", "0s", expect="--time-budget"),
    search("--time-budget", "0.5s", expect="--time-budget"),
    search("--time-budget", "-5m", expect=("--time-budget", "--time-budget=VALUE")),
    search("--time-budget=-5m", expect="--time-budget"),
    search("--time-budget", "2 hours", expect="--time-budget"),
    search("--time-budget", "2hx", expect="--time-budget"),
    search("--time-budget", "nan", expect="--time-budget"),
    search("--max-concurrent", "0", expect="--max-concurrent"),
    search("--seed", "-1", expect=("--seed", ">= 0")),
    search("--seed", "1.5", expect="--seed"),
    search("--full=1", expect="--full"),
    # Ray
    search("--address", "not an address", expect=("--address", "HOST:PORT")),
    search("--address", "", expect="--address"),
    search("--address", "10.0.0.1:99999", expect="--address"),
    search("--dashboard-host", "not a host", expect="--dashboard-host"),
    search("--dashboard-port", "0", expect="--dashboard-port"),
    search("--dashboard-port", "http", expect="--dashboard-port"),
    search("--dashboard-port", "70000", expect="--dashboard-port"),
    search("--gpus-per-trial", "1.5", expect=("--gpus-per-trial", "[0, 1]")),
    search("--gpus-per-trial", "-0.5", expect="--gpus-per-trial"),
    search("--gpus-per-trial", "nan", expect="--gpus-per-trial"),
    search("--gpus-per-trial", "half", expect="--gpus-per-trial"),
    search("--cpus-per-trial", "0", expect=("--cpus-per-trial", "positive")),
    search("--cpus-per-trial", "-2", expect="--cpus-per-trial"),
    search("--cpus-per-trial", "nan", expect="--cpus-per-trial"),
    search("--max-failures", "-1", expect=("--max-failures", ">= 0")),
    search("--max-failures", "two", expect="--max-failures"),
    # output
    case("search", "--budget", "4GFLOPs", "--storage-path", "{file}", expect="--storage-path"),
    case("search", "--budget", "4GFLOPs", "--storage-path", "{file}/sub", expect="--storage-path"),
    case("search", "--budget", "4GFLOPs", "--storage-path", "/proc/nas", expect="--storage-path"),
    search("--name", "a/b", expect=("--name", "plain directory name")),
    search("--name", "..", expect="--name"),
    case("search", "--budget", "4GFLOPs", "--storage-path", "{tmp}", "--name", "run", expect="--name",
         case_id="search --name of an existing run directory"),
    search("--resume", "{missing}", expect=("--resume", "not a search run directory"), budget=False),
    search("--resume", "{empty}", expect=("--resume", "no search.json"), budget=False),
    search("--resume", "{file}", expect="--resume", budget=False),
    search("--resume", "{run}/trials.csv", expect="--resume", budget=False),
    search("--resume", "{notjson}", expect="--resume", budget=False),
    search("--resume", "{oldjson}", expect=("--resume", "not from this version"), budget=False),
    search("--resume", "{nostate}", expect=("--resume", "experiment state"), budget=False),
    search("--dry-run=yes", expect="--dry-run"),
    search("--samples", "0", "--dry-run", expect="--samples"),
    search("--samples", "-1", "--dry-run", expect="--samples"),
    search("--json=1", "--dry-run", expect="--json"),
    search("--budgets", "4G", expect="--budgets"),
]

TRAIN = ("{arch}", "--dataset", "synthetic", "--out", "{tmp}/out")
TRAIN_CASES = [
    case("train", expect="ARCH.json"),
    case("train", "{missing}", expect=("missing", "cannot read")),
    case("train", "{empty}", expect="cannot read"),
    case("train", "{file}", expect="not valid JSON"),
    case("train", *TRAIN, "--dataset", "nope", expect=("--dataset", "fashion-mnist")),
    case("train", *TRAIN, "--dataset", "imagefolder:", expect="--dataset"),
    case("train", *TRAIN, "--dataset", "imagefolder:{missing}", expect="--dataset"),
    case("train", *TRAIN, "--data-dir", "{file}", expect="--data-dir"),
    case("train", *TRAIN, "--epochs", "0", expect=("--epochs", "positive integer")),
    case("train", *TRAIN, "--epochs", "1.5", expect="--epochs"),
    case("train", *TRAIN, "--train-subset", "0", expect="--train-subset"),
    case("train", *TRAIN, "--batch-size", "-1", expect="--batch-size"),
    case("train", *TRAIN, "--lr", "nan", expect=("--lr", "positive number")),
    case("train", *TRAIN, "--lr", "0", expect="--lr"),
    case("train", *TRAIN, "--lr", "inf", expect="--lr"),
    case("train", *TRAIN, "--warmup-epochs", "-1", expect=("--warmup-epochs", ">= 0")),
    case("train", *TRAIN, "--warmup-epochs", "nan", expect="--warmup-epochs"),
    case("train", *TRAIN, "--train-resolution", "0", expect="--train-resolution"),
    case("train", *TRAIN, "--seed", "-1", expect="--seed"),
    case("train", *TRAIN, "--device", "tpu", expect=("--device", "cpu")),
    case("train", *TRAIN, "--device", "cuda:x", expect=("--device", "cuda:N")),
    case("train", *TRAIN, "--threads", "0", expect="--threads"),
    case("train", *TRAIN, "--out", "{file}", expect="--out"),
    case("train", *TRAIN, "--out", "{file}/sub", expect="--out"),
    case("train", *TRAIN, "--json=1", expect="--json"),
    case("train", *TRAIN, "--epochz", "3", expect="--epochz"),
]

INSPECT_CASES = [
    case("inspect", expect="arch"),
    case("inspect", "{missing}", expect=("missing", "cannot read")),
    case("inspect", "{empty}", expect="cannot read"),
    case("inspect", "{file}", expect="not valid JSON"),
    case("inspect", "{arch}", "--resolution", "0", expect=("--resolution", "positive integer")),
    case("inspect", "{arch}", "--resolution", "-1", expect="--resolution"),
    case("inspect", "{arch}", "--resolution", "large", expect="--resolution"),
    case("inspect", "{arch}", "--json=1", expect="--json"),
    case("inspect", "{arch}", "--res", "32", "--flops", expect="--flops"),
]

RUN_CASES = [
    case(cmd, *argv, expect=expect)
    for cmd in ("analyze", "export")
    for argv, expect in [
        ((), "run_dir"),
        (("{missing}",), "no such run directory"),
        (("{file}",), "not a run directory"),
        (("{empty}",), "no trials.csv"),
        (("{run}", "--top", "0"), ("--top", "positive integer")),
        (("{run}", "--top", "-1"), "--top"),
        (("{run}", "--top", "all"), "--top"),
        (("{run}", "--bottom", "3"), "--bottom"),
    ]
] + [
    case("analyze", "{garbled}", expect=("trials.csv", "not a readable CSV")),
    case("export", "{garbled}", expect=("trials.csv", "not a readable CSV")),
    case("export", "{pending}", expect="no trial has reported an accuracy"),
    case("export", "{run}", "--out", "{file}", expect="--out"),
    case("export", "{run}", "--out", "{file}/sub", expect="--out"),
    # issue 12: comparing runs
    case("analyze", "{run}", "--out", "{tmp}/cmp.html", expect=("--out", "two or more run directories")),
    case("analyze", "{run}", "{missing}", expect="no such run directory"),
    case("analyze", "{run}", "{run}", "--out", "{file}/sub.html", expect=("--out", "folder does not exist")),
    case("analyze", "{run}", "{run}", "--out", "{empty}", expect=("--out", "is a directory")),
    # issue 12: nas.validate (every check happens before Ray starts)
    case("validate", "s3://bucket/runs/x", "--top", "1", expect=("run_dir", "local run directory")),
    case("validate", "{run}", expect="--top"),
    case("validate", "{run}", "--top", "0", expect=("--top", "positive integer")),
    case("validate", "{run}", "--top", "two", expect="--top"),
    case("validate", "{run}", "--top", "1", "--controls", "-1", expect=("--controls", "integer >= 0")),
    case("validate", "{run}", "--top", "1", "--seeds", "0", expect=("--seeds", "positive integer")),
    case("validate", "{run}", "--top", "1", "--epochs", "0", expect=("--epochs", "positive integer")),
    case("validate", "{run}", "--top", "1", "--train-resolution", "x", expect="--train-resolution"),
    case("validate", "{missing}", "--top", "1", expect="no such run directory"),
    case("validate", "{empty}", "--top", "1", expect="no trials.csv"),
    case("validate", "{run}", "--top", "1", expect=("search.json", "settings")),
]


def _arch(change) -> str:
    data = copy.deepcopy(GOOD_ARCH)
    change(data)
    return json.dumps(data)


def _set(path: str, value):
    """'stages.0.cardinality' -> set that field (None: delete it)."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def change(data):
        for p in parents:
            data = data[p]
        if value is _DELETE:
            del data[last]
        else:
            data[last] = value

    return change


_DELETE = object()

# (case id, file text, substrings naming the field)
ARCH_JSON = [
    ("not JSON", '{"format": "resnext-arch/1", "stem": ', ("not valid JSON",)),
    ("empty file", "", ("not valid JSON",)),
    ("a list", "[1, 2]", ("JSON object",)),
    ("NaN", _arch(_set("in_channels", 1)).replace('"in_channels": 1', '"in_channels": NaN'), ("NaN",)),
    ("format version", _arch(_set("format", "resnext-arch/2")), ("format", "resnext-arch/1")),
    ("format number", _arch(_set("format", 1)), ("format",)),
    ("unknown stem", _arch(_set("stem", "resnet")), ("stem", "imagenet, cifar")),
    ("stem not a string", _arch(_set("stem", 3)), ("stem",)),
    ("missing stem", _arch(_set("stem", _DELETE)), ("stem", "missing")),
    ("missing in_channels", _arch(_set("in_channels", _DELETE)), ("in_channels", "missing")),
    ("missing num_classes", _arch(_set("num_classes", _DELETE)), ("num_classes", "missing")),
    ("missing stages", _arch(_set("stages", _DELETE)), ("stages", "missing")),
    ("extra field", _arch(_set("width", 4)), ("width", "unknown field", "stages")),
    ("negative in_channels", _arch(_set("in_channels", -3)), ("in_channels", "positive integer")),
    ("zero num_classes", _arch(_set("num_classes", 0)), ("num_classes", "positive integer")),
    ("string in_channels", _arch(_set("in_channels", "3")), ("in_channels",)),
    ("float num_classes", _arch(_set("num_classes", 10.0)), ("num_classes",)),
    ("bool in_channels", _arch(_set("in_channels", True)), ("in_channels",)),
    ("empty stage list", _arch(_set("stages", [])), ("stages", "non-empty")),
    ("stages an object", _arch(_set("stages", {"depth": 1})), ("stages",)),
    ("stage a number", _arch(_set("stages.1", 3)), ("stages[1]",)),
    ("zero cardinality", _arch(_set("stages.0.cardinality", 0)), ("stages[0].cardinality", "positive integer")),
    ("negative depth", _arch(_set("stages.1.depth", -1)), ("stages[1].depth",)),
    ("negative group_width", _arch(_set("stages.0.group_width", -4)), ("stages[0].group_width",)),
    ("zero out_channels", _arch(_set("stages.1.out_channels", 0)), ("stages[1].out_channels",)),
    ("float depth", _arch(_set("stages.0.depth", 1.5)), ("stages[0].depth",)),
    ("string cardinality", _arch(_set("stages.0.cardinality", "32")), ("stages[0].cardinality",)),
    ("null group_width", _arch(_set("stages.0.group_width", None)), ("stages[0].group_width",)),
    ("missing stage field", _arch(_set("stages.1.cardinality", _DELETE)), ("stages[1].cardinality", "missing")),
    ("extra stage field", _arch(_set("stages.0.stride", 2)), ("stages[0].stride", "unknown field")),
    ("absurd depth", _arch(_set("stages.1.depth", 10**12)), ("stages[1].depth", "up to")),
    ("absurd out_channels", _arch(_set("stages.0.out_channels", 10**9)), ("stages[0].out_channels", "up to")),
    ("absurd num_classes", _arch(_set("num_classes", 10**12)), ("num_classes", "up to")),
]

ARCH_CASES = [
    pytest.param(cmd, argv, expect, text, id=f"{cmd} arch JSON: {name}")
    for name, text, expect in ARCH_JSON
    for cmd, argv in (("inspect", ("{bad}",)), ("train", ("{bad}", "--dataset", "synthetic", "--out", "{tmp}/out")))
]

# --space-file: the cifar space's file with one field broken at a time ({bad} holds the case's text).
GOOD_SPACE = json.loads((ROOT / "search_spaces" / "space_files" / "resnext-cifar.json").read_text())


def _space(name: str, expect: tuple[str, ...], text: str | None = None, **change):
    data = {k: v for k, v in {**GOOD_SPACE, **change}.items() if v is not None}
    return case("search", "--budget", "100MFLOPs", "--space-file", "{bad}", "--storage-path", "{runs}",
                expect=("--space-file", *expect), arch_text=json.dumps(data) if text is None else text,
                case_id=f"search --space-file: {name}")


SPACE_CASES = [
    _space("not JSON", ("not JSON",), text="{"),
    _space("a list", ("expected a JSON object",), text="[]"),
    _space("unknown field", ("depth_range", "unknown field", "accepted"), depth_range=[[1, 2]]),
    _space("missing field", ("cardinalities", "required field missing"), cardinalities=None),
    _space("format", ("format", "resnext-space/1"), format="resnext-space/2"),
    _space("stem", ("stem", "imagenet, cifar"), stem="mobile"),
    _space("resolution 0", ("resolution", "integer in [1, 4096]"), resolution=0),
    _space("resolution text", ("resolution", "expected an integer", '"32"'), resolution="32"),
    _space("depth range reversed", ("depth_ranges[2]", "min 3 exceeds max 1"), depth_ranges=[[1, 2], [1, 2], [3, 1]]),
    _space("depth range shape", ("depth_ranges[1]", "[min, max]"), depth_ranges=[[1, 2], [1], [1, 2]]),
    _space("depth 0", ("depth_ranges[0]", "integer in [1, 1000]"), depth_ranges=[[0, 2], [1, 2], [1, 2]]),
    _space("no stages", ("depth_ranges", "non-empty list"), depth_ranges=[]),
    _space("too many depths", ("depth_ranges", "depth combinations"), depth_ranges=[[1, 100]] * 3,
           default_depths=None),
    _space("default depths count", ("default_depths", "one depth per stage (3)"), default_depths=[3, 3]),
    _space("default depth outside", ("default_depths[1]", "in [1, 9]"), default_depths=[3, 10, 3]),
    _space("cardinality 0", ("cardinalities[1]", "integer in [1, 1024]"), cardinalities=[1, 0]),
    _space("cardinality bool", ("cardinalities[0]", "expected an integer", "true"), cardinalities=[True]),
    _space("cardinalities repeated", ("cardinalities", "distinct"), cardinalities=[2, 2]),
    _space("width range", ("width_range", "min 8 exceeds max 4"), width_range=[8, 4]),
    _space("base widths order", ("base_widths", "increasing"), base_widths=[128, 64]),
    _space("shared", ("shared", "true or false"), shared="yes"),
    case("search", "--budget", "100MFLOPs", "--space-file", "{missing}", "--storage-path", "{runs}",
         expect=("--space-file", "no such file")),
    case("search", "--budget", "100MFLOPs", "--space-file", "{empty}", "--storage-path", "{runs}",
         expect=("--space-file", "unreadable")),
    case("search", "--budget", "100MFLOPs", "--space", "resnext-cifar", "--space-file", "{arch}",
         "--storage-path", "{runs}", expect=("--space-file", "not both")),
    # a valid space file whose budget is out of reach: refused with the space's reachable range
    case("search", "--budget", "1e15", "--space-file", "{bad}", "--storage-path", "{runs}",
         expect=("--budget", "cannot be met"), arch_text=json.dumps(GOOD_SPACE),
         case_id="search --space-file: budget out of reach"),
    case("export", "{run}", "--format", "tflite", expect=("--format", "unknown format 'tflite'", "onnx")),
]

CASES = SEARCH_CASES + TRAIN_CASES + INSPECT_CASES + RUN_CASES + ARCH_CASES + SPACE_CASES


# --- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> Path:
    from tests.helpers.fake_run import write_fake_run

    return write_fake_run(tmp_path_factory.mktemp("bad_input") / "run", n_trials=6, space="resnext-cifar",
                          failures=False)


@pytest.fixture
def paths(tmp_path, fake_run) -> dict[str, str]:
    from nas.orchestration import SearchSettings

    (tmp_path / "file.txt").write_text("not an architecture, not a directory\n")
    (tmp_path / "empty").mkdir()
    for name, text in (("notjson", "{not json"), ("oldjson", json.dumps({"settings": {"budget": 4e9}})),
                       ("nostate", json.dumps({"settings": asdict(SearchSettings(budget_flops=4 * 10**9))}))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "search.json").write_text(text)
    (tmp_path / "run").mkdir()  # an existing run for --name: not empty
    (tmp_path / "run" / "trials.csv").write_text("trial_id\n1\n")
    (tmp_path / "pending").mkdir()  # a run whose only trial has not reported yet
    (tmp_path / "pending" / "trials.csv").write_text("trial_id,status,outcome\nt1,PENDING,pending\n")
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "trials.csv").write_bytes(b"\xff\xfe\x00garbage\x00\xff")
    (tmp_path / "arch.json").write_text(json.dumps(GOOD_ARCH))
    return {"tmp": str(tmp_path), "arch": str(tmp_path / "arch.json"), "bad": str(tmp_path / "bad.json"),
            "file": str(tmp_path / "file.txt"), "missing": str(tmp_path / "missing.json"),
            "empty": str(tmp_path / "empty"), "run": str(fake_run), "runs": str(tmp_path / "runs"),
            "notjson": str(tmp_path / "notjson"), "oldjson": str(tmp_path / "oldjson"),
            "nostate": str(tmp_path / "nostate"), "garbled": str(tmp_path / "garbled"),
            "pending": str(tmp_path / "pending")}


@pytest.fixture(autouse=True)
def nothing_expensive(monkeypatch):
    """Reaching Ray, a dataset, training or the network is a failure of the case, never a side effect."""
    import urllib.request

    import trials.datasets
    import trials.loop

    def refuse(what):
        def fail(*args, **kwargs):
            raise Reached(f"the case got as far as {what}")
        return fail

    import nas.orchestration

    for name in ("configure_ray_env", "start_ray"):  # configure_ray_env comes before `import ray`
        monkeypatch.setattr(nas.orchestration, name, refuse(f"nas.orchestration.{name}"))
    monkeypatch.setattr(trials.datasets, "load_dataset", refuse("loading a dataset"))
    monkeypatch.setattr(trials.loop, "train", refuse("training"))
    monkeypatch.setattr(urllib.request, "urlopen", refuse("the network"))


def tree(root: Path) -> dict[str, tuple[bool, int]]:
    return {str(p.relative_to(root)): (p.is_dir(), 0 if p.is_dir() else p.stat().st_size)
            for p in sorted(root.rglob("*"))}


def run_case(cmd: str, argv: list[str], capsys) -> tuple[int, str]:
    main = importlib.import_module(MODULES[cmd]).main
    capsys.readouterr()
    try:
        code = run_main(main, argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


def assert_one_line_error(code, err: str, expect: tuple[str, ...]) -> None:
    assert "Traceback" not in err, err
    lines = err.rstrip("\n").split("\n")
    assert code == 2, f"exit code {code}; stderr: {err!r}"
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr, got {err!r}"
    missing = [s for s in expect if s not in err]
    assert not missing, f"{missing} not in {err!r}"


@pytest.mark.parametrize("cmd, argv, expect, arch_text", CASES)
def test_bad_input(cmd, argv, expect, arch_text, paths, tmp_path, fake_run, capsys):
    if arch_text is not None:
        Path(paths["bad"]).write_text(arch_text)
    before, run_before = tree(tmp_path), tree(fake_run)
    code, err = run_case(cmd, [a.format(**paths) for a in argv], capsys)
    assert_one_line_error(code, err, expect)
    assert tree(tmp_path) == before, "something was written under the test's directory"
    assert tree(fake_run) == run_before, "something was written into the run directory"


# --- the real entry points --------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, expect", [
    (("nas.search", "--budget", "4GFLOPz", "--storage-path", "{runs}"), ("--budget", "accepted forms")),
    (("nas.search", "--budget", "1MFLOPs", "--storage-path", "{runs}"), ("--budget",)),
    (("nas.train", "{bad}", "--out", "{tmp}/out"), ("stages[0].cardinality",)),
    (("nas.export", "{empty}"), ("no trials.csv",)),
    (("nas.export", "{missing}"), ("error: {missing}: no such run directory",)),
    (("nas.analyze", "{missing}"), ("error: {missing}: no such run directory",)),
], ids=["search bad budget", "search unreachable budget", "train zero cardinality", "export no trials.csv",
        "export missing run directory", "analyze missing run directory"])
def test_entry_points(argv, expect, paths, tmp_path, cli):
    Path(paths["bad"]).write_text(_arch(_set("stages.0.cardinality", 0)))
    before = tree(tmp_path)
    proc = cli("-m", *(a.format(**paths) for a in argv))
    assert_one_line_error(proc.returncode, proc.stderr, tuple(e.format(**paths) for e in expect))
    assert tree(tmp_path) == before
