"""The feasible sampler's encoding: every proposal is feasible, Optuna's recorded params decode to exactly
the architecture that trained, and the model-based samplers model every dimension jointly."""

from __future__ import annotations

import functools

import numpy as np
import optuna
import pytest

from search_spaces import complexity
from search_spaces.budget import Budget
from search_spaces.sampling import FeasibleSampler, capacity_matched
from search_spaces.spaces import get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

SETTINGS = [  # (space, shared, budget): both families, shared and --free, budgets far from the template's
    ("resnext-imagenet", True, "4GFLOPs"), ("resnext-imagenet", True, "500MFLOPs"),
    ("resnext-imagenet", True, "16GFLOPs"), ("resnext-imagenet", False, "4GFLOPs"),
    ("resnext-imagenet", False, "1GFLOPs"), ("resnext-cifar", True, "1GFLOPs"),
    ("resnext-cifar", False, "5.4GFLOPs"), ("resnext-cifar", True, "200MFLOPs"),
]


@functools.cache
def sampler_for(space_name: str, shared: bool, budget: str) -> tuple[FeasibleSampler, Budget]:
    b = Budget.parse(budget)
    return FeasibleSampler(get_space(space_name, shared=shared), b), b


def make(name: str, startup: int = 5):
    return {
        "tpe": lambda: optuna.samplers.TPESampler(seed=0, multivariate=True, constant_liar=True,
                                                  n_startup_trials=startup),
        "random": lambda: optuna.samplers.RandomSampler(seed=0),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=0, n_startup_trials=startup,
                                                      warn_independent_sampling=False),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=0, population_size=startup),
    }[name]()


def score(arch) -> float:
    """A cheap objective with an interaction (C against d), so the models have something to learn."""
    c, d = arch.stages[0].cardinality, arch.stages[0].group_width
    return -abs(np.log2(c) - 4) - abs(np.log2(d) - 2) + 0.01 * sum(arch.depths)


def run_study(define: FeasibleSampler, budget: Budget, sampler, n: int):
    """Optimise `score`; return the study and the architecture each trial trained, by trial number."""
    trained = {}

    def objective(trial):
        arch = define.propose(trial)
        assert budget.contains(complexity(arch, define.space.resolution).flops)
        trained[trial.number] = arch
        return score(arch)

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n)
    return study, trained


def check_recorded_is_trained(define: FeasibleSampler, study, trained) -> None:
    for t in study.get_trials(deepcopy=False):
        arch = trained[t.number]
        assert define.decode(t.params) == arch  # what Optuna records decodes to what trained
        assert define.decode(dict(t.params)) == define.decode(t.params)  # and always the same
        assert t.user_attrs["depths"] == list(arch.depths)
        assert t.user_attrs["base_width"] == arch.stages[0].out_channels
        cs = [s.cardinality for s in arch.stages]
        assert t.user_attrs["cardinality"] == (cs[0] if define.space.shared else cs)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s[0]}-{'shared' if s[1] else 'free'}-{s[2]}")
def test_300_random_proposals_are_feasible_and_recorded_as_trained(setting):
    define, budget = sampler_for(*setting)
    study, trained = run_study(define, budget, make("random"), 300)
    check_recorded_is_trained(define, study, trained)
    assert len(set(trained.values())) > 150  # it explores, not repeats


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s[0]}-{'shared' if s[1] else 'free'}-{s[2]}")
@pytest.mark.parametrize("name", ["tpe", "cmaes", "nsga2"])
def test_model_based_samplers_past_startup_stay_feasible_and_exact(setting, name):
    define, budget = sampler_for(*setting)
    study, trained = run_study(define, budget, make(name), 40)
    check_recorded_is_trained(define, study, trained)


def test_positions_at_the_ends_decode_exactly():
    """Positions 0.0 and 1.0 and the end indices pick members of the allowed sets, never outside."""
    for setting in SETTINGS:
        define, budget = sampler_for(*setting)
        study = optuna.create_study()
        first = study.ask()
        define.propose(first)
        for end in (0, 1):
            for other in (0, 1):  # every parameter at one end, or alternating ends
                params = {}
                for k, (name, dist) in enumerate(first.distributions.items()):
                    at_high = end if k % 2 == 0 else (end if other == 0 else 1 - end)
                    params[name] = dist.high if at_high else dist.low
                study.enqueue_trial(params)
                trial = study.ask()
                arch = define.propose(trial)
                assert trial.params == params
                assert define.decode(params) == arch
                assert budget.contains(complexity(arch, define.space.resolution).flops)


def recorded_jointly(name: str, setting, n: int = 30, startup: int = 5):
    """(study, all param names, [(what the sampler's joint model considered, what it sampled) per trial])."""
    define, budget = sampler_for(*setting)
    sampler = make(name, startup)
    joint = []
    original = sampler.sample_relative

    def spy(study, trial, search_space):
        out = original(study, trial, search_space)
        joint.append((set(search_space), set(out)))
        return out

    sampler.sample_relative = spy
    study, trained = run_study(define, budget, sampler, n)
    check_recorded_is_trained(define, study, trained)
    return study, set(study.trials[-1].params), joint


@pytest.mark.parametrize("setting", [SETTINGS[0], SETTINGS[3], SETTINGS[6]], ids=["shared", "free", "cifar-free"])
def test_the_intersection_search_space_holds_every_parameter(setting):
    """Optuna's multivariate TPE and CMA-ES model jointly exactly the intersection search space."""
    study, names, _ = recorded_jointly("tpe", setting, n=20)
    assert set(optuna.search_space.intersection_search_space(study.get_trials(deepcopy=False))) == names


@pytest.mark.parametrize("setting", [SETTINGS[0], SETTINGS[3]], ids=["shared", "free"])
@pytest.mark.parametrize("name", ["tpe", "cmaes", "nsga2"])
def test_after_startup_every_dimension_comes_from_the_joint_model(setting, name):
    """Each sampler runs past its start-up phase, and then samples ALL parameters relatively (jointly)."""
    study, names, joint = recorded_jointly(name, setting)
    modelled = [(space, out) for space, out in joint if out]
    assert len(modelled) >= 10, f"{name} never left its start-up phase"
    for space, out in modelled:
        assert space == names, f"{name} modelled only {space} of {names}"
        if name != "nsga2":  # NSGA-II's mutation deliberately redraws some parameters independently
            assert out == names


def test_small_budgets_are_not_degenerate():
    """0.5 GFLOPs on ImageNet: with the template's fixed 256..2048 outputs only d = 1-2 fit."""
    define, budget = sampler_for("resnext-imagenet", True, "500MFLOPs")
    study, trained = run_study(define, budget, make("random"), 200)
    widths = [a.stages[0].group_width for a in trained.values()]
    assert max(widths) >= 16 and np.median(widths) >= 4
    assert {a.stages[0].out_channels for a in trained.values()} >= {64, 128}


def test_sweep_points_outside_the_budget_say_so_and_why():
    space = get_space("resnext-imagenet")
    budget = Budget(4_089_184_256)
    points = capacity_matched(space, budget, [1, 2, 4, 8, 32], "params")
    assert [(p.cardinality, p.width) for p in points] == [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)]
    for p in points:
        assert p.in_budget == budget.contains(p.flops)
        if not p.in_budget:
            assert f"{p.cardinality}x{p.width}d" in p.outside and "params are closest" in p.outside
    assert not all(p.in_budget for p in points)  # Table 2's matched points do exceed it
    inside = capacity_matched(space, Budget(4_300_000_000), [1, 2], "flops")
    assert all(p.in_budget and p.outside == "" for p in inside)
