"""Every model-based sampler runs past its start-up trials through the search's own searcher
(make_searcher: OptunaSearch over the feasible define-by-run space), without Ray's trial loop.

Training is replaced by made-up scores: what is tested is that the sampler switches from its start-up
(random) proposals to its model, and that every proposal stays feasible. Optuna marks trials its model
proposed in their system attributes (TPE's relative parameters, CMA-ES's and NSGA-II's generations).
"""

from __future__ import annotations

import random

import pytest

from nas.orchestration import SearchSettings
from nas.orchestration.tuner import make_searcher
from search_spaces import Architecture, Budget, complexity, get_space
from search_spaces.budget import parse_flops

MARKS = {"tpe": "tpe:relative_params", "cmaes": "cma:generation", "nsga2": "NSGAIISampler:generation"}


@pytest.mark.parametrize("sampler,objective", [("tpe", "accuracy"), ("cmaes", "accuracy"),
                                               ("nsga2", "accuracy,flops")])
def test_sampler_runs_past_its_startup_trials(sampler, objective, tmp_path):
    trials = 12  # start-up: min(10, max(3, trials // 3)) = 4 for tpe and cmaes
    s = SearchSettings(budget_flops=parse_flops("4GFLOPs"), sampler=sampler, objective=objective, trials=trials,
                       max_epochs=2, storage_path=str(tmp_path), name="run")  # the study's journal goes to RUN_DIR
    space, budget = get_space("resnext-imagenet"), Budget(s.budget_flops, s.tolerance)
    searcher = make_searcher(s, space, budget, {"seed": 0})
    rng = random.Random(0)
    for i in range(trials):
        config = searcher.suggest(f"t{i}")
        arch = Architecture.from_dict(config["arch"])
        assert budget.contains(complexity(arch, space.resolution).flops)
        searcher.on_trial_complete(f"t{i}", {"val_accuracy": rng.random(), "flops": complexity(arch).flops})
    study_trials = searcher._ot_study.trials  # Ray keeps the Optuna study here (ray 2.60)
    modelled = [any(k.startswith(MARKS[sampler]) for k in t.system_attrs) for t in study_trials]
    assert len(modelled) == trials
    if sampler != "nsga2":  # NSGA-II tags every trial with its generation, start-up or not
        assert not any(modelled[:4])
    assert all(modelled[5:]), modelled
