"""Your own images: the resolution trials train a folder at, and memory as a budget (each trial's estimate
is its Ray `memory` resource; a search that cannot fit is refused before any trial starts)."""

from __future__ import annotations

import pytest
from PIL import Image

from nas.orchestration.driver import sized
from nas.orchestration.memory_budget import WithMemory, check_fits, estimate, request_step
from nas.orchestration.plan import apply_preset, train_resolution
from nas.orchestration.settings import SearchConfigError
from nas.search import build_parser, settings_from_args
from search_spaces import Architecture, get_space, template, training_memory


def _folder(root, side: int, n: int = 3):
    for split in ("train", "test"):
        for cls in ("cats", "dogs"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (side, side + 8), (i, 0, 0)).save(root / split / cls / f"{i}.png")
    return root


def _settings(*flags: str):
    return settings_from_args(build_parser().parse_args(list(flags)))


@pytest.mark.parametrize(("space", "budget", "side", "full", "gpu", "expected"), [
    ("resnext-cifar", "120MFLOPs", 32, True, False, 32),  # the space's 32, the images' 32: not 224
    ("resnext-cifar", "120MFLOPs", 500, True, False, 32),  # big images: the space's nominal size
    ("resnext-imagenet", "1GFLOPs", 500, True, False, 224),
    ("resnext-imagenet", "1GFLOPs", 64, True, False, 64),  # never above the images' own size
    ("resnext-imagenet", "1GFLOPs", 32, False, True, 33),  # on a GPU: stage maps >= 2x2
    ("resnext-cifar", "120MFLOPs", 32, False, False, 28),  # CPU preset: Fashion-MNIST's size, its minutes
])
def test_a_folders_resolution_follows_the_space_and_the_images(tmp_path, space, budget, side, full, gpu,
                                                              expected):
    settings = _settings("--budget", budget, "--space", space, "--dataset", f"imagefolder:{_folder(tmp_path, side)}")
    sized_settings, scaled = apply_preset(settings, has_gpu=gpu, full=full)
    assert sized_settings.train_resolution == expected
    if not full and not gpu:
        assert scaled["train_subset"] == 2000 and scaled["train_resolution"] == 28


def test_train_resolution_overrides_and_the_choice_is_printed(tmp_path):
    folder = _folder(tmp_path, 32)
    asked = _settings("--budget", "120MFLOPs", "--space", "resnext-cifar", "--dataset", f"imagefolder:{folder}",
                      "--train-resolution", "48")
    assert apply_preset(asked, has_gpu=False, full=False)[0].train_resolution == 48
    lines = []
    sized(asked, {"CPU": 2.0}, full=False, log=lines.append)
    assert "Images: trials train at 48x48 (--train-resolution)" in lines
    lines.clear()
    plain = _settings("--budget", "120MFLOPs", "--space", "resnext-cifar", "--dataset", f"imagefolder:{folder}")
    assert train_resolution(plain) == 32
    sized(plain, {"CPU": 2.0}, full=True, log=lines.append)
    assert lines[0] == ("Images: trials train at 32x32 (the space's 32x32, never above the images' own 32x32; "
                        "--train-resolution to choose)")


def test_the_estimate_grows_with_batch_resolution_and_width():
    arch = template((1, 1, 1), 8, 2, stem="cifar", base_out=64, num_classes=10)
    small = training_memory(arch, 32, 32)
    assert training_memory(arch, 64, 32).total > small.total
    assert training_memory(arch, 32, 128).total > small.total
    wide = template((1, 1, 1), 32, 8, stem="cifar", base_out=64, num_classes=10)
    assert training_memory(wide, 32, 32).parameters > small.parameters
    # 32x32 images decoded at 224x224 for a CIFAR-space budget (a trial grew past 20 GB and was killed)
    assert training_memory(arch, 224, 32).total > 10 * 2**30 > 10 * small.total


def test_each_trial_asks_ray_for_its_estimated_memory_capped_at_the_largest_node():
    settings = _settings("--budget", "120MFLOPs", "--space", "resnext-cifar", "--dataset", "synthetic")
    arch = template((1, 1, 1), 8, 2, stem="cifar", base_out=64, num_classes=10)
    request = WithMemory({"cpu": 2.0}, settings, 32, 64 * 2**30, (3, 10), on_gpu=False)
    got = request({"arch": arch.to_dict()})
    need = estimate(arch, settings, 32, False, (3, 10)).total
    assert got == {"cpu": 2.0, "memory": request_step(need)} and need <= got["memory"] <= 1.19 * need + 2**20
    shares = WithMemory(lambda config: {"cpu": 1.0, "gpu": 0.25}, settings, 32, 1 << 30, (3, 10), on_gpu=True)
    assert shares({"arch": arch.to_dict()})["gpu"] == 0.25
    big = WithMemory({"cpu": 1.0}, settings, 224, 4 * 2**30, (3, 10), on_gpu=False)
    assert big({"arch": arch.to_dict()})["memory"] == 4 * 2**30  # a larger request would wait forever


def test_trials_of_similar_size_ask_for_one_amount_so_tune_can_reuse_their_actors():
    """Tune gives a finished trial's actor to the next only when their resource requests are equal."""
    steps = [request_step(int(b)) for b in (0.51 * 2**30, 0.52 * 2**30, 0.56 * 2**30, 0.59 * 2**30)]
    assert len(set(steps)) == 1 and steps[0] >= 0.59 * 2**30
    for n in [1, 2**20 - 1, 2**20, 10**9, 3 * 2**30 + 7, 20 * 2**30]:
        step = request_step(n)
        assert n <= step <= 1.19 * n + 2**20 and step % 2**20 == 0
        assert request_step(step) == step  # a step is its own step
    assert len({request_step(n * 2**20) for n in range(257, 513)}) == 4  # four steps per doubling
    assert request_step(0) == 0


def test_a_search_that_fits_no_node_is_refused_naming_what_to_change():
    settings = _settings("--budget", "120MFLOPs", "--space", "resnext-cifar", "--dataset", "synthetic")
    space = get_space("resnext-cifar")
    arch = template(space.default_depths, 8, 2, stem="cifar", base_out=64, num_classes=10)
    check_fits([arch], settings, 32, 24 * 2**30)  # fits: nothing raised
    with pytest.raises(SearchConfigError) as err:
        check_fits([arch], settings, 224, 8 * 2**30)
    message = str(err.value)
    assert err.value.setting == "batch_size" and "--train-resolution" in message and "\n" not in message
    assert "offers 8.0 GB" in message


def test_nas_inspect_prints_the_estimate(tmp_path, capsys):
    from nas.inspect import main

    arch = Architecture.from_dict(template((1, 1, 1), 8, 2, stem="cifar", base_out=64, num_classes=10).to_dict())
    path = tmp_path / "a.json"
    path.write_text(arch.to_json())
    assert main([str(path), "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    expected = training_memory(arch, 32, 64).total / 2**30
    assert f"training memory at batch 64 (estimate, CPU): {expected:.2f} GB" in out
