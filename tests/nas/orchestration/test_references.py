"""The reference designs inside a search: which the settings give, how the searcher asks them first and
marks them, the role column of trials.csv; and nas.validate's side: references beside the top K, fresh
seeds, held-out images, the proxy at one epoch, each architecture's difference to the best reference."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nas.orchestration import SearchSettings, reference_designs
from nas.orchestration.callbacks import ResultsTable
from nas.orchestration.tuner import make_searcher
from nas.orchestration.validation import (
    ValidationError,
    held_out,
    plan,
    select,
    summary,
    validation_seeds,
)
from nas.report import load_run
from search_spaces import Architecture, Budget, complexity, get_space, parse_flops
from tests.helpers.fake_run import write_fake_run


def settings(tmp_path, **kw) -> SearchSettings:
    return SearchSettings(**{"budget_flops": parse_flops("4GFLOPs"), "trials": 9, "max_epochs": 2,
                             "storage_path": str(tmp_path), "name": "run", **kw})


def test_references_are_the_papers_unless_turned_off_or_a_grid(tmp_path):
    refs, notes = reference_designs(settings(tmp_path))
    assert [r.arch.describe() for r in refs] == ["1x62d [3,4,6,3]", "32x4d [3,4,4,3]"] and notes == []
    assert reference_designs(settings(tmp_path, references="none")) == ([], [])
    assert reference_designs(settings(tmp_path, sampler="grid")) == ([], [])


def test_too_few_trials_for_a_sampled_one_beside_the_references_trains_none_and_says_so(tmp_path):
    refs, notes = reference_designs(settings(tmp_path, trials=2))
    assert refs == [] and "--trials 2 leaves no sampled trial beside the 2 reference designs" in notes[-1]
    assert len(reference_designs(settings(tmp_path, trials=3))[0]) == 2


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_the_searcher_asks_the_references_first_and_observes_them(tmp_path, sampler):
    s = settings(tmp_path, sampler=sampler, trials=6)
    space, budget = get_space("resnext-imagenet"), Budget(s.budget_flops, s.tolerance)
    refs, _ = reference_designs(s)
    searcher = make_searcher(s, space, budget, {"seed": 0}, refs)
    rng = random.Random(0)
    configs = []
    for i in range(6):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        # trained to the end: an ASHA-stopped trial would be PRUNED, its value its last reported epoch's
        searcher.on_trial_complete(f"t{i}", {"val_accuracy": rng.random(), "epoch": s.max_epochs})
    assert [c["role"] for c in configs] == ["reference", "reference"] + ["sampled"] * 4
    assert [c.get("reference") for c in configs[:2]] == [r.name for r in refs]
    assert [Architecture.from_dict(c["arch"]) for c in configs[:2]] == [r.arch for r in refs]
    for c in configs[2:]:
        assert budget.contains(complexity(Architecture.from_dict(c["arch"]), space.resolution).flops)
    # the study holds them as ordinary finished trials in the sampler's own encoding: the sampler models them
    study = searcher._ot_study.trials
    assert [t.user_attrs.get("role") for t in study[:2]] == ["reference", "reference"]
    assert study[0].params == pytest.approx(refs[0].params) and all(t.value is not None for t in study)
    assert set(study[0].distributions) == set(study[-1].distributions)


def test_trials_csv_has_the_role_column(tmp_path):
    table = ResultsTable(tmp_path, 224, 2)
    arch = get_space("resnext-imagenet").architecture(1, 62, (3, 4, 6, 3))
    for tid, extra in (("a", {"role": "reference", "reference": "ResNet-50 (1x64d)"}), ("b", {"role": "sampled"}),
                       ("c", {})):  # a grid trial says "grid"; a config without a role is a sampled one
        trial = SimpleNamespace(trial_id=tid, config={"arch": arch.to_dict(), "train": {"seed": 0}, **extra})
        table.on_trial_start(0, [], trial)
    rows = pd.read_csv(tmp_path / "trials.csv", keep_default_na=False)
    assert list(rows["role"]) == ["reference", "sampled", "sampled"]
    assert list(rows["reference"]) == ["ResNet-50 (1x64d)", "", ""]
    assert not any(c.startswith("param_role") or c == "param_reference" for c in rows.columns)


# --- nas.validate ------------------------------------------------------------------------------------------

def run_with_references(path, n_trials=10):
    """A synthetic cifar run whose trials 2 and 5 (in trials.csv order) are marked as reference designs."""
    run_dir = write_fake_run(path, n_trials=n_trials, space="resnext-cifar", failures=False, seed=2, max_epochs=3)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    trials["role"] = ["reference" if i in (2, 5) else "sampled" for i in range(len(trials))]
    trials.to_csv(run_dir / "trials.csv", index=False)
    data = json.loads((run_dir / "search.json").read_text())
    data["settings"] = {**data.get("settings", {}), **json.loads(json.dumps(SearchSettings(
        budget_flops=int(data["budget_flops"]), space="resnext-cifar", dataset="synthetic", train_subset=64,
        val_size=32, max_epochs=1, seed=4).__dict__))}
    data["settings"].pop("location", None)
    (run_dir / "search.json").write_text(json.dumps(data))
    return run_dir, trials


def test_select_with_references_takes_the_top_from_the_sampled_trials(tmp_path):
    run_dir, trials = run_with_references(tmp_path / "run")
    run = load_run(run_dir)
    chosen = select(run, top=2, controls=1, references=True)
    refs = set(trials.loc[trials["role"] == "reference", "trial_id"])
    assert list(chosen["role"]) == ["top", "top", "control", "reference", "reference"]
    # trial 6 (sampled) proposed reference 5's architecture again: it counts as that design, retrained once
    assert set(chosen.loc[chosen["role"] == "reference", "name"]) == set(trials.loc[[2, 5], "name"])
    assert not set(chosen.loc[chosen["role"] != "reference", "arch_id"]) & refs
    plain = select(run, top=2, controls=1)  # without --references: the whole ranking, as before
    assert list(plain["role"]) == ["top", "top", "control"]
    # one proxy fidelity for every chosen trial: the highest epoch all of them reached (finding 4)
    assert chosen["proxy_epochs"].nunique() == 1
    epoch = int(chosen["proxy_epochs"].iloc[0])
    at = run.epochs[run.epochs["epoch"] == epoch].set_index("trial_id")["val_accuracy"]
    assert list(chosen["proxy_accuracy"]) == pytest.approx(list(at.loc[chosen["arch_id"]]))


def test_references_asked_of_a_run_without_them_is_refused(tmp_path):
    run_dir = write_fake_run(tmp_path / "run", n_trials=6, failures=False)
    with pytest.raises(ValidationError) as info:
        select(load_run(run_dir), 2, 0, references=True)
    assert info.value.setting == "references" and "trained no reference designs" in str(info.value)


def test_validation_uses_fresh_seeds_and_held_out_images(tmp_path):
    s = settings(tmp_path, seed=3, seeds=2, dataset="fashion-mnist", train_subset=2000, val_size=1000)
    assert validation_seeds(s, 3) == [5, 6, 7]  # the search trained with seeds 3 and 4
    changes, words = held_out(s)
    assert changes == {"holdout_size": 1000} and "not the search's 1000 validation images" in words
    assert held_out(replace(s, train_subset=None))[0] == {"final": True}  # nothing left over: the test split
    run_dir, _ = run_with_references(tmp_path / "run")
    from nas.orchestration.validation import ValidationSettings

    _, _, chosen, train = plan(run_dir, ValidationSettings(top=2, references=True))
    assert train["holdout_size"] == 32 and train["split_seed"] == 4  # the search's split, its next 32 images
    assert "reference" in set(chosen["role"])


def test_held_out_images_are_disjoint_from_the_search_s(tmp_path):
    """trials' holdout_size: the images after the validation images and the training subset of the same
    seeded order. Labels carry each image's index here, so the three sets can be compared."""
    import torch

    from trials import TrainConfig
    from trials.datasets import Augmentation, Dataset, TensorSplit
    from trials.loop import prepare_data

    n = 400
    split = TensorSplit(torch.zeros(n, 1, 4, 4, dtype=torch.uint8), torch.arange(n))
    ds = Dataset("indexed", split, split, 10, 1, 4, Augmentation())
    search = prepare_data(TrainConfig(dataset="indexed", train_subset=100, val_size=50, seed=1, split_seed=7),
                          torch.device("cpu"), ds)
    held = prepare_data(TrainConfig(dataset="indexed", train_subset=100, val_size=50, holdout_size=60, seed=9,
                                    split_seed=7), torch.device("cpu"), ds)
    train, val, hold = (set(x.labels.tolist()) for x in (search.train, search.eval, held.eval))
    assert held.eval_name == "holdout" and len(hold) == 60 and len(train) == 100 and len(val) == 50
    assert not hold & train and not hold & val
    assert set(held.train.labels.tolist()) == train  # the validation trains on the search's images
    with pytest.raises(ValueError, match="holdout_size: 300 held-out images asked for, but only 250"):
        prepare_data(TrainConfig(dataset="indexed", train_subset=100, val_size=50, holdout_size=300, split_seed=7),
                     torch.device("cpu"), ds)
    with pytest.raises(ValueError, match="holdout_size: needs train_subset"):
        TrainConfig(holdout_size=10)


def test_summary_gives_each_difference_to_the_best_reference_with_an_interval():
    rows = []
    accs = {"top1": ("top", [0.85, 0.86, 0.855]), "top2": ("top", [0.801, 0.812, 0.79]),
            "ref1": ("reference", [0.80, 0.81, 0.805]), "ref2": ("reference", [0.70, 0.71, 0.72]),
            "one": ("control", [0.9])}
    for arch, (role, values) in accs.items():
        rows += [{"arch_id": arch, "role": role, "name": arch, "seed": s, "validated_accuracy": v}
                 for s, v in enumerate(values)]
    out = summary(pd.DataFrame(rows)).set_index("arch_id")
    assert out.loc["ref1", "verdict"] == "the best reference" and np.isnan(out.loc["ref1", "difference"])
    assert out.loc["top1", "difference"] == pytest.approx(0.05) and out.loc["top1", "verdict"] == "ahead"
    assert out.loc["top1", "lo"] > 0
    assert out.loc["top2", "verdict"] == "cannot tell" and out.loc["top2", "lo"] < 0 < out.loc["top2", "hi"]
    assert out.loc["ref2", "verdict"] == "behind" and out.loc["ref2", "hi"] < 0
    assert out.loc["one", "verdict"] == "cannot tell (fewer than 2 seeds)"
    assert out.loc["top1", "std"] == pytest.approx(np.std([0.85, 0.86, 0.855], ddof=1))
