"""User-defined spaces (issue 13): `--space-file SPACE.json`; the built-in spaces are such files, loaded by
the same code. Bad files are rows of tests/nas/commands/test_bad_input.py."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from nas.cli import run_main
from nas.orchestration import SearchSettings
from nas.orchestration.plan import resolve_space, train_resolution
from nas.orchestration.settings import write_search_json
from nas.search import main
from search_spaces import SPACES, Budget, complexity, get_space, load_space, space_to_dict
from search_spaces.spaces import SPACE_FILES, SpaceFileError, space_from_dict

CUSTOM = {
    "format": "resnext-space/1", "name": "tiny-cifar", "stem": "cifar", "resolution": 32,
    "depth_ranges": [[1, 2], [2, 3], [1, 1]], "cardinalities": [2, 8], "width_range": [2, 6],
    "base_widths": [16, 32], "num_classes": 10,
}


def test_builtin_spaces_are_the_shipped_files_with_the_templates_values():
    assert sorted(p.stem for p in SPACE_FILES.glob("*.json")) == sorted(SPACES)
    for name, space in SPACES.items():
        assert load_space(SPACE_FILES / f"{name}.json") == space
        assert space_from_dict(space_to_dict(space), "x") == space  # the dict round-trips
    imagenet, cifar = asdict(SPACES["resnext-imagenet"]), asdict(SPACES["resnext-cifar"])
    assert imagenet == {"name": "resnext-imagenet", "stem": "imagenet", "resolution": 224,
                        "depth_ranges": ((1, 6), (1, 8), (1, 30), (1, 6)), "default_depths": (3, 4, 6, 3),
                        "cardinalities": (1, 2, 4, 8, 16, 32, 64), "width_range": (1, 128), "shared": True,
                        "base_out": 256, "base_widths": (64, 128, 256), "in_channels": 3, "num_classes": 1000,
                        "references": None}  # None: the paper's capacity-matched C=1 and C=32 (references.py)
    assert cifar == {**imagenet, "name": "resnext-cifar", "stem": "cifar", "resolution": 32,
                     "depth_ranges": ((1, 9),) * 3, "default_depths": (3, 3, 3), "num_classes": 10}


def test_optional_fields_take_defaults():
    space = space_from_dict(CUSTOM, "tiny.json")
    assert space.default_depths == (2, 3, 1) and space.base_out == 256 and space.in_channels == 3 and space.shared
    unnamed = space_from_dict({k: v for k, v in CUSTOM.items() if k != "name"}, "dir/my-space.json")
    assert unnamed.name == "my-space"
    with pytest.raises(SpaceFileError, match=r"^tiny.json: depth_ranges\[1\]: min 3 exceeds max 2$"):
        space_from_dict({**CUSTOM, "depth_ranges": [[1, 2], [3, 2], [1, 1]]}, "tiny.json")


def test_search_proposes_only_what_the_space_file_allows(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(CUSTOM))
    space = load_space(path)
    budget = "20MFLOPs"
    assert run_main(main, ["--budget", budget, "--space-file", str(path), "--dataset", "synthetic", "--dry-run",
                           "--json", "--samples", "12", "--storage-path", str(tmp_path / "runs")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 12
    b = Budget(20_000_000, 0.1)
    for row in rows:
        stages = row["arch"]["stages"]
        assert row["arch"]["stem"] == "cifar" and len(stages) == 3 and row["feasible"]
        assert {s["cardinality"] for s in stages} <= {2, 8}
        for i, (stage, (lo, hi)) in enumerate(zip(stages, CUSTOM["depth_ranges"], strict=True)):
            assert lo <= stage["depth"] <= hi
            assert 2 <= stage["group_width"] // 2**i <= 6
            assert stage["out_channels"] // 2**i in (16, 32)
        from search_spaces import Architecture

        assert b.contains(complexity(Architecture.from_dict(row["arch"]), space.resolution).flops)
    assert not (tmp_path / "runs").exists()


def test_unreachable_budget_names_the_spaces_range(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(CUSTOM))
    assert run_main(main, ["--budget", "4GFLOPs", "--space-file", str(path), "--dataset", "synthetic",
                           "--storage-path", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --budget: ") and "FLOPs" in err[0]
    assert "cannot be met by space tiny-cifar" in err[0] and "MFLOPs .. " in err[0]  # the reachable range


def test_search_json_records_the_space_searched(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(CUSTOM))
    s = SearchSettings(budget_flops=20_000_000, space_file=str(path), free=True, dataset="synthetic",
                       storage_path=str(tmp_path), name="run")
    space = resolve_space(s)
    assert space.name == "tiny-cifar-free" and not space.shared and space.cardinalities == (2, 8)
    s.location.check_writable()
    write_search_json(s, space, Budget(20_000_000, 0.1), train_resolution(s))
    info = json.loads((tmp_path / "run" / "search.json").read_text())
    assert info["space"] == "tiny-cifar" and info["settings"]["space_file"] == str(path)
    assert space_from_dict(info["space_definition"], "search.json") == space
    assert get_space("resnext-cifar") == SPACES["resnext-cifar"]
