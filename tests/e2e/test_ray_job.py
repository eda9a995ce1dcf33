"""The Ray way of running on a cluster: `ray job submit ... -- python -m nas.search ...` against a head
started on loopback. The job uploads a working directory holding only the project's packages, joins the
job's cluster (no second Ray), and its logs and status are read back through the dashboard's job API."""

import json
import secrets
import shutil
import sys
import time

from tests.helpers import searchrun
from tests.helpers.searchrun import free_port

ROOT = searchrun.ROOT
STARTING = ("No available agent", "Connection refused", "Failed to connect", "ConnectionError")
READ_JOBS = """
import json, sys
from ray.job_submission import JobSubmissionClient
client = JobSubmissionClient(sys.argv[1])
jobs = [j for j in client.list_jobs() if j.entrypoint.startswith("python -m nas.search")]
print(json.dumps([{"status": str(j.status).removeprefix("JobStatus."),
                   "logs": client.get_job_logs(j.submission_id)} for j in jobs]))
"""


def test_ray_job_submit_runs_the_search_and_the_dashboard_lists_it(tmp_path, search_process):
    workdir = tmp_path / "wd"
    for package in ("nas", "trials", "search_spaces"):
        shutil.copytree(ROOT / package, workdir / package, ignore=shutil.ignore_patterns("__pycache__"))
    port, dash = free_port(), free_port()
    # Token authentication on, with a token of this test's own: the head, `ray job submit` and the
    # job client (run in a process of its own, below) all read it.
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {**searchrun.env(), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", **auth}
    env.pop("PYTHONPATH")  # the job must run the uploaded copy, not this checkout
    address = f"http://127.0.0.1:{dash}"
    with search_process.ray_head(
            port, "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
            # free ports for the agents too: the job agent's default (52365) may be held by another Ray on
            # this machine (the suite's shared instance), and then no job can be submitted
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}", environ=env):
        search = ["python", "-m", "nas.search", *searchrun.FAST, "--trials", "2", "--max-epochs", "1",
                  "--storage-path", str(tmp_path / "runs"), "--name", "job"]
        submit = [sys.executable, "-m", "ray.scripts.scripts", "job", "submit", "--address", address,
                  "--working-dir", str(workdir), "--", *search]
        deadline = time.monotonic() + 180
        while True:  # the dashboard, then the head's job agent, come up a little after `ray start`
            out = search_process.call(submit, timeout=600, env=env)
            text = out.stdout + out.stderr
            if out.returncode == 0 or not any(m in text for m in STARTING) or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        # The job API's client in a process of its own: Ray caches the auth token per process, and this
        # one may have loaded another token for the suite's shared Ray instance.
        read = search_process.call([sys.executable, "-c", READ_JOBS, address], timeout=120, env=env)
        assert read.returncode == 0, read.stderr[-3000:]
        jobs = json.loads(read.stdout.strip().splitlines()[-1])
        assert len(jobs) == 1 and jobs[0]["status"] == "SUCCEEDED", jobs
        logs = jobs[0]["logs"]
        assert "Search:" in logs and "Best:" in logs, logs[-3000:]
        frame = searchrun.trials(tmp_path / "runs" / "job")
        assert len(frame) == 2 and set(frame["outcome"]) == {"completed"}
        assert (tmp_path / "runs" / "job" / "best.json").is_file()
