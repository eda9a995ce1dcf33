"""Drivers that tests/e2e/test_cluster.py runs INSIDE the cluster's network namespace (the cluster and the
S3 server are reachable only there). Each prints one JSON line starting with `RESULT ` for the test.

    python -m tests.helpers.cluster_driver place STORAGE_URI NAME
    python -m tests.helpers.cluster_driver survive STORAGE_URI NAME MARKER_DIR
    python -m tests.helpers.cluster_driver refuse LOCAL_PATH
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _node_roles(ray) -> dict[str, str]:
    return {n["NodeID"]: ("worker" if "worker" in n["Resources"] else "head") for n in ray.nodes()}


def epochs(config):
    """`config["epochs"]` epochs of `config["sleep"]` s, a checkpoint each; continues from its checkpoint.
    Writes MARKER_DIR/<node role>-<epoch> after each checkpoint so the test knows where it stands."""
    import ray
    from ray import tune

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            start = int(Path(d, "epoch").read_text())
    node = ray.get_runtime_context().get_node_id()
    role = _node_roles(ray).get(node, node)
    for epoch in range(start, config["epochs"]):
        time.sleep(config["sleep"])
        with tempfile.TemporaryDirectory() as d:
            Path(d, "epoch").write_text(str(epoch + 1))
            tune.report({"score": epoch + 1, "started_at": start, "node": node},
                        checkpoint=tune.Checkpoint.from_directory(d))
        if config.get("markers"):
            Path(config["markers"], f"{role}-{epoch + 1}").write_text("")


def place(storage: str, name: str) -> dict:
    """Two trials, one forced onto each node by its custom resource; storage on S3."""
    import ray
    from ray import tune

    from nas.rundir.location import RunLocation, refuse_local_on_multinode

    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    loc = RunLocation.parse(storage, name)
    loc.check_writable()
    refuse_local_on_multinode(loc)  # S3: allowed on 2 nodes
    trainable = tune.with_resources(epochs, lambda config: {"cpu": 1, "custom_resources": {config["where"]: 1}})
    results = tune.Tuner(
        trainable, param_space={"where": tune.grid_search(["head", "worker"]), "epochs": 2, "sleep": 0.2},
        run_config=tune.RunConfig(storage_path=loc.uri, name=loc.name, verbose=0),
    ).fit()
    roles = _node_roles(ray)
    return {"trials": [{"where": r.config["where"], "ran_on": roles.get(r.metrics.get("node")),
                        "score": r.metrics.get("score"), "error": str(r.error) if r.error else None,
                        "checkpoint": loc.relative(r.checkpoint.path) if r.checkpoint else None}
                       for r in results],
            "files": loc.list(recursive=True), "nodes": sum(n["Alive"] for n in ray.nodes())}


def survive(storage: str, name: str, markers: str) -> dict:
    """One trial that starts on the worker (a placeholder actor holds the head's only CPU until the trial's
    first result); the test kills the worker node mid-trial; the trial must finish on the head from its
    last checkpoint."""
    import ray
    from ray import tune

    from nas.rundir.location import RunLocation

    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    loc = RunLocation.parse(storage, name)

    @ray.remote(num_cpus=1, resources={"head": 1})
    class Placeholder:
        def ready(self):
            return True

    holder = Placeholder.remote()
    ray.get(holder.ready.remote())

    class Release(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            nonlocal holder
            if holder is not None:
                ray.kill(holder)
                holder = None

    results = tune.Tuner(
        tune.with_resources(epochs, {"cpu": 1}),
        param_space={"epochs": 8, "sleep": 1.0, "markers": markers},
        run_config=tune.RunConfig(storage_path=loc.uri, name=loc.name, verbose=0, callbacks=[Release()],
                                  failure_config=tune.FailureConfig(max_failures=2)),
    ).fit()
    roles = _node_roles(ray)
    r = results[0]
    return {"error": str(r.error) if r.error else None, "score": r.metrics.get("score"),
            "started_at": r.metrics.get("started_at"), "ran_on": roles.get(r.metrics.get("node")),
            "nodes_alive": sum(n["Alive"] for n in ray.nodes()), "files": loc.list(recursive=True)}


def refuse(path: str) -> dict:
    import ray

    from nas.rundir.location import RunLocation, StorageError, refuse_local_on_multinode

    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    try:
        refuse_local_on_multinode(RunLocation.parse(path, "exp"))
    except StorageError as exc:
        return {"refused": str(exc)}
    return {"refused": None}


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    out = {"place": place, "survive": survive, "refuse": refuse}[mode](*args)
    print("RESULT " + json.dumps(out), flush=True)
