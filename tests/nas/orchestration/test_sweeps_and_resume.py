"""Sweeps that finish (grid without ASHA, points outside the budget named), ASHA rungs that survive a
resume, best.json ranked from the files on disk, and the split seed fixed across trial seeds.

No Ray instance is started: the scheduler and the results table are driven directly, as Tune drives them.
"""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from nas import search as search_cmd
from nas.orchestration import SearchSettings, apply_preset, scheduler_of
from nas.orchestration.driver import finish
from nas.orchestration.plan import train_config
from nas.orchestration.tuner import make_scheduler
from search_spaces import get_space, template
from search_spaces.budget import parse_flops


def grid(**kw) -> SearchSettings:
    base = dict(budget_flops=parse_flops("4.089184256GFLOPs"), sampler="grid", max_epochs=9, grace_epochs=1,
                reduction_factor=3, name="g")
    base.update(kw)
    return SearchSettings(**base)


# --- finding 4: the sweep trains every point equally unless a scheduler is asked for ------------------

def test_grid_runs_without_a_scheduler_unless_one_is_asked_for(tmp_path):
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler

    s = grid(storage_path=str(tmp_path))
    assert scheduler_of(s) == "none"
    sched = make_scheduler(s)
    assert isinstance(sched, FIFOScheduler) and not isinstance(sched, AsyncHyperBandScheduler)
    assert apply_preset(s, has_gpu=True, full=False)[0].scheduler == "none"  # what search.json records
    assert isinstance(make_scheduler(grid(storage_path=str(tmp_path), scheduler="asha")), AsyncHyperBandScheduler)
    tpe = SearchSettings(budget_flops=parse_flops("4GFLOPs"), storage_path=str(tmp_path), name="t", max_epochs=12,
                         grace_epochs=1, reduction_factor=3)
    assert scheduler_of(tpe) == "asha" and isinstance(make_scheduler(tpe), AsyncHyperBandScheduler)


def test_dry_run_names_sweep_points_outside_the_budget_and_the_explicit_asha(capsys):
    # Table 2 at 4 GFLOPs: 1x63d lies 0.1% above the budget, 4x, 8x and 32x (matched on parameters)
    # 4-7% above it; 2x40d lies inside.
    assert search_cmd.main(["--budget", "4GFLOPs", "--sampler", "grid", "--dry-run"]) == 0
    err = capsys.readouterr().err
    outside = [line.split()[3] for line in err.splitlines() if line.startswith("note: sweep point")]
    assert outside == ["1x63d", "4x24d", "8x14d", "32x4d"], err
    assert "outside the feasible" in err and "closest to 1x63d" in err
    assert "--scheduler asha" not in err
    assert search_cmd.main(["--budget", "4GFLOPs", "--sampler", "grid", "--scheduler", "asha", "--dry-run"]) == 0
    assert "--scheduler asha with the grid sweep" in capsys.readouterr().err


def test_an_unknown_scheduler_is_refused_by_name(tmp_path):
    from nas.orchestration import SearchConfigError, check_settings

    with pytest.raises(SearchConfigError) as exc:
        check_settings(grid(storage_path=str(tmp_path), scheduler="hyperband", dataset="synthetic"))
    assert exc.value.setting == "scheduler"


# --- finding 20: trial seeds vary initialisation and order, not the validation images -------------------

def test_trial_seeds_share_the_validation_split_but_not_the_initialisation():
    from trials.datasets import load_synthetic
    from trials.loop import TrainConfig, prepare_data, train

    data = load_synthetic(n_train=320, n_test=64, resolution=16)
    settings = grid(dataset="synthetic", seed=5, seeds=2, storage_path="/tmp", name="x")
    base = train_config(settings, get_space("resnext-cifar"))
    assert base["split_seed"] == 5
    configs = [TrainConfig.from_dict({**base, "seed": seed, "epochs": 1, "val_size": 64, "train_subset": 128,
                                      "batch_size": 32, "device": "cpu", "threads": 1}) for seed in (5, 6)]
    splits = [prepare_data(c, torch.device("cpu"), data) for c in configs]
    assert torch.equal(splits[0].eval.images, splits[1].eval.images)
    assert torch.equal(splits[0].train.images, splits[1].train.images)  # the same training subset
    tiny = template((1, 1, 1), 2, 4, in_channels=3, num_classes=10, base_out=32)
    results = [train(tiny, c, dataset=data) for c in configs]
    assert results[0]["train_loss"] != results[1]["train_loss"]  # init and data order follow the trial seed
    # the resolved recipe is reported, for trials.csv's lr and batch_size (finding 21)
    assert (results[0]["peak_lr"], results[0]["batch_size"]) == (TrainConfig().lr, 32)


def test_trials_csv_records_the_resolved_lr_and_batch_size(tmp_path):
    from nas.orchestration.callbacks import ResultsTable

    table = ResultsTable(tmp_path, 224, 1)
    trial = _trial("t1", 2, 4, 0.5)  # its config sets neither lr nor batch_size
    trial.last_result.update(peak_lr=0.2, batch_size=32, lr=1e-6)  # lr: the last step's scheduled rate
    table.on_trial_result(0, [], trial, trial.last_result)
    row = pd.read_csv(tmp_path / "trials.csv").iloc[0]
    assert (row["lr"], row["batch_size"]) == (0.2, 32)


# --- finding 16: ASHA's rungs after a resume -------------------------------------------------------------

def _epochs_csv(run_dir, rows):
    run_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["trial_id", "epoch", "val_accuracy"]).to_csv(run_dir / "epochs.csv", index=False)


def asha(run_dir):
    return make_scheduler(SearchSettings(budget_flops=parse_flops("4GFLOPs"), max_epochs=9, grace_epochs=1,
                                         reduction_factor=3, storage_path=str(run_dir.parent), name=run_dir.name))


def test_rungs_are_prefilled_from_epochs_csv(tmp_path):
    run_dir = tmp_path / "run"
    # a: 3 epochs (rungs 1 and 3), b: 1 epoch, c: stopped at 1, d: an epoch-2 only record (no rung)
    _epochs_csv(run_dir, [("a", 1, 0.50), ("a", 2, 0.60), ("a", 3, 0.70), ("b", 1, 0.40), ("c", 1, 0.30)])
    sched = asha(run_dir)
    assert sched.prefill(run_dir / "epochs.csv") == 4
    rungs = dict(sched._brackets[0]._rungs)
    assert rungs[1] == {"a": 0.50, "b": 0.40, "c": 0.30} and rungs[3] == {"a": 0.70} and rungs[9] == {}


def test_after_a_resume_a_trial_below_the_recorded_cutoff_is_stopped(tmp_path):
    from ray.tune.schedulers import TrialScheduler

    run_dir = tmp_path / "run"
    sched = asha(run_dir)  # pickled into tuner.pkl when the search starts: empty rungs
    pickled = pickle.dumps(sched)
    _epochs_csv(run_dir, [(f"t{i}", 1, acc) for i, acc in enumerate((0.80, 0.70, 0.60, 0.50, 0.40, 0.30))])
    restored = pickle.loads(pickled)  # what Tuner.restore hands back
    new = SimpleNamespace(trial_id="new")
    restored.on_trial_add(None, new)
    # the recorded epoch-1 cutoff is the 2/3 quantile of 0.3..0.8 (~0.63): 0.55 lies below it
    assert restored.on_trial_result(None, new, {"training_iteration": 1, "val_accuracy": 0.55}) == TrialScheduler.STOP
    # a trial recorded at epoch 1 before the kill, resumed and reporting epoch 2, is not recorded again
    old = SimpleNamespace(trial_id="t5")
    restored.on_trial_add(None, old)
    restored.on_trial_result(None, old, {"training_iteration": 2, "val_accuracy": 0.99})
    assert dict(restored._brackets[0]._rungs)[1]["t5"] == 0.30
    # without the recorded rungs (plain ASHA), the same trial would have gone on
    plain = pickle.loads(pickled)
    plain._prefill_pending = False
    plain.on_trial_add(None, new)
    assert plain.on_trial_result(None, new, {"training_iteration": 1, "val_accuracy": 0.55}) == TrialScheduler.CONTINUE


# --- finding 3: best.json and the summary come from the files on disk -----------------------------------

def _trial(trial_id, cardinality, width, accuracy):
    arch = template((1, 1, 1, 1), cardinality, width)
    return SimpleNamespace(trial_id=trial_id, config={"arch": arch.to_dict(), "train": {"seed": 0}}, checkpoint=None,
                           last_result={"epoch": 1, "val_accuracy": accuracy})


def test_finish_ranks_the_trials_on_disk_not_a_stale_table(tmp_path):
    from nas.orchestration.callbacks import ResultsTable

    s = SearchSettings(budget_flops=parse_flops("500MFLOPs"), max_epochs=1, storage_path=str(tmp_path), name="r")
    first = ResultsTable(s.run_dir, 224, 1)  # the first driver's callback, killed after t1
    t1 = _trial("t1", 2, 4, 0.5)
    first.on_trial_result(0, [], t1, t1.last_result)
    first.on_trial_complete(0, [], t1)
    stale = ResultsTable(s.run_dir, 224, 1)  # what build_tuner(resume=True) returns: never registered
    restored = pickle.loads(pickle.dumps(first))  # the callback Tuner.restore runs
    t2 = _trial("t2", 32, 1, 0.9)
    restored.on_trial_result(0, [], t2, t2.last_result)
    restored.on_trial_complete(0, [], t2)
    assert len(stale.frame()) == 1
    summary = finish(s, log=lambda *_: None)
    assert summary["trials"] == 2 and summary["best_trial"] == "t2"
    assert json.loads((s.run_dir / "best.json").read_text())["stages"][0]["cardinality"] == 32
