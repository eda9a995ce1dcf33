"""The Ray way of running on a cluster: `ray job submit ... -- python -m nas.search ...` against a head
started on loopback. The job uploads a working directory holding only the project's packages, joins the
job's cluster (no second Ray), and its logs and status are read back through the dashboard's job API."""

import secrets
import shutil
import subprocess
import sys
import time

import pytest

from tests import searchrun
from tests.test_search_e2e import free_port

ROOT = searchrun.ROOT


@pytest.mark.slow
def test_ray_job_submit_runs_the_search_and_the_dashboard_lists_it(tmp_path, monkeypatch):
    workdir = tmp_path / "wd"
    for package in ("nas", "trials", "search_spaces"):
        shutil.copytree(ROOT / package, workdir / package, ignore=shutil.ignore_patterns("__pycache__"))
    port, dash = free_port(), free_port()
    # Token authentication on, with a token of this test's own: the head, `ray job submit` and the
    # job client in this process all read it.
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    for key, value in auth.items():
        monkeypatch.setenv(key, value)
    env = {**searchrun.env(), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", **auth}
    env.pop("PYTHONPATH")  # the job must run the uploaded copy, not this checkout
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={dash}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    address = f"http://127.0.0.1:{dash}"
    try:
        from ray.job_submission import JobSubmissionClient

        client = None
        deadline = time.monotonic() + 120
        while client is None:
            try:
                client = JobSubmissionClient(address)
            except Exception:  # the dashboard is still starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        search = ["python", "-m", "nas.search", *searchrun.FAST, "--trials", "2", "--max-epochs", "1",
                  "--storage-path", str(tmp_path / "runs"), "--name", "job"]
        submit = [sys.executable, "-m", "ray.scripts.scripts", "job", "submit", "--address", address,
                  "--working-dir", str(workdir), "--", *search]
        for _ in range(30):  # the head's job agent comes up a little after its dashboard
            out = subprocess.run(submit, capture_output=True, text=True, timeout=600, env=env)
            if "No available agent" not in out.stderr + out.stdout:
                break
            time.sleep(3)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        jobs = [j for j in client.list_jobs() if j.entrypoint.startswith("python -m nas.search")]
        assert len(jobs) == 1 and str(jobs[0].status) in ("SUCCEEDED", "JobStatus.SUCCEEDED"), jobs
        logs = client.get_job_logs(jobs[0].submission_id)
        assert "Search:" in logs and "Best:" in logs, logs[-3000:]
        frame = searchrun.trials(tmp_path / "runs" / "job")
        assert len(frame) == 2 and set(frame["outcome"]) == {"completed"}
        assert (tmp_path / "runs" / "job" / "best.json").is_file()
    finally:
        leftovers = searchrun.descendants(head.pid)
        head.terminate()
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
        searchrun.kill_pids(leftovers)
