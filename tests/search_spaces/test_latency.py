"""The latency table: what an architecture is made of, the table's file, resumable measuring, prediction."""

import json
import pickle
import zlib

import numpy as np
import pytest
import torch

from search_spaces import Budget, BudgetError, FeasibleSampler, build_model, complexity, get_space, template
from search_spaces.latency import (
    LatencyError,
    LatencyTable,
    TableMeta,
    architecture_keys,
    latency_cost,
    load_table,
    measure_table,
    open_table,
    part_module,
    space_keys,
    time_module,
)
from search_spaces.sampling import feasible_widths, propose_many

META = TableMeta("cpu: test", 1, 1, "float32", 32, "0")


def fake_ms(key: str) -> float:
    """A deterministic 'timer': the number of characters of the key."""
    return float(len(key))


def test_architecture_keys_follow_the_model():
    arch = template([2, 1, 1], 2, 4, num_classes=10)  # cifar stem, 32x32
    keys = architecture_keys(arch, 32)
    assert keys == [
        "stem:cifar,3,32",
        "block:64,256,2,4,1,32", "block:256,256,2,4,1,32",  # stage 1: projection, then identity
        "block:256,512,2,8,2,32",  # stage 2 downsamples: its input is 32x32
        "block:512,1024,2,16,2,16",
        "head:1024,8,10",
    ]
    # every block key builds model.py's block with the model's own shapes
    model = build_model(arch)
    blocks = [b for i in range(3) for b in getattr(model, f"layer{i + 1}")]
    for key, block in zip(keys[1:-1], blocks, strict=True):
        module, (c_in, hw, _) = part_module(key)
        assert [p.shape for p in module.parameters()] == [p.shape for p in block.parameters()]


def test_parts_add_up_to_the_model():
    """stem, blocks and head run in sequence compute exactly what build_model's forward computes."""
    arch = template([1, 2, 1], 4, 2, num_classes=10)
    torch.manual_seed(0)
    model = build_model(arch).eval()
    x = torch.randn(2, 3, 16, 16)
    parts = [model.conv1, model.bn1, model.relu, model.maxpool, *model.layer1, *model.layer2, *model.layer3,
             model.avgpool, torch.nn.Flatten(1), model.fc]
    out = x
    with torch.no_grad():
        for p in parts:
            out = p(out)
        assert torch.allclose(out, model(x))
    for key in architecture_keys(arch, 16):
        module, shape = part_module(key)
        with torch.no_grad():
            module.eval()(torch.randn(1, *shape))  # each part runs on its key's input shape


def test_space_keys_cover_every_sampled_architecture():
    space = get_space("resnext-cifar").with_resolution(16)
    budget = Budget.parse("60MFLOPs")
    keys = set(space_keys(space, feasible_widths(space, budget)))
    assert len(keys) < len(space_keys(space))  # the budget leaves out what no feasible architecture uses
    for arch in propose_many(space, budget, 30, "random", seed=3):
        assert set(architecture_keys(arch, 16)) <= keys


def test_free_space_keys_cover_sampled_architectures():
    space = get_space("resnext-cifar", shared=False).with_resolution(16)
    budget = Budget.parse("60MFLOPs")
    keys = set(space_keys(space, feasible_widths(space, budget)))
    for arch in propose_many(space, budget, 20, "random", seed=4):
        assert set(architecture_keys(arch, 16)) <= keys


def test_predict_is_the_sum_of_parts_and_names_what_is_missing():
    arch = template([2, 1, 1], 2, 4, num_classes=10)
    keys = architecture_keys(arch, 32)
    table = LatencyTable(META, {k: fake_ms(k) for k in keys})
    assert table.predict(arch) == sum(len(k) for k in keys)
    del table.entries[keys[2]]
    with pytest.raises(LatencyError, match="no entry for 1 part.*nas.profile"):
        table.predict(arch)


def test_measuring_is_resumable(tmp_path):
    """An interrupted profile keeps what it measured; a rerun measures only the rest."""
    path = tmp_path / "t.json"
    keys = ["stem:cifar,3,32", "block:64,256,1,4,1,32", "block:256,256,1,4,1,32", "head:256,32,10"]
    table, _ = open_table(META, path)
    progress = measure_table(table, path, keys, timer=fake_ms, save_every_s=0.0)
    first = next(progress)
    assert (first.done, first.total) == (1, 4)
    progress.close()  # what Ctrl-C does to the loop: the generator's finally saves the table
    saved = load_table(path)
    assert len(saved.entries) == 1 and saved.meta == META
    measured = []
    table, _ = open_table(META, path)
    for _ in measure_table(table, path, keys, timer=lambda k: measured.append(k) or fake_ms(k)):
        pass
    assert len(measured) == 3 and first.key not in measured
    assert load_table(path).entries == {k: fake_ms(k) for k in keys}


def test_a_table_for_other_settings_is_refused(tmp_path):
    path = tmp_path / "t.json"
    LatencyTable(META, {"stem:cifar,3,32": 1.0}).save(path)
    other = TableMeta("cpu: test", 2, 1, "float32", 32, "0")
    with pytest.raises(LatencyError, match="holds times for"):
        open_table(other, path)


@pytest.mark.parametrize("content", ["", "[]", '{"format": "resnext-latency/1"}', '{"format": "x"}'])
def test_bad_table_files(tmp_path, content):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(LatencyError, match=str(path)):
        load_table(path)


def test_cache_file_name_holds_the_meta(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_LATENCY_CACHE", str(tmp_path))
    table, path = open_table(META)
    assert path.parent == tmp_path and "t1-b1-float32-r32" in path.name
    table.entries["stem:cifar,3,32"] = 1.0
    table.save(path)
    assert json.loads(path.read_text())["threads"] == 1


def test_time_module_is_the_median_of_timed_calls():
    ticks = iter([0.0, 0.010, 1.0, 1.030, 2.0, 2.020])  # three calls: 10, 30, 20 ms
    calls = []
    ms = time_module(lambda x: calls.append(x), torch.zeros(1), warmup=2, repeats=3, clock=lambda: next(ticks))
    assert ms == pytest.approx(20.0) and len(calls) == 5


# --- a latency budget in the feasible sampler ------------------------------------------------------------


def _space_and_table():
    """The cifar space at 16x16 and a fake table whose times are not monotonic in d (as real ones are not)."""
    space, budget = get_space("resnext-cifar").with_resolution(16), Budget.parse("60MFLOPs")
    keys = space_keys(space, feasible_widths(space, budget))
    meta = TableMeta("cpu: test", 1, 1, "float32", 16, "0")
    return space, budget, LatencyTable(meta, {k: (zlib.crc32(k.encode()) % 1000) / 100 for k in keys})


def test_latency_window_sampling_is_exact_for_both_costs():
    space, budget, table = _space_and_table()
    free = [table.predict(a) for a in propose_many(space, budget, 100, "random", seed=0)]
    lo, hi = np.percentile(free, [40, 60])
    assert any(not lo <= ms <= hi for ms in free)  # the FLOPs window alone does not keep to the latency window
    cost = latency_cost(table, space, lo, hi)
    for sampler in ("tpe", "random"):
        archs = propose_many(space, budget, 40, sampler, seed=1, cost=cost)
        assert all(cost.contains(table.predict(a)) for a in archs)
        assert all(budget.contains(complexity(a, 16).flops) for a in archs)  # FLOPs stay exact
        assert len(set(archs)) > 20
        assert all(cost.of(a, space) == pytest.approx(table.predict(a)) for a in archs)


def test_latency_window_encodes_and_pickles():
    space, budget, table = _space_and_table()
    cost = latency_cost(table, space, 30.0, 50.0)
    archs = propose_many(space, budget, 10, "random", seed=2, cost=cost)
    for width_first in (True, False):
        sampler = FeasibleSampler(space, budget, cost=cost, width_first=width_first)
        assert all(sampler.decode(sampler.encode(a)) == a for a in archs)
    copy = pickle.loads(pickle.dumps(FeasibleSampler(space, budget, cost=cost)))
    assert copy.decode(FeasibleSampler(space, budget, cost=cost).encode(archs[0])) == archs[0]


def test_parts_the_table_lacks_are_never_proposed():
    space, budget, table = _space_and_table()
    arch = propose_many(space, budget, 1, "random", seed=3)[0]
    lacking = architecture_keys(arch, 16)[2]
    del table.entries[lacking]
    cost = latency_cost(table, space, 0.0, 1e9)
    assert all(lacking not in architecture_keys(a, 16)
               for a in propose_many(space, budget, 60, "random", seed=4, cost=cost))


def test_an_unreachable_latency_window_names_it():
    space, budget, table = _space_and_table()
    with pytest.raises(BudgetError, match="latency window 0.001 .. 0.002 ms"):
        FeasibleSampler(space, budget, cost=latency_cost(table, space, 0.001, 0.002))
    with pytest.raises(BudgetError, match="shared"):
        FeasibleSampler(get_space("resnext-cifar", shared=False).with_resolution(16), budget,
                        cost=latency_cost(table, space, 0.0, 1e9))
