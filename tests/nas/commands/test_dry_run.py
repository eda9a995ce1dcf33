"""`nas.inspect` and `nas.search --dry-run`, run as a user runs them (subprocesses, no Ray: the `cli`
fixture)."""

import json
from pathlib import Path

import pytest

from search_spaces import complexity, save_architecture, template
from search_spaces.architecture import Architecture
from search_spaces.budget import Budget


def test_inspect_json(tmp_path, cli):
    path = save_architecture(template((3, 4, 6, 3), 32, 4), tmp_path / "x.json")
    out = cli("-m", "nas.inspect", str(path), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    # the project's one vocabulary (as trials.csv and the dry run's --json): at the budget's resolution,
    # nominal; no bare "flops"/"params", whose meaning a reader would have to guess
    assert (data["flops_nominal"], data["params_nominal"]) == (4_230_479_872, 25_028_904)
    assert "flops" not in data and "params" not in data and "flops_trained" not in data
    assert isinstance(data["activations"], int)
    assert [p["name"] for p in data["parts"]] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    table = cli("-m", "nas.inspect", str(path), "--resolution", "32")
    assert "stage4" in table.stdout and "GFLOPs" in table.stdout or "MFLOPs" in table.stdout


def test_inspect_json_at_another_resolution_is_the_trained_cost_beside_the_nominal_one(tmp_path, cli):
    arch = template((3, 4, 6, 3), 32, 4, in_channels=1, num_classes=10)  # an export's arch.json (Fashion-MNIST)
    path = save_architecture(arch, tmp_path / "arch.json")
    data = json.loads(cli("-m", "nas.inspect", str(path), "--resolution", "28", "--json").stdout)
    assert (data["flops_trained"], data["params_trained"]) == (complexity(arch, 28).flops, complexity(arch, 28).params)
    assert (data["flops_nominal"], data["nominal_resolution"]) == (complexity(arch, 224).flops, 224)
    assert data["resolution"] == 28
    assert data["parts"][0]["out_resolution"] == complexity(arch, 28).parts[0].out_resolution


def test_inspect_bad_file_is_one_line(tmp_path, cli):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "resnext-arch/1", "stem": "cifar", "in_channels": 3, "num_classes": 10, "stages": []}')
    out = cli("-m", "nas.inspect", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "stages" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("space,budget", [("resnext-imagenet", "4GFLOPs"), ("resnext-cifar", "2GFLOPs")])
def test_dry_run_proposes_feasible_architectures(space, budget, cli):
    out = cli("-m", "nas.search", "--budget", budget, "--space", space, "--dry-run", "--samples", "12", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["role"] for r in rows] == ["reference"] * 2 + ["sampled"] * 12  # the references come first
    b = Budget.parse(budget)
    for row in rows:
        arch = Architecture.from_dict(row["arch"])
        resolution = 224 if space == "resnext-imagenet" else 32
        # the project's one name for the architecture the budget counts (trials.csv, Optuna, MLflow too)
        assert row["flops_nominal"] == complexity(arch, resolution).flops and b.contains(row["flops_nominal"])
        assert row["params_nominal"] == complexity(arch, resolution).params


def test_default_dry_run_lists_the_reference_designs_first(cli):
    """The paper's capacity-matched pair at 4 GFLOPs, each moved to its nearest feasible variant (1x63d and
    32x4d at depths 3,4,6,3 cost more than the budget), listed before the sampler's proposals and
    explained on stderr; --references none leaves them out."""
    out = cli("-m", "nas.search", "--budget", "4GFLOPs", "--dry-run", "--samples", "3")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line[:3].strip() in ("R1", "R2", "1", "2", "3")]
    assert [r[0] for r in rows] == ["R1", "R2", "1", "2", "3"]
    assert rows[0][1:3] == ["1x62d", "[3,4,6,3]"] and rows[1][1:3] == ["32x4d", "[3,4,4,3]"]
    assert "reference: ResNeXt-50 (32x4d)" in out.stdout
    assert "nearest feasible variant 32x4d [3,4,4,3]" in out.stderr and "+5.76% of the budget" in out.stderr
    off = cli("-m", "nas.search", "--budget", "4GFLOPs", "--dry-run", "--samples", "3", "--references", "none")
    assert "reference" not in off.stdout + off.stderr
    # the sampler's own proposals are the same with and without the references before them
    assert [line.split()[1] for line in off.stdout.splitlines()[-3:]] == [r[1] for r in rows[2:]]


def test_dry_run_grid_prints_the_papers_sweep(cli):
    out = cli("-m", "nas.search", "--budget", "4.089184256GFLOPs", "--dry-run", "--sampler", "grid",
              "--cardinality", "1,2,4,8,32", "--match", "params", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["arch"]["stages"][0]["cardinality"], r["arch"]["stages"][0]["group_width"]) for r in rows] == [
        (1, 64), (2, 40), (4, 24), (8, 14), (32, 4)]


def test_unreachable_budget_is_one_line_with_the_range(cli):
    out = cli("-m", "nas.search", "--budget", "1MFLOPs", "--dry-run")
    assert out.returncode == 2
    assert "cannot be met" in out.stderr and "FLOPs .." in out.stderr
    assert out.stderr.strip().count("\n") == 0


# --- unchanged behaviour: the dry run's output, byte for byte -------------------------------------------------
# dry_run_golden/ holds what `python -m nas.search ... --dry-run` printed at a86484f, before the search's flow
# moved into one driver (nas.orchestration.run_search): stdout, stderr and the exit code of each `index` line;
# since then only the "memory per trial (estimate)" line was added, and --json's "flops"/"params" keys are
# "flops_nominal"/"params_nominal" (regenerated deliberately, those changes alone).
GOLDEN = Path(__file__).with_name("dry_run_golden")


def _golden_cases() -> list[tuple[int, int, list[str]]]:
    lines = GOLDEN.joinpath("index").read_text().splitlines()
    return [(i, int(line.split(" ", 1)[0]), line.split(" ", 1)[1].split()) for i, line in enumerate(lines, 1)]


@pytest.mark.parametrize("number,code,argv", _golden_cases(),
                         ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_dry_run_output_is_unchanged(number, code, argv, capsys):
    from nas.cli import run_main
    from nas.search import main

    assert run_main(main, argv) == code
    out, err = capsys.readouterr()
    assert out == GOLDEN.joinpath(f"{number}.out").read_text()
    assert err == GOLDEN.joinpath(f"{number}.err").read_text()
