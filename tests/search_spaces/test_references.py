"""The reference designs every search trains (search_spaces.references) and the encoding that lets the
sampler observe them (FeasibleSampler.encode)."""

from __future__ import annotations

import json

import optuna
import pytest

from search_spaces import (
    Budget,
    BudgetError,
    FeasibleSampler,
    SpaceFileError,
    complexity,
    get_space,
    load_space,
    parse_flops,
    references,
    space_to_dict,
    template,
)
from search_spaces.references import nearest_feasible, paper_designs

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _refs(space: str, budget: str, shared: bool = True):
    return references(get_space(space, shared=shared), Budget(parse_flops(budget)))


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("space,budget,expected", [
    # ResNet-50's 1x64d costs 4.09 GFLOPs and 32x4d 4.23: above a 4 GFLOPs budget, so the nearest feasible
    # variants train (one width narrower; stage 3 two blocks shallower)
    ("resnext-imagenet", "4GFLOPs", ["1x62d [3,4,6,3]", "32x4d [3,4,4,3]"]),
    # at exactly ResNet-50's FLOPs it trains as the paper has it; 32x4d is 3.5% over and moves
    ("resnext-imagenet", "4089184256", ["1x64d [3,4,6,3]", "32x4d [3,4,5,3]"]),
    ("resnext-imagenet", "600MFLOPs", ["1x4d [3,4,6,3]", "32x1d [3,4,3,3] out128"]),
    # no width brings C=1 into the window at the template's 256 (1x1d costs 508 MFLOPs): the design is
    # the template at the next narrower output width, 1x14d out128, one width too wide
    ("resnext-imagenet", "500MFLOPs", ["1x13d [3,4,6,3] out128", "32x1d [3,4,12,3] out64"]),
    ("resnext-cifar", "120MFLOPs", ["1x6d [3,3,3]", "32x1d [3,3,3] out128"]),
    ("resnext-cifar", "600MFLOPs", ["1x53d [3,3,3]", "32x3d [3,3,3]"]),
])
def test_the_papers_references_at_three_budgets(space, budget, expected, shared):
    refs, skipped = _refs(space, budget, shared)
    assert [r.arch.describe() for r in refs] == expected and not skipped
    b, sp = Budget(parse_flops(budget)), get_space(space, shared=shared)
    sampler = FeasibleSampler(sp, b)
    for r in refs:
        assert b.contains(r.flops) and r.flops == complexity(r.arch, sp.resolution).flops
        assert r.arch.stages[0].cardinality == r.design.stages[0].cardinality  # moved, never another C
        assert sampler.decode(r.params).to_dict() == r.arch.to_dict()  # what the enqueued trial trains
        assert bool(r.note) == (r.arch != r.design)


def test_the_papers_names_and_why_a_design_moved():
    refs, _ = _refs("resnext-imagenet", "4089184256")
    assert [r.name for r in refs] == ["ResNet-50 (1x64d)", "ResNeXt-50 (32x4d)"]
    assert refs[0].note == ""
    assert "32x4d [3,4,6,3] costs 4.23 GFLOPs (+3.46% of the budget)" in refs[1].note
    assert "nearest feasible variant 32x4d [3,4,5,3]" in refs[1].note


def test_the_design_is_capacity_matched_before_it_moves():
    """C = 32's width is the one whose params are closest to C = 1's point (the paper's Table 2 rule)."""
    (_, c1), (_, c32) = paper_designs(get_space("resnext-imagenet"), Budget(parse_flops("4.089GFLOPs")))
    assert (c1.describe(), c32.describe()) == ("1x64d [3,4,6,3]", "32x4d [3,4,6,3]")


def test_a_cardinality_that_cannot_meet_the_budget_is_left_out_and_said():
    refs, skipped = _refs("resnext-imagenet", "150MFLOPs")
    assert [r.arch.describe() for r in refs] == ["1x1d [3,4,6,3] out64"]
    assert len(skipped) == 1 and "no architecture with C=32 meets the budget 150 MFLOPs" in skipped[0]


def test_an_unreachable_budget_raises():
    with pytest.raises(BudgetError, match="cannot be met"):
        _refs("resnext-imagenet", "120MFLOPs")


def test_nearest_feasible_changes_as_little_as_it_can():
    space, budget = get_space("resnext-imagenet"), Budget(parse_flops("4GFLOPs"))
    arch = nearest_feasible(space, budget, template((3, 4, 6, 3), 1, 63))
    assert arch.describe() == "1x62d [3,4,6,3]"  # one width narrower, not a shallower or thinner network
    assert nearest_feasible(space, budget, template((3, 4, 6, 3), 3, 4)) is None  # C=3 is not in the space


@pytest.mark.parametrize("space,budget,shared", [("resnext-imagenet", "4GFLOPs", True),
                                                 ("resnext-imagenet", "4GFLOPs", False),
                                                 ("resnext-cifar", "600MFLOPs", True)])
def test_encode_is_the_inverse_of_decode(space, budget, shared):
    sampler = FeasibleSampler(get_space(space, shared=shared), Budget(parse_flops(budget)))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(25):
        trial = study.ask()
        arch = sampler.propose(trial)
        params = sampler.encode(arch)
        assert sampler.decode(params).to_dict() == arch.to_dict()
        assert set(params) == set(trial.params)  # the same parameters, so the sampler models them jointly


def test_encode_refuses_what_the_space_cannot_propose():
    sampler = FeasibleSampler(get_space("resnext-imagenet"), Budget(parse_flops("4GFLOPs")))
    with pytest.raises(ValueError, match="infeasible"):
        sampler.encode(template((3, 4, 6, 3), 32, 4))  # 4.23 GFLOPs: over the budget
    with pytest.raises(ValueError, match="not the space's"):
        sampler.encode(template((3, 4, 6, 3), 3, 20))  # C=3


# --- a space file's own references ------------------------------------------------------------------------

def _space_file(tmp_path, references) -> str:
    data = json.loads(json.dumps(space_to_dict(get_space("resnext-cifar"))))
    data["references"] = references
    path = tmp_path / "space.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_a_space_files_references_are_trained_instead_of_the_papers(tmp_path):
    space = load_space(_space_file(tmp_path, [
        {"name": "mine", "cardinality": 8, "width": 8, "depths": [3, 3, 3], "base_width": 128},
        {"name": "too big", "cardinality": 16, "width": 64, "depths": [3, 3, 3]}]))
    assert space_to_dict(space)["references"][0] == {"name": "mine", "cardinality": 8, "width": 8,
                                                     "depths": [3, 3, 3], "base_width": 128}
    budget = Budget(complexity(space.architecture(8, 8, (3, 3, 3), 128), space.resolution).flops)
    refs, skipped = references(space, budget)
    assert [r.name for r in refs] == ["mine", "too big"] and not skipped
    assert refs[0].arch.describe() == "8x8d [3,3,3] out128" and refs[0].note == ""  # exactly the budget
    assert refs[1].arch.stages[0].cardinality == 16 and "nearest feasible variant" in refs[1].note
    assert references(load_space(_space_file(tmp_path, [])), budget) == ([], [])  # [] means none


@pytest.mark.parametrize("entry,message", [
    ("x", "references[0]: expected an object"),
    ({"name": "a", "cardinality": 3, "width": 4, "depths": [3, 3, 3]}, "references[0].cardinality: 3 is not among"),
    ({"name": "a", "cardinality": 8, "width": 0, "depths": [3, 3, 3]}, "references[0].width: expected an integer"),
    ({"name": "a", "cardinality": 8, "width": 4, "depths": [3, 3]}, "references[0].depths: expected one depth per"),
    ({"name": "a", "cardinality": 8, "width": 4}, "references[0].depths: required field missing"),
    ({"name": "", "cardinality": 8, "width": 4, "depths": [3, 3, 3]}, "references[0].name: expected a non-empty"),
    ({"name": "a", "cardinality": 8, "width": 4, "depths": [3, 3, 3], "C": 1}, "references[0].C: unknown field"),
])
def test_bad_references_name_the_field(tmp_path, entry, message):
    path = _space_file(tmp_path, [entry])
    with pytest.raises(SpaceFileError) as exc:
        load_space(path)
    assert str(exc.value).startswith(f"{path}: {message}")


def test_references_must_be_a_list_with_distinct_names(tmp_path):
    with pytest.raises(SpaceFileError, match="references: expected a list"):
        load_space(_space_file(tmp_path, {"name": "a"}))
    twice = {"name": "a", "cardinality": 8, "width": 4, "depths": [3, 3, 3]}
    with pytest.raises(SpaceFileError, match="references: names must be distinct"):
        load_space(_space_file(tmp_path, [twice, twice]))
