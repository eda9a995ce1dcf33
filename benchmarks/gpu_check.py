"""One prepared check on a GPU machine: the trial step, packing, a real search and the cardinality sweep.

    python benchmarks/gpu_check.py OUTDIR [--smoke] [--bundle .gpudata] [--data-dir DIR] [--total 480]

On a machine with one NVIDIA GPU and only torch/numpy/pandas (no network), within --total seconds:
  setup       install the wheels of .gpudata/wheels.tar.xz (or .whl/*.whl) when ray/optuna/plotly are
              missing; unpack .gpudata/fashion-mnist.tar.xz (built by benchmarks/make_gpu_data.py);
              record device and versions;
  train_step  benchmarks/train_step.py on the capacity-matched ResNeXt-50 templates at the trials'
              training resolution (28x28, 1 channel), eager fp32 reference vs the trial step, at the
              trials' default batch and a large one; then one real epoch through trials.loop vs the step;
  packing     the same short search (random sampler, seed 0, no early stopping) with --gpus-per-trial 1
              and with the automatic share: aggregate images/s and trials/hour of each;
  sweep       the capacity-matched sweep (C = 1, 2, 4, 8, 32 at ResNet-50's 4.09 GFLOPs, 3 seeds,
              every point trained to the same epochs: --scheduler none);
  search      a real search (TPE + ASHA) at 4 GFLOPs, the paper's reference designs trained first in it;
  validate    nas.validate --references on that search: its top 3 and the reference designs retrained
              with 3 fresh seeds on held-out images, each one's difference to the best reference;
  compile     the trial step with torch.compile, last, only if time is left.
Each step runs as its own process under a timeout (a step that overruns is interrupted, then killed, and
recorded; the next step still runs), with Ray's worker output going to the driver (log_to_driver, as
nas.tuner sets it) and from there to the step's log.

OUTDIR receives at most 3 files (the device tool returns 8 at most): gpu_check.json (the summary:
device, versions, each step's wall time, return code, figures and log tail), logs.txt (every step's
log) and runs.tar.gz (each run directory's trials.csv, epochs.csv, search.json, best.json, report.html).

--smoke runs every step at toy sizes on whatever device there is (the CPU here; synthetic data), so
that tests/benchmarks/test_gpu_check.py keeps this script working.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TEMPLATES = ("1x64d:3,4,6,3", "2x40d:3,4,6,3", "4x24d:3,4,6,3", "8x14d:3,4,6,3", "32x4d:3,4,6,3")
# ResNet-50's MACs at 224: the grid's capacity-matched points are widened to match it (issue 14).
RESNET50_BUDGET = "4.089184256GFLOPs"
RUN_FILES = ("trials.csv", "epochs.csv", "search.json", "best.json", "report.html", "validation/validation.csv",
             "validation/summary.csv", "validation/plan.json")

# Sizes for one H100/H200 within 8 minutes. The trials keep their defaults (batch 32 at 28x28,
# Fashion-MNIST's native size: what `nas.search` does on a GPU today); only data and epochs shrink.
GPU = {
    "dataset": "fashion-mnist",
    "step": {"templates": TEMPLATES, "batch_sizes": (32, 256), "resolution": 28, "channels": 1,
             "steps": 20, "warmup": 5, "timeout": 75},
    "end_to_end": {"template": "32x4d:3,4,6,3", "batch_size": 32, "images": 16000, "timeout": 45},
    "compile": {"template": "32x4d:3,4,6,3", "batch_size": 256, "timeout": 90},
    "packing": {"budget": "4GFLOPs", "trials": 8, "epochs": 1, "train_subset": 8000, "timeout": 85},
    "sweep": {"cardinality": "1,2,4,8,32", "seeds": 3, "epochs": 3, "train_subset": 16000,
              "depths": None, "budget": RESNET50_BUDGET, "time_budget": 110, "timeout": 145},
    "search": {"budget": "4GFLOPs", "trials": 12, "epochs": 3, "train_subset": 16000, "time_budget": 70,
               "timeout": 100},
    "validate": {"top": 3, "seeds": 3, "epochs": 3, "timeout": 120},
}
# Toy sizes for the CPU (tests/benchmarks/test_gpu_check.py): 600 MFLOPs archs, 64 synthetic training images.
SMOKE = {
    "dataset": "synthetic",
    "step": {"templates": ("1x12d:1,1,1,1", "4x4d:1,1,1,1"), "batch_sizes": (16,), "resolution": 32,
             "channels": 3, "steps": 2, "warmup": 1, "timeout": 180},
    "end_to_end": {"template": "4x4d:1,1,1,1", "batch_size": 16, "images": 64, "timeout": 180},
    "compile": None,
    "packing": {"budget": "600MFLOPs", "trials": 2, "epochs": 1, "train_subset": 64, "timeout": 240},
    "sweep": {"cardinality": "1,4", "seeds": 1, "epochs": 1, "train_subset": 64, "depths": "1,1,1,1",
              "budget": "600MFLOPs", "time_budget": None, "timeout": 240},
    # 3 trials: the 2 reference designs and one sampled (with 2, no sampled trial would be left beside them)
    "search": {"budget": "600MFLOPs", "trials": 3, "epochs": 1, "train_subset": 64, "time_budget": None,
               "timeout": 240},
    "validate": {"top": 1, "seeds": 1, "epochs": 1, "timeout": 240},
}


# --- running one step ------------------------------------------------------------------------------

class Step:
    """A child process under a timeout; its output, time-stamped, goes to LOGS/<name>.log."""

    def __init__(self, name: str, logs: Path, env: dict[str, str]) -> None:
        self.name, self.log, self.env = name, logs / f"{name}.log", env
        self.lines: list[tuple[float, str]] = []

    def run(self, cmd: list[str], timeout: float, graces_s: tuple[float, float, float] = (20, 5, 5)) -> dict:
        t0 = time.monotonic()
        record = {"command": " ".join(cmd), "timeout_s": round(timeout, 1)}
        # A session of its own, so a timeout can interrupt the whole group (the driver and the Ray
        # processes it started) by its id.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True)
        with open(self.log, "w") as log:
            def pump() -> None:
                for line in proc.stdout:
                    t = time.monotonic() - t0
                    self.lines.append((t, line.rstrip("\n")))
                    log.write(f"[{t:7.1f}s] {line}")
                    log.flush()
            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            try:
                proc.wait(timeout=timeout)
                record["timed_out"] = False
            except subprocess.TimeoutExpired:
                record["timed_out"] = True
                # SIGINT first: Tune stops the trials and nas.search still writes its tables and report.
                for sig, grace in zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), graces_s, strict=True):
                    try:
                        os.killpg(proc.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        proc.wait(timeout=grace)
                        break
                    except subprocess.TimeoutExpired:
                        continue
            reader.join(timeout=5)
        record["returncode"] = proc.returncode
        record["wall_s"] = round(time.monotonic() - t0, 1)
        record["ok"] = proc.returncode == 0 and not record["timed_out"]
        record["log_tail"] = [line for _, line in self.lines[-25:]]
        return record

    def first_time(self, prefix: str) -> float | None:
        return next((t for t, line in self.lines if line.startswith(prefix)), None)

    def json_lines(self) -> list[dict]:
        out = []
        for _, line in self.lines:
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


def finite(value):
    """NaN (pandas' empty cell) -> None, so gpu_check.json stays strict JSON."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- setup -----------------------------------------------------------------------------------------

def probe(env: dict[str, str]) -> dict:
    """Device and versions, as the steps' interpreter sees them."""
    code = r"""
import json, platform, importlib
import torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "gpus": torch.cuda.device_count(), "cpus": __import__("os").cpu_count()}
for name in ("ray", "optuna", "plotly", "pandas", "numpy"):
    try:
        info[name] = importlib.import_module(name).__version__
    except Exception as exc:
        info[name] = None
print(json.dumps(info))
"""
    out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    info = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-2000:]}
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        info["nvidia_smi"] = smi.stdout.strip()
    return info


def install_wheels(bundle: Path, work: Path, env: dict[str, str]) -> dict:
    """pip-install the carried wheels into WORK/site (no network, no dependency resolution)."""
    have = subprocess.run([PY, "-c", "import ray, optuna, plotly"], env=env, capture_output=True).returncode == 0
    if have:
        return {"installed": False, "reason": "ray, optuna and plotly already importable"}
    whl_dir = work / "whl"
    archive = bundle / "wheels.tar.xz"
    if archive.is_file():
        with tarfile.open(archive) as tar:
            tar.extractall(whl_dir, filter="data")
    elif any((ROOT / ".whl").glob("*.whl")):
        whl_dir = ROOT / ".whl"
    else:
        raise RuntimeError(f"ray/optuna/plotly missing and no wheels: neither {archive} nor {ROOT / '.whl'}/*.whl "
                           "(build them with benchmarks/make_gpu_data.py)")
    site = work / "site"
    subprocess.run([PY, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
                    "--upgrade", "--target", str(site), *map(str, sorted(whl_dir.glob("*.whl")))],
                   check=True, capture_output=True, text=True)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    # pip --target puts ray's console scripts here; Ray starts its own processes by module, not by them.
    env["PATH"] = os.pathsep.join([str(site / "bin"), env.get("PATH", "")])
    return {"installed": True, "from": str(archive if archive.is_file() else whl_dir), "site": str(site)}


def unpack_fashion(bundle: Path, work: Path) -> str | None:
    """The carried payloads re-gzipped as the official file names: trials.datasets verifies each
    file by the sha256 of its decompressed payload, which re-compression leaves unchanged."""
    import gzip

    archive = bundle / "fashion-mnist.tar.xz"
    if not archive.is_file():
        return None
    dest = work / "data" / "fashion-mnist"
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile():
                data = tar.extractfile(member).read()
                with gzip.open(dest / (Path(member.name).name + ".gz"), "wb", compresslevel=1) as f:
                    f.write(data)
    return str(dest)


# --- the searches ----------------------------------------------------------------------------------

def search_cmd(sizes: dict, name: str, storage: Path, dataset: str, data_dir: str | None, *extra: str) -> list[str]:
    cmd = [PY, "-m", "nas.search", "--budget", sizes["budget"], "--dataset", dataset,
           "--max-epochs", str(sizes["epochs"]), "--train-subset", str(sizes["train_subset"]),
           "--storage-path", str(storage), "--name", name, "--dashboard-port", str(free_port()),
           "--max-failures", "0",
           # explicit, so trials.csv records it and images trained can be counted (TrainConfig's default)
           "--batch-size", "32", *extra]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    if sizes.get("time_budget"):
        cmd += ["--time-budget", f"{sizes['time_budget']}s"]
    return cmd


def run_figures(run_dir: Path, step: Step, record: dict) -> dict:
    """What a search run's trials.csv says: trials, outcomes, images trained, aggregate throughput."""
    path = run_dir / "trials.csv"
    if not path.is_file():
        return {"run_dir": str(run_dir), "error": "no trials.csv"}
    frame = pd.read_csv(path)
    done = frame[frame["outcome"].isin(["completed", "stopped"])]
    # Images trained: each trial trains epochs x (its training images rounded down to whole batches).
    settings = json.loads((run_dir / "search.json").read_text())["settings"]
    n_train = settings.get("train_subset")
    images = None
    if n_train and "batch_size" in frame and frame["batch_size"].notna().all():
        images = float(sum(e * (n_train // b) * b for e, b in zip(frame["epochs"].fillna(0), frame["batch_size"],
                                                                strict=True)))
    # Tune's part of the run: from nas.search's "Search:" line to the last write of trials.csv (the
    # table is rewritten at every result), so Ray's start and the report are left out.
    start = step.first_time("Search:")
    fit_s = None
    if start is not None:
        fit_s = path.stat().st_mtime - (record["_t0_wall"] + start)
    out = {
        "run_dir": str(run_dir), "trials": len(frame), "outcomes": frame["outcome"].value_counts().to_dict(),
        "epochs": sorted(int(e) for e in frame["epochs"].fillna(0).unique()),
        "mean_trial_images_per_s": float(frame["images_per_second"].mean()) if len(frame) else None,
        "images_trained": images, "fit_s": round(fit_s, 1) if fit_s else None,
        "best": None if done.empty else str(done.sort_values("best_val_accuracy").iloc[-1]["name"]),
        "best_val_accuracy": None if done.empty else float(done["best_val_accuracy"].max()),
    }
    if fit_s and fit_s > 0:
        out["trials_per_hour"] = len(done) / fit_s * 3600
        out["aggregate_images_per_s"] = images / fit_s if images else None
        # Mean number of trials training at once (their own seconds over the window).
        out["mean_concurrency"] = float(frame["seconds"].fillna(0).sum()) / fit_s
    return out


def sweep_table(run_dir: Path) -> list[dict]:
    """Accuracy per cardinality over seeds: what the sweep answers."""
    path = run_dir / "trials.csv"
    if not path.is_file():
        return []
    frame = pd.read_csv(path)
    rows = []
    for (c, w), g in frame.groupby(["cardinality", "width"]):
        acc = g["best_val_accuracy"].dropna()
        rows.append({"cardinality": int(c), "width": int(w), "name": str(g["name"].iloc[0]),
                     "params_nominal": int(g["params_nominal"].iloc[0]),
                     "flops_nominal": int(g["flops_nominal"].iloc[0]), "seeds": len(g),
                     "epochs": sorted(int(e) for e in g["epochs"].fillna(0).unique()),
                     "val_accuracy_mean": float(acc.mean()) if len(acc) else None,
                     "val_accuracy_std": float(acc.std()) if len(acc) > 1 else None,
                     "val_accuracy_min": float(acc.min()) if len(acc) else None,
                     "val_accuracy_max": float(acc.max()) if len(acc) else None})
    return rows


# --- main ------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir")
    p.add_argument("--smoke", action="store_true", default=os.environ.get("GPU_CHECK_SMOKE") == "1",
                   help="toy sizes on any device (also GPU_CHECK_SMOKE=1)")
    p.add_argument("--bundle", default=str(ROOT / ".gpudata"), help="where make_gpu_data.py put its files")
    p.add_argument("--data-dir", help="Fashion-MNIST's directory when no bundle carries it")
    p.add_argument("--workdir", help="run directories and logs (default: a new temporary directory)")
    p.add_argument("--total", type=float, default=480.0, help="seconds for everything (default 480)")
    p.add_argument("--only", help="comma-separated steps: train_step,packing,sweep,search,validate,compile")
    args = p.parse_args(argv)

    t_start = time.monotonic()
    deadline = t_start + args.total
    sizes = SMOKE if args.smoke else GPU
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="gpu_check_"))
    logs, storage = work / "logs", work / "runs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    wanted = set((args.only or "train_step,packing,sweep,search,validate,compile").split(","))
    summary: dict = {"mode": "smoke" if args.smoke else "gpu", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "workdir": str(work), "total_budget_s": args.total, "steps": {}}

    def save() -> None:
        summary["wall_s"] = round(time.monotonic() - t_start, 1)
        (out / "gpu_check.json").write_text(json.dumps(finite(summary), indent=2, default=str) + "\n")

    # setup: wheels, data, versions
    t0 = time.monotonic()
    setup: dict = {"ok": True}
    try:
        setup["wheels"] = install_wheels(Path(args.bundle), work, env)
    except (RuntimeError, subprocess.CalledProcessError, OSError, tarfile.TarError) as exc:
        setup.update(ok=False, error=f"wheels: {exc} {getattr(exc, 'stderr', '') or ''}"[-2000:])
    data_dir = args.data_dir
    if sizes["dataset"] == "fashion-mnist" and not data_dir:
        try:
            data_dir = unpack_fashion(Path(args.bundle), work)
        except (OSError, tarfile.TarError) as exc:
            setup.update(ok=False, error=f"data: {exc}")
    setup["dataset"], setup["data_dir"] = sizes["dataset"], data_dir
    summary["versions"] = probe(env)
    summary["device"] = summary["versions"].get("device")
    setup["wall_s"] = round(time.monotonic() - t0, 1)
    summary["steps"]["setup"] = setup
    save()
    if not args.smoke and not summary["versions"].get("cuda_available"):
        summary["error"] = "no CUDA device: the full check needs a GPU (use --smoke on a CPU)"
        save()
        print(summary["error"], file=sys.stderr)
        return 2

    def run_step(name: str, cmd: list[str], planned: float) -> tuple[Step, dict] | None:
        left = deadline - time.monotonic()
        if left < min(planned, 20):
            summary["steps"][name] = {"ok": False, "skipped": f"out of time ({left:.0f}s left of --total)"}
            save()
            return None
        step = Step(name, logs, env)
        print(f"[gpu_check +{time.monotonic() - t_start:5.0f}s] {name}: {' '.join(cmd[1:])}", flush=True)
        t0_wall = time.time()
        record = step.run(cmd, min(planned, left))
        record["_t0_wall"] = t0_wall
        summary["steps"][name] = record
        save()
        return step, record

    ds_args = ["--dataset", sizes["dataset"]] + (["--data-dir", data_dir] if data_dir else [])
    st = sizes["step"]
    step_cmd = [PY, "benchmarks/train_step.py", "--json", "--resolution", str(st["resolution"]),
                "--channels", str(st["channels"]), "--steps", str(st["steps"]), "--warmup", str(st["warmup"])]

    if "train_step" in wanted:
        cmd = step_cmd + [a for t in st["templates"] for a in ("--template", t)] + \
            [a for b in st["batch_sizes"] for a in ("--batch-size", str(b))]
        ran = run_step("train_step", cmd, st["timeout"])
        if ran:
            ran[1]["results"] = ran[0].json_lines()
        e2e = sizes["end_to_end"]
        cmd = step_cmd + ["--template", e2e["template"], "--batch-size", str(e2e["batch_size"]),
                          "--end-to-end", str(e2e["images"]), *ds_args]
        ran = run_step("end_to_end", cmd, e2e["timeout"])
        if ran:
            ran[1]["results"] = ran[0].json_lines()
        save()

    if "packing" in wanted:
        pk = sizes["packing"]
        common = ["--sampler", "random", "--scheduler", "none", "--trials", str(pk["trials"]), "--seed", "0"]
        # On a machine without GPUs there is nothing to pack: the smoke run exercises the same path with 0.
        one = "1" if not args.smoke else "0"
        figures = {}
        for label, extra in (("one_per_gpu", ["--gpus-per-trial", one]), ("auto_share", [])):
            name = f"packing-{label}"
            ran = run_step(name, search_cmd(pk, name, storage, sizes["dataset"], data_dir, *common, *extra),
                           pk["timeout"])
            if ran:
                figures[label] = ran[1]["figures"] = run_figures(storage / name, *ran)
        a, b = (figures.get(k, {}).get("aggregate_images_per_s") for k in ("auto_share", "one_per_gpu"))
        summary["packing"] = {"gpus_per_trial_one": one, **{k: v for k, v in figures.items()},
                              "auto_vs_one_images_per_s": a / b if a and b else None}
        save()

    if "sweep" in wanted:
        sw = sizes["sweep"]
        extra = ["--sampler", "grid", "--cardinality", sw["cardinality"], "--match", "params",
                 "--seeds", str(sw["seeds"]), "--scheduler", "none"]
        if sw["depths"]:
            extra += ["--depths", sw["depths"]]
        ran = run_step("sweep", search_cmd(sw, "sweep", storage, sizes["dataset"], data_dir, *extra), sw["timeout"])
        if ran:
            ran[1]["figures"] = run_figures(storage / "sweep", *ran)
            summary["sweep"] = {"by_cardinality": sweep_table(storage / "sweep"),
                                # --scheduler none: every finished point trained to the same epochs
                                "same_epochs": len(ran[1]["figures"].get("epochs", [])) == 1}
        save()

    if "search" in wanted:
        se = sizes["search"]
        extra = ["--trials", str(se["trials"]), "--grace-epochs", "1", "--reduction-factor", "2"]
        ran = run_step("search", search_cmd(se, "search", storage, sizes["dataset"], data_dir, *extra),
                       se["timeout"])
        if ran:
            ran[1]["figures"] = run_figures(storage / "search", *ran)
        save()

    if "validate" in wanted and (storage / "search" / "trials.csv").is_file():
        va = sizes["validate"]
        cmd = [PY, "-m", "nas.validate", str(storage / "search"), "--top", str(va["top"]), "--references",
               "--seeds", str(va["seeds"]), "--epochs", str(va["epochs"]), "--dashboard-port", str(free_port())]
        ran = run_step("validate", cmd, va["timeout"])
        if ran:
            path = storage / "search" / "validation" / "summary.csv"
            # per architecture: mean, std over seeds, difference to the best reference with its interval
            summary["validate"] = pd.read_csv(path).to_dict("records") if path.is_file() else None
        save()

    if "compile" in wanted and sizes["compile"]:
        co = sizes["compile"]
        cmd = step_cmd + ["--template", co["template"], "--batch-size", str(co["batch_size"]), "--compile"]
        ran = run_step("compile", cmd, co["timeout"])
        if ran:
            ran[1]["results"] = ran[0].json_lines()

    for record in summary["steps"].values():
        record.pop("_t0_wall", None)
    summary["ok"] = all(r.get("ok") for r in summary["steps"].values())
    save()
    write_outputs(out, logs, storage)
    print(f"[gpu_check +{time.monotonic() - t_start:5.0f}s] done: {out / 'gpu_check.json'}", flush=True)
    return 0 if summary["ok"] else 1


def write_outputs(out: Path, logs: Path, storage: Path) -> None:
    with open(out / "logs.txt", "w") as f:
        for log in sorted(logs.glob("*.log"), key=lambda p: p.stat().st_mtime):
            f.write(f"===== {log.stem} =====\n{log.read_text(errors='replace')}\n")
    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
        for run_dir in sorted(d for d in storage.glob("*") if d.is_dir()):
            for name in RUN_FILES:
                if (run_dir / name).is_file():
                    tar.add(run_dir / name, arcname=f"{run_dir.name}/{name}")
            # Each trial's error (if any): the reason a trial failed must come back with the run.
            for err in sorted(run_dir.glob("trial_*/error.txt")):
                data = err.read_bytes()[-20000:]
                info = tarfile.TarInfo(f"{run_dir.name}/{err.parent.name}-error.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    sys.exit(main())
