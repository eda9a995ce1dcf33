"""The report's latency section: accuracy vs the latency a (fake) device table predicts, its Pareto front,
ms per GFLOP per cardinality; without a table, one line saying how to build one."""

from __future__ import annotations

import json

import pytest

from nas.report import load_run
from nas.report.figures import build_sections
from search_spaces import Architecture, LatencyTable, TableMeta, get_space, space_keys
from search_spaces.complexity import block_cost
from tests.helpers.fake_run import write_fake_run

RATE = {1: 10.0, 2: 25.0, 4: 30.0, 8: 40.0, 16: 55.0, 32: 70.0, 64: 90.0}  # fake ms per GFLOP, by C


def fake_table(path):
    """Every part of the cifar space at 32x32; a fake timer: a block takes RATE[C] ms per GFLOP of its
    FLOPs (grouped convolutions slower per FLOP), the stem and head 0.5 ms."""
    entries = {}
    for k in space_keys(get_space("resnext-cifar")):
        if k.startswith("block:"):
            c_in, c_out, c, d, stride, hw = (int(f) for f in k.split(":")[1].split(","))
            entries[k] = RATE[c] * block_cost(c_in, c_out, c, d, stride, hw)[0].flops / 1e9
        else:
            entries[k] = 0.5
    table = LatencyTable(TableMeta("cpu: test", 2, 1, "float32", 32, "0"), entries)
    table.save(path)
    return table


def section(run_dir):
    return {s.key: s for s in build_sections(load_run(run_dir))}["latency"]


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_LATENCY_CACHE", str(tmp_path / "empty-cache"))


def test_latency_figure_plots_predicted_latency_with_its_front(tmp_path, no_cache):
    run_dir = write_fake_run(tmp_path / "run", space="resnext-cifar", n_trials=20, seed=3)
    table = fake_table(tmp_path / "table.json")
    info = json.loads((run_dir / "search.json").read_text())
    info["settings"] = {"latency_table": str(tmp_path / "table.json")}
    (run_dir / "search.json").write_text(json.dumps(info))
    s = section(run_dir)
    assert s.figure is not None, s.note
    fig = s.figure.to_plotly_json()
    trials = load_run(run_dir).measured().set_index("trial_id")
    points = [(cd[0], x) for t in fig["data"] if (t.get("meta") or {}).get("role") == "trials"
              for cd, x in zip(t["customdata"], t["x"], strict=True)]
    assert len(points) == len(trials)
    for trial_id, x in points:  # each point at its architecture's predicted latency
        assert x == pytest.approx(table.predict(Architecture.from_dict(json.loads(trials.loc[trial_id, "arch"]))))
    fronts = [t for t in fig["data"] if (t.get("meta") or {}).get("role") == "pareto"]
    assert len(fronts) == 1 and fronts[0]["x"] == sorted(fronts[0]["x"])
    assert "predicted latency" in fig["layout"]["xaxis"]["title"]["text"]
    speed = s.table.set_index("C")["ms per GFLOP"]  # the fake timer's rates, read back from the table
    assert len(speed) > 1 and all(v == pytest.approx(RATE[c], abs=1e-3) for c, v in speed.items())


def test_without_a_table_the_section_says_how_to_build_one(tmp_path, no_cache):
    run_dir = write_fake_run(tmp_path / "run", space="resnext-cifar", n_trials=8, seed=3)
    s = section(run_dir)
    assert s.figure is None and "python -m nas.profile --space resnext-cifar" in s.note
    assert len(s.note.splitlines()) == 1
