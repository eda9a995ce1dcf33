"""Fixtures shared by the test files, and the rule that sorts the suite into two tiers.

`python -m pytest` (what CI runs) runs everything; `python -m pytest -m "not slow"` is the tier to run
while working. `slow` is never written by hand: a test is `slow` when its fixture closure (its own
fixtures and every fixture they depend on) holds one of SLOW_FIXTURES. Whatever starts Ray, an S3
server or a process running a search or a training therefore carries the marker; tests/test_suite_rules.py
checks the rule, and that test modules start processes and Ray only through these fixtures.
"""

from __future__ import annotations

import contextlib
import io
import os

import pytest

from tests.helpers.ray_cluster import ray_cluster  # noqa: F401  (fixture: a 2-node cluster, module scope)
from tests.helpers.s3_server import s3_server, s3_uri  # noqa: F401  (fixtures: moto S3 on 127.0.0.1)
from tests.helpers.searchrun import QuickCommands, SearchProcesses

pytest_plugins = ("pytester",)  # tests/test_suite_rules.py runs a collection of its own


@pytest.fixture(autouse=True)
def _decoded_folders_cache(tmp_path_factory, monkeypatch):
    """Image folders decoded by a test are cached under the session's temporary directory, not in ~/.cache
    (trials.datasets.image_decode; subprocesses inherit it)."""
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "nas-cache"))

SLOW_FIXTURES = frozenset({
    "ray_instance",  # the session's Ray (and every fixture built on it: finished_search, ...)
    "ray_cluster",  # a 2-node Ray cluster in a network namespace
    "s3_server",  # a moto server process (s3_uri depends on it)
    "search_process",  # `python -m nas.search` / nas.train / nas.validate / a Ray head / `ray job` ...
    "fashion_mnist",  # training on the real dataset: tens of seconds on 2 cores
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# --- Ray ----------------------------------------------------------------------------------------------------

def _ray_env() -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep Ray on 127.0.0.1
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray on 127.0.0.1 for every in-process test that needs it (ray.init costs ~5 s here, its
    shutdown as much). A test that needs a Ray of its own (other resources, a cluster, a killed driver)
    runs it in a process of its own through `search_process` or `ray_cluster`, and says why."""
    _ray_env()
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=True,
             _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


# --- processes ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def search_process() -> SearchProcesses:
    """Real searches and other processes that start Ray or train (`python -m nas.search`, nas.validate,
    nas.train, a Ray head, `ray job submit`): tests/helpers/searchrun.py's SearchProcesses."""
    return SearchProcesses()


@pytest.fixture(scope="session")
def cli() -> QuickCommands:
    """`python ARGS` for commands that end before Ray starts (dry runs, argument errors)."""
    return QuickCommands()


# --- data ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fashion_mnist():
    """The Fashion-MNIST files of Debian's dataset-fashion-mnist (skip without them)."""
    from pathlib import Path

    root = Path("/usr/share/datasets/fashion-mnist")
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed (apt install dataset-fashion-mnist)")
    return root


@pytest.fixture(scope="module")
def synthetic():
    """Learnable random images, 16x16, for training-loop tests (tests/helpers/training.py: TINY, quick)."""
    from trials.datasets import load_synthetic

    return load_synthetic(n_train=320, n_test=64, resolution=16)


# --- one finished search, shared ----------------------------------------------------------------------------

FINISHED = dict(budget="500MFLOPs", dataset="synthetic", train_subset=192, batch_size=32, max_concurrent=1,
                cpus_per_trial=2, trials=6, max_epochs=3, grace_epochs=1, reduction_factor=2, seed=3,
                name="finished")


@pytest.fixture(scope="session")
def finished_search(ray_instance, tmp_path_factory):
    """One small finished search (6 trials under ASHA, synthetic images), run once per test session
    in-process on the shared Ray, for the tests that only read a finished run (its tables, best.json,
    report, export). Returns (run_dir, its SearchResult). Do not write into it: copy it first."""
    import nas

    storage = tmp_path_factory.mktemp("finished")
    with contextlib.redirect_stdout(io.StringIO()):  # its progress table: not the test log's business
        result = nas.run_search(storage_path=str(storage), **FINISHED)
    return result.run_dir, result
