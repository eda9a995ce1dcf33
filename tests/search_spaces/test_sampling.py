"""Budget parsing, the feasible define-by-run sampler, and the capacity-matched sweep."""

import optuna
import pytest

from search_spaces import complexity
from search_spaces.budget import Budget, parse_flops
from search_spaces.sampling import BudgetError, FeasibleSampler, capacity_matched, propose_many
from search_spaces.spaces import get_space


@pytest.mark.parametrize("text,flops", [
    ("4GFLOPs", 4 * 10**9), ("4 GFLOPs", 4 * 10**9), ("4gflops", 4 * 10**9), ("400MFLOPs", 4 * 10**8),
    ("4.1G", 41 * 10**8), ("4e9", 4 * 10**9), ("4.089184256GFLOPs", 4_089_184_256), ("250 MFLOP", 25 * 10**7),
])
def test_budget_strings(text, flops):
    assert parse_flops(text) == flops


@pytest.mark.parametrize("text", ["", " ", "0", "-4G", "nan", "inf", "4GFLOPz", "4 PFLOPs", "G", "1e30"])
def test_bad_budget_strings_list_accepted_forms(text):
    with pytest.raises(ValueError) as err:
        parse_flops(text)
    assert "\n" not in str(err.value)
    assert "accepted forms" in str(err.value) or "absurdly large" in str(err.value)


def test_window():
    b = Budget(1000, 0.1)
    assert (b.low, b.high) == (900, 1000)
    assert b.contains(900) and b.contains(1000) and not b.contains(899) and not b.contains(1001)


@pytest.mark.parametrize("space_name,shared,budget", [
    ("resnext-imagenet", True, "4GFLOPs"), ("resnext-imagenet", False, "4GFLOPs"),
    ("resnext-imagenet", True, "600MFLOPs"), ("resnext-cifar", True, "1GFLOPs"),
    ("resnext-cifar", False, "5.4GFLOPs"), ("resnext-imagenet", True, "16GFLOPs"),
])
@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_every_proposal_is_feasible(space_name, shared, budget, sampler):
    space = get_space(space_name, shared=shared)
    b = Budget.parse(budget, 0.05)
    archs = propose_many(space, b, 40, sampler, seed=1)
    assert all(b.contains(complexity(a, space.resolution).flops) for a in archs)
    assert len({a for a in archs}) > 20  # it explores, not repeats


def test_tpe_learns_under_the_constraint():
    """With results told back, TPE keeps proposing only feasible points and every dimension is a param."""
    space, budget = get_space("resnext-cifar"), Budget.parse("1GFLOPs")
    define = FeasibleSampler(space, budget)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5, multivariate=True))
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        arch = define.propose(trial)
        assert budget.contains(complexity(arch, space.resolution).flops)
        return arch.stages[0].cardinality  # pretend: more paths is better
    study.optimize(objective, n_trials=30)
    assert set(study.best_params) == {"cardinality_index", "base_width_pos", "depth_1_pos", "depth_2_pos",
                                      "depth_3_pos", "width_pos"}
    late = [t.user_attrs["cardinality"] for t in study.trials[-10:]]
    assert sum(late) / len(late) > 8  # it moved towards large C


def test_unreachable_budget_gives_the_range():
    with pytest.raises(BudgetError, match=r"cost .*FLOPs \.\. .*FLOPs"):
        FeasibleSampler(get_space("resnext-imagenet"), Budget.parse("10MFLOPs"))


def test_sampler_pickles_without_tables():
    import pickle

    define = FeasibleSampler(get_space("resnext-imagenet"), Budget.parse("4GFLOPs"))
    blob = pickle.dumps(define)
    assert len(blob) < 10_000
    again = pickle.loads(blob)
    study = optuna.create_study()
    assert again(study.ask())["arch"]["format"] == "resnext-arch/1"


def test_capacity_matched_sweep_is_the_papers_table_2():
    points = capacity_matched(get_space("resnext-imagenet"), Budget(4_089_184_256), [1, 2, 4, 8, 32], "params")
    assert [(p.cardinality, p.width) for p in points] == [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)]
    assert all(p.arch.depths == (3, 4, 6, 3) for p in points)
    by_flops = capacity_matched(get_space("resnext-imagenet"), Budget(4_089_184_256), [1, 32], "flops")
    assert abs(by_flops[1].flops - by_flops[0].flops) / by_flops[0].flops < 0.05
