"""nas.search --latency-budget (dry run: proposals inside both windows, bad values one line, exit 2 before
Ray) and nas.inspect's predicted and measured latency."""

from __future__ import annotations

import json
import zlib

import pytest

from nas import inspect, search
from nas.cli import run_main
from search_spaces import (
    Architecture,
    Budget,
    LatencyTable,
    TableMeta,
    feasible_widths,
    get_space,
    load_table,
    propose_many,
    save_architecture,
    space_keys,
)

BUDGET = "20MFLOPs"


@pytest.fixture
def table(tmp_path):
    """A fake latency table of the cifar space at 32x32 covering every architecture feasible at 20 MFLOPs."""
    space = get_space("resnext-cifar")
    keys = space_keys(space, feasible_widths(space, Budget.parse(BUDGET)))
    path = tmp_path / "table.json"
    LatencyTable(TableMeta("cpu: test", 2, 1, "float32", 32, "0"),
                 {k: 1 + (zlib.crc32(k.encode()) % 100) / 100 for k in keys}).save(path)
    return path


def run(main, argv, capsys):
    try:
        code = run_main(main, argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def dry_run(*extra):
    return ["--space", "resnext-cifar", "--budget", BUDGET, "--dataset", "synthetic", "--dry-run", *extra]


def test_dry_run_proposes_only_inside_the_latency_window(table, capsys):
    code, out, err = run(search.main, dry_run("--latency-budget", "14ms", "--latency-table", str(table),
                                              "--samples", "12", "--json", "--references", "none"), capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 12
    assert all(12.6 - 1e-9 <= r["latency_ms_predicted"] <= 14 + 1e-9 for r in rows)
    assert all(r["feasible"] for r in rows)
    # without the latency budget, the same search proposes outside that window
    code, out, _ = run(search.main, dry_run("--samples", "30", "--json", "--references", "none"), capsys)
    predicted = [load_table(table).predict(Architecture.from_dict(json.loads(line)["arch"]))
                 for line in out.splitlines()]
    assert code == 0 and len(predicted) == 30 and any(not 12.6 <= ms <= 14 for ms in predicted)


def test_dry_run_table_has_a_predicted_latency_column(table, capsys):
    code, out, err = run(search.main, dry_run("--latency-budget", "14ms", "--latency-table", str(table),
                                              "--samples", "3"), capsys)
    assert code == 0, err
    assert "pred. ms" in out


@pytest.mark.parametrize("value,expect", [
    ("-3ms", "cannot read latency"), ("20parsecs", "cannot read latency"), ("0ms", "positive"),
    ("1ms", "the architectures in the FLOPs window take"),
])
def test_bad_latency_budgets_are_one_line(value, expect, table, tmp_path, capsys):
    before = sorted(tmp_path.rglob("*"))
    code, out, err = run(search.main, dry_run(f"--latency-budget={value}", "--latency-table", str(table)), capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--latency-budget" in err and expect in err
    assert sorted(tmp_path.rglob("*")) == before


def test_a_missing_table_names_the_flag_and_the_command_that_builds_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NAS_LATENCY_CACHE", str(tmp_path / "cache"))
    code, _, err = run(search.main, dry_run("--latency-budget", "14ms"), capsys)
    assert code == 2 and "--latency-budget" in err and "nas.profile" in err
    code, _, err = run(search.main, dry_run("--latency-budget", "14ms", "--latency-table", str(tmp_path)), capsys)
    assert code == 2 and "--latency-table" in err


def test_inspect_predicts_and_measures(table, tmp_path, capsys):
    arch = propose_many(get_space("resnext-cifar"), Budget.parse(BUDGET), 1, "random")[0]
    path = save_architecture(arch, tmp_path / "a.json")
    code, out, err = run(inspect.main, [str(path), "--latency-table", str(table), "--json", "--measure",
                                        "--threads", "1"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["latency_ms_predicted"] == pytest.approx(load_table(table).predict(arch), abs=1e-3)
    assert data["latency_ms_measured"] > 0
    code, out, _ = run(inspect.main, [str(path), "--latency-table", str(table)], capsys)
    assert "predicted:" in out and "measured" not in out


@pytest.mark.parametrize("kwargs", [{"latency_budget_ms": -3}, {"latency_budget_ms": float("nan")},
                                    {"latency_budget_ms": 1.0}])
def test_the_api_refuses_a_bad_latency_budget_before_ray(kwargs, table, tmp_path, monkeypatch):
    import nas
    import nas.orchestration.driver as driver
    from nas.errors import SettingError

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for a setting that should have been refused")

    monkeypatch.setattr(driver, "start_ray", no_ray)
    with pytest.raises(SettingError) as info:
        nas.run_search(storage_path=str(tmp_path / "runs"), name="x", budget=BUDGET, space="resnext-cifar",
                       dataset="synthetic", latency_table=str(table), **kwargs)
    assert info.value.setting == "latency_budget_ms", str(info.value)
    assert not (tmp_path / "runs").exists()
