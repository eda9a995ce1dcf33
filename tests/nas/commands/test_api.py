"""The Python API (nas.run_search / nas.write_report / nas.export_top): README's example, run as written,
and the settings' validation (SettingError naming the field, nothing written, before Ray starts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import nas
from nas.errors import SettingError

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_example() -> str:
    """The first python block of README's "Python API" section (so the docs cannot rot)."""
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs_a_search_and_returns_its_result(tmp_path, monkeypatch, ray_instance):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), str(README), "exec"), namespace)  # noqa: S102 - our own README
    result = namespace["result"]
    run_dir = tmp_path / "nas_runs" / "api-example"
    assert result.run_dir == run_dir and len(result.trials) == 2
    assert set(result.trials["outcome"]) == {"completed"}
    best = result.trials.sort_values("best_val_accuracy", ascending=False).iloc[0]
    assert result.best.describe() == best["name"] and result.summary["best_trial"] == best["trial_id"]
    assert namespace["report"] == run_dir / "report.html" and namespace["report"].stat().st_size > 100_000
    assert namespace["exported"][0].is_file() and namespace["exported"][0].name == "arch.json"
    assert (run_dir / "optuna.journal").is_file()  # the default Optuna storage, as for the command


@pytest.mark.parametrize("kwargs,setting", [
    ({"budget": "4 apples"}, "budget_flops"),
    ({"budget": "1MFLOPs"}, "budget_flops"),  # unreachable: the error gives the space's range
    ({"budget": "4GFLOPs", "epochs": 3}, "epochs"),  # not a setting
    ({"budget": "4GFLOPs", "dataset": "mnist-3d"}, "dataset"),
    ({"budget": "4GFLOPs", "log": ["wandb"]}, "log"),
    ({"dataset": "synthetic"}, "budget_flops"),
    # What the command's flag types refuse, the API refuses too (one table: SearchSettings' ACCEPTS)
    ({"budget": "4GFLOPs", "lr": -1}, "lr"),
    ({"budget": "4GFLOPs", "batch_size": 0}, "batch_size"),
    ({"budget": "4GFLOPs", "trials": -3}, "trials"),
    ({"budget": "4GFLOPs", "max_epochs": -2}, "max_epochs"),
    ({"budget": "4GFLOPs", "seeds": 0}, "seeds"),
    ({"budget": "4GFLOPs", "max_failures": -1}, "max_failures"),
    ({"budget": "4GFLOPs", "train_subset": 0}, "train_subset"),
    ({"budget": "4GFLOPs", "keep_checkpoints": -1}, "keep_checkpoints"),
    ({"budget": "4GFLOPs", "sampler": "bogus"}, "sampler"),
    ({"budget": "4GFLOPs", "references": "resnet"}, "references"),
    ({"budget": "4GFLOPs", "cpus_per_trial": -1}, "cpus_per_trial"),
    ({"budget": "4GFLOPs", "tolerance": 1.5}, "tolerance"),
    ({"budget": "4GFLOPs", "lr": float("nan")}, "lr"),
    ({"budget": "4GFLOPs", "trials": 2.5}, "trials"),
    ({"budget": "4GFLOPs", "gpus_per_trial": 2}, "gpus_per_trial"),
    ({"budget": "4GFLOPs", "time_budget_s": 0.5}, "time_budget_s"),
    ({"budget": "4GFLOPs", "cardinality": [0, 4]}, "cardinality"),
    ({"budget": "4GFLOPs", "name": "a/b"}, "name"),
    ({"budget": "4GFLOPs", "sampler": "cmaes", "objective": "accuracy,flops"}, "sampler"),
    ({"budget": "4GFLOPs", "sampler": "grid", "objective": "accuracy,flops"}, "objective"),
])
def test_bad_settings_raise_setting_errors_naming_the_field_and_write_nothing(tmp_path, kwargs, setting,
                                                                            monkeypatch):
    import nas.orchestration.driver as driver

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for a setting that should have been refused")

    monkeypatch.setattr(driver, "start_ray", no_ray)
    kwargs = {"name": "x", **kwargs}
    with pytest.raises(SettingError) as info:
        nas.run_search(storage_path=str(tmp_path), **kwargs)
    assert info.value.setting == setting, str(info.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flag,value,setting", [
    ("--lr", "-1", "lr"), ("--batch-size", "0", "batch_size"), ("--trials", "-3", "trials"),
    ("--keep-checkpoints", "-1", "keep_checkpoints"), ("--tolerance", "1.5", "tolerance"),
    ("--gpus-per-trial", "2", "gpus_per_trial"), ("--max-failures", "-1", "max_failures"),
])
def test_the_command_and_the_api_give_the_same_reason(tmp_path, capsys, flag, value, setting):
    from nas.cli import run_main
    from nas.search import main

    with pytest.raises(SystemExit) as exit_:  # argparse's one-line error
        run_main(main, ["--budget", "4GFLOPs", "--storage-path", str(tmp_path), f"{flag}={value}"])
    assert exit_.value.code == 2
    command = capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(SettingError) as info:
        nas.run_search(budget="4GFLOPs", storage_path=str(tmp_path), **{setting: float(value)})
    reason = str(info.value).split(": ", 1)[1]  # "lr: expected a positive number, got -1.0"
    assert reason.split(", got")[0] in command, (command, str(info.value))


def test_api_verbs_are_plain_functions_beside_the_command_modules():
    import inspect

    import nas.analyze
    import nas.export
    import nas.search

    assert inspect.isfunction(nas.run_search) and inspect.isfunction(nas.write_report)
    assert inspect.isfunction(nas.export_top)
    assert "budget" in inspect.signature(nas.run_search).parameters
    assert inspect.ismodule(nas.search) and nas.search.main  # the command stays a module
    with pytest.raises(SettingError):
        nas.run_search(budget="4 apples")
