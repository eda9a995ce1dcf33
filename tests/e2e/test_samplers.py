"""Every sampler and objective runs a (tiny) real search on the shared Ray instance."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nas.orchestration import SearchSettings, run_search
from search_spaces import Architecture, complexity
from search_spaces.budget import Budget, parse_flops


def tiny(tmp_path, name, **kw) -> SearchSettings:
    base = dict(budget_flops=parse_flops("500MFLOPs"), dataset="synthetic", train_subset=96, val_size=128,
                batch_size=32, trials=3, max_epochs=1, grace_epochs=1, reduction_factor=2, max_concurrent=1,
                cpus_per_trial=2, storage_path=str(tmp_path), name=name,
                references="none")  # every trial the sampler's (references: the session's finished_search)
    base.update(kw)
    return SearchSettings(**base)


@pytest.mark.parametrize("sampler,objective,free", [
    ("random", "accuracy", False), ("cmaes", "accuracy", False), ("nsga2", "accuracy,flops", False),
    ("tpe", "accuracy,flops", True),
])
def test_samplers_propose_feasible_trials(tmp_path, ray_instance, sampler, objective, free):
    s = tiny(tmp_path, sampler, sampler=sampler, objective=objective, free=free)
    summary = run_search(s)
    frame = pd.read_csv(s.run_dir / "trials.csv", dtype={"trial_id": str})
    assert len(frame) == 3 and set(frame["outcome"]) == {"completed"}
    budget = Budget(s.budget_flops)
    for text in frame["arch"]:
        assert budget.contains(complexity(Architecture.from_dict(json.loads(text)), 224).flops)
    assert summary["best_trial"] in set(frame["trial_id"])
    if free:  # per-stage choices reach the table
        assert frame["cardinalities"].str.count(",").eq(3).all()


def test_grid_sweep_runs_the_matched_architectures_once_per_seed(tmp_path, ray_instance):
    # Two epochs with grace 1 and reduction factor 2: under ASHA some points would stop after one.
    s = tiny(tmp_path, "grid", sampler="grid", cardinality=[1, 4], match="flops", seeds=2,
             budget_flops=parse_flops("600MFLOPs"), depths=[1, 1, 1, 1], max_epochs=2)
    run_search(s)
    frame = pd.read_csv(s.run_dir / "trials.csv", dtype={"trial_id": str})
    assert len(frame) == 4
    assert set(frame["outcome"]) == {"completed"} and (frame["epochs"] == 2).all()  # every point trained fully
    assert sorted(zip(frame["cardinality"], frame["seed"], strict=True)) == [(1, 0), (1, 1), (4, 0), (4, 1)]
    assert frame.groupby("cardinality")["width"].nunique().eq(1).all()
    assert json.loads((s.run_dir / "search.json").read_text())["match"] == "flops"
