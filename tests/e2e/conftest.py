"""The e2e tests' shared search: one real search, killed with -9 and resumed, that several test files read."""

from __future__ import annotations

import pandas as pd
import psutil
import pytest

from nas.orchestration import tracking
from tests.helpers import searchrun

TRACKED = "tracked"


def _labels(pid: int) -> set[str]:
    titles = set()
    for p in searchrun.descendants(pid):
        try:
            titles.update(part for part in p.cmdline() if part.startswith("ray::trial_"))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return titles


def _epochs(run_dir) -> pd.DataFrame:
    path = run_dir / "epochs.csv"
    return pd.read_csv(path, dtype={"trial_id": str}) if path.exists() else pd.DataFrame(columns=["trial_id"])


@pytest.fixture(scope="session")
def killed_and_resumed(tmp_path_factory, search_process):
    """`python -m nas.search --log mlflow=... --scheduler none` (3 trials of 2 epochs), killed with -9
    right after its first trial ended (between trials) and resumed with `--resume`: what each phase left
    to check. Read by tests/e2e/test_search_tracking.py (tracking) and tests/e2e/test_search.py (the
    resume itself, at the moment "between trials"): one kill and resume instead of two."""
    tmp = tmp_path_factory.mktemp("tracking")
    port = searchrun.free_port()  # other Ray instances on this machine may hold 8265
    run_dir, uri = tmp / TRACKED, f"sqlite:///{tmp / 'mlflow.db'}"
    args = [*searchrun.FAST, "--trials", "3", "--max-epochs", "2", "--scheduler", "none", "--storage-path", str(tmp),
            "--name", TRACKED, "--seed", "1", "--log", f"mlflow={uri}", "--dashboard-port", str(port)]
    log = tmp / "first.log"
    proc = search_process.start(args, log)
    labels: set[str] = set()

    def first_trial_ended():
        labels.update(_labels(proc.pid))
        frame = searchrun.trials(run_dir)
        return frame["outcome"].isin(["completed", "stopped"]).any() and (run_dir / "report.html").exists()

    try:
        searchrun.wait_for(first_trial_ended, timeout=900, proc=proc, log=log)
        live_report = (run_dir / "report.html").read_text()
    finally:
        leftovers = searchrun.kill_driver(proc)
    before, epochs_before = searchrun.trials(run_dir), _epochs(run_dir)
    searchrun.kill_pids(leftovers)
    study_before = {t.user_attrs.get("ray_trial_id"): t.number for t in tracking.load_study(run_dir, TRACKED).trials}
    out = search_process.run(["--resume", str(run_dir), "--dashboard-port", str(port)], timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return {"port": port, "run_dir": run_dir, "uri": uri, "first_log": log.read_text(), "labels": labels,
            "before": before, "epochs_before": epochs_before, "live_report": live_report,
            "study_before": study_before, "resumed": out.stdout, "resumed_err": out.stderr}
