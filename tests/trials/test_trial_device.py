"""A trial's device, GPU share, OOM, augmentation and data-size defaults (correctness review findings 8,
13, 14, 15, 18, 19); all on the CPU, with Ray and CUDA monkeypatched where needed. Compiling ten
architectures in one reused process (finding 17) is tests/nas/commands/test_compile_flag.py's."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from tests.helpers import training
from tests.helpers.training import TINY
from trials import augment, loop, trainable
from trials.augment import crop_flip, draw_epoch, prepare, random_crop_flip
from trials.config import TrainConfig, TrainConfigError, default_val_size
from trials.datasets import Augmentation
from trials.loop import train


def quick(**kw) -> TrainConfig:
    return training.quick(**{"epochs": 1, **kw})  # one epoch unless asked


# --- finding 8: the device comes from Ray's assignment -------------------------------------------------


def _fake_ray(monkeypatch, gpu_ids, gpu_resource):
    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: True
    fake.get_gpu_ids = lambda: list(gpu_ids)
    resources = {"CPU": 1.0, **({"GPU": gpu_resource} if gpu_resource is not None else {})}
    fake.get_runtime_context = lambda: types.SimpleNamespace(get_assigned_resources=lambda: resources)
    tune = types.ModuleType("ray.tune")
    tune.get_context = lambda: types.SimpleNamespace(get_trial_resources=lambda: types.SimpleNamespace(
        required_resources=resources))
    fake.tune = tune
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.tune", tune)


def test_no_gpu_share_means_cpu_even_when_cuda_is_visible(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _fake_ray(monkeypatch, [], None)
    config = trainable.trial_config({"dataset": "synthetic"})
    assert config.device == "cpu" and config.gpu_share is None
    assert loop.resolve_device(config.device).type == "cpu"


def test_fractional_gpu_share_is_passed_to_the_trial(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    _fake_ray(monkeypatch, ["3"], 0.25)
    config = trainable.trial_config({})
    assert (config.device, config.gpu_share) == ("cuda:0", 0.25)
    _fake_ray(monkeypatch, ["3"], 1.0)
    assert trainable.trial_config({}).gpu_share is None
    assert trainable.trial_config({"device": "cpu"}).device == "cpu"  # an explicit device is kept


def test_device_for_gpu_ids():
    assert trainable.device_for_gpu_ids([], "0,1") == "cpu"
    assert trainable.device_for_gpu_ids(["1"], "0,1") == "cuda:1"
    assert trainable.device_for_gpu_ids([2], None) == "cuda:2"  # Ray did not set CUDA_VISIBLE_DEVICES
    assert trainable.device_for_gpu_ids(["GPU-ab12"], "GPU-ab12") == "cuda:0"


# --- finding 15: OOM under a fractional share --------------------------------------------------------------


class _OOM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 10)

    def forward(self, x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_oom_under_a_fractional_share_is_an_error_not_a_score(synthetic, monkeypatch):
    monkeypatch.setattr(loop, "build_model", lambda arch: _OOM())
    reports: list[dict] = []
    with pytest.raises(loop.FractionalOOM, match="0.25 share"):
        train(TINY, quick(gpu_share=0.25), report=reports.append, dataset=synthetic)
    assert reports == []  # nothing for Optuna to learn 0.0 from
    assert train(TINY, quick(gpu_share=1.0), dataset=synthetic)["status"] == "oom"  # a whole GPU: as before


def test_gpu_share_is_validated():
    for bad in (0, 1.5, -0.1, True, "half"):
        with pytest.raises(TrainConfigError, match="gpu_share"):
            TrainConfig(gpu_share=bad)


# --- finding 19: no weight decay on the classifier bias -------------------------------------------------


def test_classifier_bias_is_not_decayed(synthetic, monkeypatch):
    seen: list = []
    real_sgd = torch.optim.SGD

    def spy(groups, **kw):
        seen.extend(groups)
        return real_sgd(groups, **kw)

    monkeypatch.setattr(torch.optim, "SGD", spy)
    train(TINY, quick(train_subset=32, weight_decay=5e-4, head_lr_scale=0.05), dataset=synthetic)
    model_fc_shapes = {(10,): "bias", (10, 128): "weight"}
    by_shape = {}
    for g in seen:
        for p in g["params"]:
            if tuple(p.shape) in model_fc_shapes:
                by_shape[model_fc_shapes[tuple(p.shape)]] = (g["weight_decay"], g["lr_scale"])
    assert by_shape == {"bias": (0.0, 0.05), "weight": (5e-4, 0.05)}


# --- findings 13 and 18: val_size scaled to the data; workers reach the loader -----------------------------


def test_val_size_defaults_to_a_tenth_of_small_datasets(synthetic):
    assert TrainConfig().val_size is None
    data = loop.prepare_data(quick(val_size=None), torch.device("cpu"), synthetic)
    assert len(data.eval) == 32 and len(data.train) == 288  # 320 images: min(5000, 320 // 10)
    assert default_val_size(60000) == 5000 and default_val_size(5) == 1
    assert train(TINY, quick(val_size=None), dataset=synthetic)["status"] == "ok"


def test_workers_reach_load_dataset(monkeypatch, synthetic):
    calls = []

    def fake_load(name, data_dir=None, **kw):
        calls.append(kw)
        return synthetic

    monkeypatch.setattr(loop, "load_dataset", fake_load)
    loop.prepare_data(quick(workers=0), torch.device("cpu"))
    assert calls[0]["workers"] == 0


# --- finding 14: no per-step host-to-device copies, same numbers on the CPU ---------------------------------


def test_epoch_draws_equal_per_batch_draws():
    aug = Augmentation(pad=2, flip=True, mean=(0.5,) * 3, std=(0.25,) * 3)
    images = torch.randint(0, 256, (5, 16, 3, 12, 12), dtype=torch.uint8)
    per_batch = [random_crop_flip(b, aug, g) for g in [torch.Generator().manual_seed(7)] for b in images]
    g = torch.Generator().manual_seed(7)
    epoch = draw_epoch(aug, 5, 16, g, torch.device("cpu"))
    for i, b in enumerate(images):
        assert torch.equal(crop_flip(b, aug, epoch.batch(i)), per_batch[i])
        assert torch.equal(prepare(b, aug, train=True, params=epoch.batch(i)),
                           prepare(per_batch[i], aug, train=False))
    assert torch.equal(g.get_state(), _after_draws(7, aug, 5, 16))  # the generator advanced as before


def _after_draws(seed, aug, batches, n):
    g = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        random_crop_flip(torch.zeros(n, 3, 12, 12, dtype=torch.uint8), aug, g)
    return g.get_state()


def test_normalisation_constants_are_built_once():
    aug = Augmentation(mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5))
    augment._mean_std.cache_clear()
    for _ in range(4):
        augment.normalise(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), aug)
    info = augment._mean_std.cache_info()
    assert (info.misses, info.hits) == (1, 3)


def test_augmented_training_is_seeded_and_resumable(synthetic, tmp_path):
    config = quick(epochs=2, augment=True)
    full: list[dict] = []
    train(TINY, config, report=full.append, dataset=synthetic)

    class Stop(Exception):
        pass

    def stop(m):
        raise Stop

    with pytest.raises(Stop):
        train(TINY, config, report=stop, dataset=synthetic, checkpoint_dir=tmp_path)
    resumed: list[dict] = []
    train(TINY, config, report=resumed.append, dataset=synthetic, resume_from=tmp_path)
    assert [(r["train_loss"], r["val_loss"]) for r in full[1:]] == [(r["train_loss"], r["val_loss"])
                                                                    for r in resumed]
