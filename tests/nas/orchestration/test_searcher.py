"""Every model-based sampler runs past its start-up trials through the search's own searcher
(make_searcher: OptunaSearch over the feasible define-by-run space), without Ray's trial loop.

Training is replaced by made-up scores: what is tested is that the sampler switches from its start-up
(random) proposals to its model, and that every proposal stays feasible. Optuna marks trials its model
proposed in their system attributes (TPE's relative parameters, CMA-ES's and NSGA-II's generations).
"""

from __future__ import annotations

import random

import optuna
import pytest

from nas.orchestration import SearchSettings, tracking
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
    archs = {}
    for i in range(trials):
        config = searcher.suggest(f"t{i}")
        arch = archs[i] = Architecture.from_dict(config["arch"])
        assert budget.contains(complexity(arch, space.resolution).flops)
        # every third trial is stopped by ASHA after its first epoch (of 2)
        epochs = 1 if i % 3 == 1 else 2
        for epoch in range(1, epochs + 1):
            result = {"val_accuracy": rng.random(), "flops_nominal": complexity(arch).flops, "epoch": epoch,
                      "training_iteration": epoch}
            if epoch < epochs:
                searcher.on_trial_result(f"t{i}", result)
        searcher.on_trial_complete(f"t{i}", result)
    study_trials = searcher._ot_study.trials  # Ray keeps the Optuna study here (ray 2.60)
    modelled = [any(k.startswith(MARKS[sampler]) for k in t.system_attrs) for t in study_trials]
    assert len(modelled) == trials
    if sampler != "nsga2":  # NSGA-II tags every trial with its generation, start-up or not
        assert not any(modelled[:4])
    assert all(modelled[5:]), modelled  # also with PRUNED trials among those the model learns from
    # ASHA-stopped trials are PRUNED where the sampler learns from PRUNED trials, at their last epoch's value
    stopped = [t for t in study_trials if t.user_attrs["outcome"] == "stopped"]
    assert len(stopped) == 4 and all(t.values is not None for t in stopped)
    expected = optuna.trial.TrialState.COMPLETE if sampler == "nsga2" else optuna.trial.TrialState.PRUNED
    assert {t.state for t in stopped} == {expected}
    assert searcher._ot_study.metric_names == (["val_accuracy", "flops_nominal"] if sampler == "nsga2"
                                               else ["val_accuracy"])
    # the same trials as architectures, in the study beside the sampler's (what optuna-dashboard plots)
    storage = tracking.optuna_storage(tmp_path / "run")
    assert sorted(optuna.get_all_study_names(storage)) == ["nas-run", "nas-run/architectures"]
    decoded = optuna.load_study(study_name="nas-run/architectures", storage=storage)
    assert decoded.metric_names == searcher._ot_study.metric_names
    assert [t.user_attrs["ray_trial_id"] for t in decoded.trials] == [f"t{i}" for i in range(trials)]
    for t, sampled in zip(decoded.trials, study_trials, strict=True):
        arch = archs[int(t.user_attrs["ray_trial_id"][1:])]
        assert t.params == {"cardinality": arch.stages[0].cardinality, "width": arch.stages[0].group_width,
                            "base_width": arch.stages[0].out_channels,
                            **{f"depth_{k + 1}": d for k, d in enumerate(arch.depths)}}
        assert t.user_attrs["name"] == arch.describe() and t.values == sampled.values
        stopped = t.user_attrs["outcome"] == "stopped"
        assert t.state == (optuna.trial.TrialState.PRUNED if stopped else optuna.trial.TrialState.COMPLETE)
    if sampler != "nsga2":  # importance ranks the architecture's own parameters
        importance = optuna.importance.get_param_importances(
            decoded, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
        assert set(importance) <= {"cardinality", "width", "base_width", "depth_1", "depth_2", "depth_3", "depth_4"}
        assert importance
