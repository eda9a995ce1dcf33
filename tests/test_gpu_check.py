"""benchmarks/gpu_check.py in its smoke mode on this CPU: every step runs at toy sizes, so the prepared
GPU check cannot rot between the sessions that have a GPU."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_mode_runs_every_step_and_writes_its_results(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", str(out), "--smoke", "--total", "600",
                           "--workdir", str(tmp_path / "work"), "--bundle", str(tmp_path / "no-bundle")],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    summary = json.loads((out / "gpu_check.json").read_text())
    assert summary["mode"] == "smoke" and summary["versions"]["torch"]
    steps = summary["steps"]
    expected = {"setup", "train_step", "end_to_end", "packing-one_per_gpu", "packing-auto_share", "sweep", "search"}
    assert expected <= set(steps), steps.keys()
    failed = {k: v.get("log_tail", v)[-5:] for k, v in steps.items() if not v.get("ok")}
    assert not failed, failed
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the trial step measured images/s for each template; the searches left their tables
    assert steps["train_step"]["results"] and all(r["speedup"] > 0 for r in steps["train_step"]["results"])
    assert summary["sweep"]["same_epochs"] and summary["sweep"]["by_cardinality"]
    assert steps["search"]["figures"]["trials"] >= 1
    with tarfile.open(out / "runs.tar.gz") as tar:
        names = tar.getnames()
    assert {"sweep/trials.csv", "search/trials.csv", "search/report.html"} <= set(names), names
    assert (out / "logs.txt").stat().st_size > 0
