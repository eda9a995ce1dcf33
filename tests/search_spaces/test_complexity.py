"""Analytic complexity against published numbers, the built model, and fvcore (an independent counter)."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_spaces import Architecture, Stage, build_model, complexity, template


@pytest.mark.parametrize("arch,resolution,params,flops", [
    (template((3, 4, 6, 3), 1, 64), 224, 25_557_032, 4_089_184_256),  # resnet50
    (template((3, 4, 6, 3), 32, 4), 224, 25_028_904, 4_230_479_872),  # resnext50_32x4d
    (template((3, 4, 23, 3), 32, 8), 224, 88_791_336, 16_414_015_488),  # resnext101_32x8d
    (template((3, 4, 23, 3), 1, 64), 224, 44_549_160, 7_801_405_440),  # resnet101
    (template((3, 4, 23, 3), 64, 4), 224, 83_455_272, 15_460_270_080),  # resnext101_64x4d (fvcore)
    (template((3, 3, 3), 8, 64, in_channels=3, num_classes=10), 32, 34_426_698, 5_387_266_048),  # ResNeXt-29 8x64d
])
def test_reference_networks_to_the_unit(arch, resolution, params, flops):
    cx = complexity(arch, resolution)
    assert (cx.params, cx.flops) == (params, flops)
    assert sum(p.flops for p in cx.parts) == cx.flops


def test_params_equal_the_built_model():
    arch = template((3, 4, 6, 3), 32, 4)
    assert sum(p.numel() for p in build_model(arch).parameters()) == complexity(arch).params


def test_layout_matches_torchvision_resnext50_32x4d():
    # torchvision's resnext50_32x4d state_dict layout: names and shapes in order (stem, layers, fc).
    model = build_model(template((3, 4, 6, 3), 32, 4))
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert shapes[0] == ("conv1.weight", (64, 3, 7, 7))
    assert shapes[1:6] == [("bn1.weight", (64,)), ("bn1.bias", (64,)), ("bn1.running_mean", (64,)),
                           ("bn1.running_var", (64,)), ("bn1.num_batches_tracked", ())]
    assert ("layer1.0.conv1.weight", (128, 64, 1, 1)) in shapes
    assert ("layer1.0.conv2.weight", (128, 4, 3, 3)) in shapes
    assert ("layer1.0.conv3.weight", (256, 128, 1, 1)) in shapes
    assert ("layer1.0.downsample.0.weight", (256, 64, 1, 1)) in shapes
    assert ("layer2.0.conv2.weight", (256, 8, 3, 3)) in shapes
    assert ("layer4.2.conv3.weight", (2048, 1024, 1, 1)) in shapes
    assert shapes[-2:] == [("fc.weight", (1000, 2048)), ("fc.bias", (1000,))]
    assert len(shapes) == 320  # as torchvision: 161 parameter tensors + 159 BN buffers (53 BNs x 3)


stage = st.builds(
    lambda depth, c, gw, out: Stage(depth, c, gw, out),
    st.integers(1, 2), st.sampled_from([1, 2, 4, 8]), st.integers(1, 8), st.sampled_from([8, 16, 24, 32]),
)
archs = st.builds(
    lambda stem, cin, classes, stages: Architecture(stem, cin, classes, tuple(stages)),
    st.sampled_from(["imagenet", "cifar"]), st.integers(1, 3), st.integers(2, 12),
    st.lists(stage, min_size=1, max_size=4),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=archs, resolution=st.integers(8, 40))
def test_random_architectures_against_model_and_fvcore(arch, resolution):
    from fvcore.nn import FlopCountAnalysis

    model = build_model(arch).eval()
    cx = complexity(arch, resolution)
    assert cx.params == sum(p.numel() for p in model.parameters())
    counter = FlopCountAnalysis(model, torch.zeros(1, arch.in_channels, resolution, resolution))
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = counter.by_operator()
    fv = by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0) + by_op.get("matmul", 0)
    assert cx.flops == fv
    # the model actually produces the shape complexity() assumed
    assert model(torch.zeros(1, arch.in_channels, resolution, resolution)).shape == (1, arch.num_classes)


def test_every_helper_returns_one_cost_type_and_numpy_matches_scalars():
    import numpy as np

    from search_spaces.complexity import Cost, block_cost, conv_cost, head_cost, stem_cost

    assert isinstance(conv_cost(3, 64, 3, 32), Cost) and isinstance(head_cost(256, 10), Cost)
    assert isinstance(stem_cost("cifar", 3, 32)[0], Cost)
    c, d = np.array([[1], [4], [32]]), np.array([[2, 4, 9]])
    table, hw = block_cost(64, 256, c, d, 2, 16)
    assert hw == 8
    for i, ci in enumerate((1, 4, 32)):
        for j, dj in enumerate((2, 4, 9)):
            one, _ = block_cost(64, 256, ci, dj, 2, 16)
            assert (table.flops[i, j], table.params[i, j], table.activations[i, j]) == (
                one.flops, one.params, one.activations)


def test_parts_carry_a_cost_and_serialise_flat():
    cx = complexity(template((1, 1), 2, 4, in_channels=3, num_classes=10, base_out=32), 32)
    part = cx.parts[1]
    assert part.name == "stage1" and (part.flops, part.params) == (part.cost.flops, part.cost.params)
    assert cx.as_dict()["parts"][1] == {"name": "stage1", "flops": part.flops, "params": part.params,
                                        "activations": part.activations, "out_resolution": part.out_resolution}


@pytest.mark.parametrize("stem,min_map", [("imagenet", 2), ("imagenet", 3), ("cifar", 2)])
def test_smallest_resolution_is_the_first_without_small_maps(stem, min_map):
    from search_spaces import smallest_resolution, stage_map_sizes

    arch = template((1, 1, 1, 1), 4, 4, stem=stem)
    r = smallest_resolution(arch, min_map)
    assert min(stage_map_sizes(arch, r)) >= min_map
    assert all(min(stage_map_sizes(arch, s)) < min_map for s in range(1, r))
    assert smallest_resolution(arch, min_map, start=r + 5) == r + 5
    if (stem, min_map) == ("imagenet", 2):
        assert r == 33 and stage_map_sizes(arch, 28) == [7, 4, 2, 1]  # Fashion-MNIST's 28 leaves stage 4 1x1
