"""Fixtures shared by the test files."""

import pytest


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray for every in-process test that needs it (ray.init costs ~5 s here)."""
    import os

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=True)
    yield ray
    ray.shutdown()
