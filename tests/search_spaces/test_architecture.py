import json

import pytest

from search_spaces import Architecture, ArchitectureError, load_architecture, save_architecture, template


def valid() -> dict:
    return template((3, 4, 6, 3), 32, 4).to_dict()


def test_json_round_trip(tmp_path):
    arch = template((3, 4, 6, 3), 32, 4)
    path = save_architecture(arch, tmp_path / "a.json")
    assert json.loads(path.read_text())["format"] == "resnext-arch/1"
    assert load_architecture(path) == arch


def test_template_follows_the_paper():
    arch = template((3, 4, 6, 3), 32, 4)
    assert [s.group_width for s in arch.stages] == [4, 8, 16, 32]
    assert [s.out_channels for s in arch.stages] == [256, 512, 1024, 2048]
    assert arch.stem == "imagenet" and template((3, 3, 3), 8, 64).stem == "cifar"
    assert arch.describe() == "32x4d [3,4,6,3]"


def _set(data, path, value):
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize("path,value,field", [
    (("format",), "resnext-arch/2", "format"),
    (("stem",), "vgg", "stem"),
    (("stem",), _DELETE, "stem"),
    (("in_channels",), 0, "in_channels"),
    (("in_channels",), "3", "in_channels"),
    (("num_classes",), -1, "num_classes"),
    (("num_classes",), True, "num_classes"),
    (("stages",), [], "stages"),
    (("stages",), "x", "stages"),
    (("stages", 0, "cardinality"), 0, "stages[0].cardinality"),
    (("stages", 1, "depth"), -2, "stages[1].depth"),
    (("stages", 2, "group_width"), 4.5, "stages[2].group_width"),
    (("stages", 3, "out_channels"), _DELETE, "stages[3].out_channels"),
    (("stages", 0, "kernel"), 5, "stages[0].kernel"),
    (("extra",), 1, "extra"),
])
def test_bad_fields_are_named(path, value, field):
    data = valid()
    _set(data, path, value)
    with pytest.raises(ArchitectureError) as err:
        Architecture.from_dict(data)
    assert str(err.value).startswith(field), str(err.value)


def test_load_rejects_non_json_and_nan(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ArchitectureError, match="not valid JSON"):
        load_architecture(bad)
    bad.write_text(json.dumps(valid()).replace('"in_channels": 3', '"in_channels": NaN'))
    with pytest.raises(ArchitectureError):
        load_architecture(bad)
    with pytest.raises(ArchitectureError, match="cannot read"):
        load_architecture(tmp_path / "missing.json")
