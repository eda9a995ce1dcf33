"""benchmarks/gpu_check.py in its smoke mode on this CPU: every step runs at toy sizes, so the prepared
GPU check cannot rot between the sessions that have a GPU; and the pieces that decide whether a GPU
run comes back with results at all (a step's timeout, strict JSON, the carried wheels)."""

import json
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402
import make_gpu_data  # noqa: E402


def test_step_timeout_is_recorded_and_the_process_group_ended(tmp_path):
    step = gpu_check.Step("sleepy", tmp_path, {"PATH": "/usr/bin:/bin"})
    # the background sleep ignores SIGINT: the escalation to SIGTERM is what ends it (short graces here)
    record = step.run(["bash", "-c", "echo started; sleep 60 & wait"], timeout=1, graces_s=(2, 2, 2))
    assert record["timed_out"] and not record["ok"] and record["wall_s"] < 10
    assert record["log_tail"] == ["started"]
    assert "started" in (tmp_path / "sleepy.log").read_text()


def test_summary_json_stays_strict():
    assert gpu_check.finite({"a": [float("nan"), 1.0], "b": {"c": float("nan")}}) == \
        {"a": [None, 1.0], "b": {"c": None}}


def test_stored_wheel_keeps_every_file(tmp_path):
    whl = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pkg/__init__.py", "x = 1\n" * 100)
        z.writestr("pkg-1.0.dist-info/RECORD", "pkg/__init__.py,,\n")
    out = tmp_path / "stored.whl"
    out.write_bytes(make_gpu_data.stored_wheel(whl))
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
        assert z.read("pkg/__init__.py") == b"x = 1\n" * 100


def test_smoke_mode_runs_every_step_and_writes_its_results(tmp_path, search_process):
    out = tmp_path / "out"
    # Without the packing step: on a CPU it is two more plain searches (its GPU shares cannot be had here),
    # ~70 of the test's ~160 s; its figures are the code the sweep and the search run through.
    proc = search_process.call([sys.executable, "benchmarks/gpu_check.py", str(out), "--smoke", "--total", "600",
                                "--workdir", str(tmp_path / "work"), "--bundle", str(tmp_path / "no-bundle"),
                                "--only", "train_step,sweep,search"], cwd=ROOT, timeout=900)
    summary = json.loads((out / "gpu_check.json").read_text())
    assert summary["mode"] == "smoke" and summary["versions"]["torch"]
    steps = summary["steps"]
    expected = {"setup", "train_step", "end_to_end", "sweep", "search"}
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
