"""The Python API (nas.search / nas.analyze / nas.export): README's example, run as written, and the
settings' validation (SettingError naming the field, nothing written)."""

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
])
def test_bad_settings_raise_setting_errors_naming_the_field_and_write_nothing(tmp_path, kwargs, setting):
    with pytest.raises(SettingError) as info:
        nas.search(storage_path=str(tmp_path), name="x", **kwargs)
    assert info.value.setting == setting, str(info.value)
    assert not any(tmp_path.iterdir())


def test_the_api_functions_stay_callable_after_the_command_modules_are_imported():
    import nas.analyze
    import nas.export
    import nas.search

    assert callable(nas.search) and callable(nas.analyze) and callable(nas.export)
    assert nas.search.main  # the command module, which calls the API function
    with pytest.raises(SettingError):
        nas.search(budget="4 apples")
