"""GPUs accounted for, on a Ray instance whose GPUs are only resource labels (tests/helpers/gpu_probe.py).

Each scenario is a real search through nas.orchestration.run (Tuner, OptunaSearch, our resources and
callbacks) on a Ray declaring 1 or 2 GPUs, all four in one subprocess; the probe trainable records the device and GPU
share it resolved from Ray's assignment, and its time span.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def probed(search_process, tmp_path_factory):
    """Every scenario, in one process (tests/helpers/gpu_probe.py), on a Ray of its own declaring 1 or 2
    GPUs: resource labels that the session's shared Ray (CPUs only) must not have. Returns the folder
    holding one sub-folder per scenario."""
    out = tmp_path_factory.mktemp("gpu_probe")
    done = search_process.command("tests.helpers.gpu_probe", str(out), "pack", "zero", "whole", "oom", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _records(probed, scenario: str) -> list[dict]:
    return [json.loads(line) for line in (probed / scenario / "probe.jsonl").read_text().splitlines()]


def _max_overlap(records: list[dict]) -> int:
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _spans(records: list[dict]) -> list[tuple[float, float]]:
    t0 = min(r["start"] for r in records)
    return [(round(r["start"] - t0, 1), round(r["end"] - t0, 1)) for r in records]


def test_the_automatic_share_packs_four_small_trials_on_one_gpu(probed):
    records = _records(probed, "pack")
    assert len(records) == 4
    # ~10 MFLOPs per image at 32x32: gpu_fraction gives 0.25, so all four run at once on the one GPU
    assert {r["granted_gpu"] for r in records} == {0.25}
    assert _max_overlap(records) == 4, _spans(records)
    # each trial's memory cap is its share (TrainConfig.gpu_share, from Tune's trial resources)
    assert {r["gpu_share"] for r in records} == {0.25}
    assert {r["device"] for r in records} == {"cuda:0"} and {r["cuda_visible"] for r in records} == {"0"}


def test_a_trial_without_a_gpu_share_never_touches_cuda(probed):
    records = _records(probed, "zero")
    assert len(records) == 2
    assert {r["device"] for r in records} == {"cpu"}
    assert {r["gpu_share"] for r in records} == {None}
    assert not any(r["cuda_initialized"] for r in records)


def test_each_trial_uses_the_gpu_ray_gave_it(probed):
    records = _records(probed, "whole")
    assert len(records) == 2 and _max_overlap(records) == 2
    assert sorted(r["cuda_visible"] for r in records) == ["0", "1"]  # one GPU each, different ones
    assert {r["device"] for r in records} == {"cuda:0"}  # numbered from 0 within its CUDA_VISIBLE_DEVICES
    assert {r["gpu_share"] for r in records} == {None}  # a whole GPU: no cap below 1


def test_an_oom_under_a_fractional_share_is_retried_on_a_whole_gpu(probed):
    records = _records(probed, "oom")
    assert [(r["granted_gpu"], r.get("raised")) for r in records] == [(0.25, "FractionalOOM"), (1.0, None)]
    assert records[0]["trial"] == records[1]["trial"]
    frame = pd.read_csv(probed / "oom" / "run" / "trials.csv")
    assert list(frame["outcome"]) == ["completed"], frame.to_dict("records")
    assert float(frame["val_accuracy"].iloc[0]) == pytest.approx(0.5)
