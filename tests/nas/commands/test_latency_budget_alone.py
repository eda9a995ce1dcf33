"""nas.search --latency-budget without --budget: the FLOPs window is the whole space's range, so only the
predicted latency constrains the proposals; neither budget is still one line naming --budget."""

from __future__ import annotations

import json
import zlib

import pytest

from nas import make_settings, search
from nas.orchestration import SearchConfigError, budget_of
from search_spaces import LatencyTable, TableMeta, flops_range, get_space, space_keys

from .test_latency_budget import run


@pytest.fixture
def full_table(tmp_path):
    """A fake latency table (a fake timer: 1..2 ms per part from a hash of its key) of every part of the
    cifar space at 32x32, whatever its FLOPs."""
    keys = space_keys(get_space("resnext-cifar"))
    path = tmp_path / "table.json"
    LatencyTable(TableMeta("cpu: test", 2, 1, "float32", 32, "0"),
                 {k: 1 + (zlib.crc32(k.encode()) % 100) / 100 for k in keys}).save(path)
    return path


def dry_run(*extra):
    return ["--space", "resnext-cifar", "--dataset", "synthetic", "--dry-run", "--references", "none", *extra]


def test_a_latency_budget_alone_proposes_inside_the_latency_window_only(full_table, capsys):
    code, out, err = run(search.main, dry_run("--latency-budget", "30ms", "--latency-table", str(full_table),
                                              "--samples", "20", "--json"), capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 20
    assert all(27 - 1e-9 <= r["latency_ms_predicted"] <= 30 + 1e-9 for r in rows)
    # no FLOPs window narrower than the space: proposals spread over FLOPs beyond any 10% window
    flops = [r["flops_nominal"] for r in rows]
    assert all(r["feasible"] for r in rows) and min(flops) < 0.9 * max(flops)


def test_a_latency_budget_alone_prints_the_human_table(full_table, capsys):
    code, out, err = run(search.main, dry_run("--latency-budget", "30ms", "--latency-table", str(full_table),
                                              "--samples", "3"), capsys)
    assert code == 0, err
    assert "pred. ms" in out and "no FLOPs budget" in out


def test_the_flops_window_without_a_flops_budget_is_the_space_range(full_table):
    settings = make_settings(latency_budget_ms=30.0, latency_table=str(full_table), space="resnext-cifar",
                             dataset="synthetic", name="x")
    budget, (low, high) = budget_of(settings), flops_range(get_space("resnext-cifar"))
    assert (budget.low, budget.high) == (low, high)
    assert settings.tolerance == 0.1  # the latency window keeps its own tolerance


def test_neither_budget_is_one_line_naming_budget(capsys):
    code, out, err = run(search.main, dry_run("--samples", "3"), capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--budget" in err
    with pytest.raises(SearchConfigError, match="budget"):
        make_settings(space="resnext-cifar", dataset="synthetic", name="x")


def test_a_latency_budget_alone_with_the_grid_names_the_latency_flag(full_table, capsys):
    code, _, err = run(search.main, dry_run("--latency-budget", "30ms", "--latency-table", str(full_table),
                                            "--sampler", "grid", "--samples", "3"), capsys)
    assert code == 2 and "--latency-budget" in err and len(err.strip().splitlines()) == 1
