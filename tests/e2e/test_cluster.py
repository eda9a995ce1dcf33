"""A real 2-node Ray cluster (tests/helpers/ray_cluster.py) with the run stored on an S3 server: trials on both
nodes, a worker node killed mid-trial, and a local storage path refused on a multi-node cluster."""

import json
import sys
import time
import uuid


def driver(cluster, *args, timeout=120):
    out = cluster.run([sys.executable, "-m", "tests.helpers.cluster_driver", *args], timeout=timeout)
    return _result(out.stdout + out.stderr, out.returncode)


def _result(text, rc):
    lines = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"driver exited {rc} without a result:\n{text[-4000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def test_local_storage_is_refused_on_two_nodes(ray_cluster, tmp_path):
    result = driver(ray_cluster, "refuse", str(tmp_path / "runs"))
    assert result["refused"] is not None
    assert result["refused"].startswith(f"storage_path: {tmp_path / 'runs'} is a local path but the Ray "
                                        "cluster has 2 nodes")
    assert "s3://" in result["refused"] and "\n" not in result["refused"]


def test_trials_run_on_both_nodes_with_storage_on_s3(ray_cluster):
    name = f"place-{uuid.uuid4().hex[:6]}"
    result = driver(ray_cluster, "place", ray_cluster.s3.uri("runs"), name)
    trials = sorted(result["trials"], key=lambda t: t["where"])
    assert [(t["where"], t["ran_on"], t["score"], t["error"]) for t in trials] == [
        ("head", "head", 2, None), ("worker", "worker", 2, None)]
    assert result["nodes"] == 2
    for t in trials:  # each node persisted its own checkpoints to the bucket
        assert t["checkpoint"].endswith("/checkpoint_000001")
        assert t["checkpoint"] + "/epoch" in result["files"]
    assert any(f.startswith("experiment_state-") for f in result["files"])


def test_killing_the_worker_node_loses_nothing(ray_cluster, tmp_path):
    name = f"survive-{uuid.uuid4().hex[:6]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    killed = False
    proc = ray_cluster.popen([sys.executable, "-m", "tests.helpers.cluster_driver", "survive",
                              ray_cluster.s3.uri("runs"),
                              name, str(markers)])
    try:
        deadline = time.monotonic() + 60
        while not (markers / "worker-2").exists():  # two epochs checkpointed on the worker
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.1)
        raylets = ray_cluster.worker_raylet_pids()
        assert len(raylets) == 1
        killed = True
        assert set(raylets) <= set(ray_cluster.kill_worker_node())
        text, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        if killed:
            ray_cluster.add_worker()  # the tests after this one (module-scoped cluster) need both nodes again
    result = _result(text, proc.returncode)
    assert result["error"] is None and result["score"] == 8  # finished all 8 epochs
    assert result["ran_on"] == "head" and result["nodes_alive"] == 1
    assert result["started_at"] >= 2  # went on from its last checkpoint, not from scratch
    head_epochs = sorted(int(p.name.split("-")[1]) for p in markers.glob("head-*"))
    assert head_epochs and head_epochs[0] >= 3 and head_epochs[-1] == 8


# --- the real `python -m nas.search` on the cluster ------------------------------------------------

SEARCH = ["-m", "nas.search", "--address", "127.0.0.1:6379", "--budget", "500MFLOPs", "--dataset", "synthetic",
          "--train-subset", "192", "--batch-size", "32", "--max-epochs", "1", "--scheduler", "none",
          "--cpus-per-trial", "1"]

# Run inside the namespace (the S3 server and the cluster are reachable only there): on which node each
# trial actor ran (GCS's actor table keeps finished actors; the fixture runs no dashboard for Ray's state
# API) and, given a run URI, the run's tables and best.json read back through RunLocation.
INSPECT = """
import io, json, sys
import pandas as pd, ray
from ray._private.state import actors
from nas.rundir.location import RunLocation
ray.init(address="127.0.0.1:6379", log_to_driver=False)
roles = {n["NodeID"]: ("worker" if "worker" in n["Resources"] else "head") for n in ray.nodes()}
out = {"actors": {a: roles.get(info["Address"]["NodeID"], "?") for a, info in actors().items()
                  if "ImplicitFunc" in info["ActorClassName"]}}
if len(sys.argv) > 1:
    loc = RunLocation.from_run_uri(sys.argv[1])
    out.update(trials=pd.read_csv(io.StringIO(loc.read_text("trials.csv")), dtype={"trial_id": str}).to_dict("records"),
               best=json.loads(loc.read_text("best.json")), files=loc.list())
print("RESULT " + json.dumps(out, default=str))
"""


def inspect(cluster, *args):
    seen = cluster.run([sys.executable, "-c", INSPECT, *args], timeout=120)
    return _result(seen.stdout + seen.stderr, seen.returncode)


def test_nas_search_refuses_local_storage_on_two_nodes(ray_cluster, tmp_path):
    runs = tmp_path / "runs"
    out = ray_cluster.run([sys.executable, *SEARCH, "--trials", "1", "--storage-path", str(runs), "--name", "x"],
                          timeout=300)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --storage-path: {runs} is a local path but the Ray cluster has 2 nodes; ")
    assert "s3://" in last and "NAS_SHARED_STORAGE=1" in last
    assert not (runs / "x").exists()  # refused before anything was written: no trial started
    assert "Search:" not in out.stdout


def test_nas_search_runs_trials_on_both_nodes_with_the_run_on_s3(ray_cluster):
    name = f"nas-{uuid.uuid4().hex[:6]}"
    uri = ray_cluster.s3.uri("runs")
    earlier = set(inspect(ray_cluster)["actors"])  # trial actors of other tests on this cluster
    out = ray_cluster.run([sys.executable, *SEARCH, "--trials", "2", "--max-concurrent", "2",
                           "--storage-path", uri, "--name", name], timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_uri = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("run: "))
    result = inspect(ray_cluster, run_uri)
    nodes = sorted(role for actor, role in result["actors"].items() if actor not in earlier)
    assert nodes == ["head", "worker"]  # one trial per node: each node has 1 CPU, a trial needs 1
    trials = result["trials"]
    assert len(trials) == 2 and {t["outcome"] for t in trials} == {"completed"}
    assert all(t["epochs"] == 1 and t["checkpoint"].startswith("trial_") for t in trials)
    best = max(trials, key=lambda t: t["best_val_accuracy"])
    assert result["best"] == json.loads(best["arch"])
    for f in ("search.json", "trials.csv", "epochs.csv", "best.json", "report.html", "trials.parquet"):
        assert f in result["files"], (f, out.stdout[-3000:], out.stderr[-2000:])
