"""A trial's peak training memory, estimated from the architecture before it runs (no torch).

    peak = process + parameters x 4 bytes x (weights, gradients, momentum)
           + max(training: activations x batch x 4 bytes x SAVED_PER_ACTIVATION,
                 evaluation: largest layer x eval batch x 4 bytes x LIVE_PER_LAYER)

`activations` are complexity()'s counts (every conv and linear output, per image). Training keeps,
for backward, each conv's output, its BatchNorm's output and the ReLU's, and the gradients flowing back
need room too: about 4.5 fp32 values per counted activation (SAVED_PER_ACTIVATION, fitted). Evaluation
runs without gradients on larger batches, holding a few maps of the largest layer at a time
(LIVE_PER_LAYER, fitted). PROCESS_BYTES is a trial worker's resident memory before training (Python,
torch, Ray's worker, the dataset's pages, allocator slack). The constants were fitted (max |error| 11%)
on 12 CPU trainings (fp32) of both spaces at six resolutions and checked on 12 others: -27% .. +19%,
mean |error| 10% (benchmarks/memory_estimate.py --seed 5, docs/performance.md). On a GPU activations
are bf16 under autocast and live in GPU memory: nas.orchestration.memory_budget asks Ray only for the
host part there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .architecture import Architecture
from .complexity import STEM_CHANNELS, complexity, conv_out

FLOAT_BYTES = 4
PROCESS_BYTES = 460 << 20  # a trial worker with torch and Ray imported, its dataset and allocator slack (fitted)
SAVED_PER_ACTIVATION = 4.5  # fp32 values kept for backward per counted activation (fitted)
LIVE_PER_LAYER = 4.0  # maps of the largest layer alive at once during evaluation (fitted)
OPTIMIZER_COPIES = 3  # weights, gradients, SGD momentum


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training's peak, by what holds them."""

    process: int
    parameters: int  # weights, gradients and optimizer state
    activations: int  # the larger of training's saved activations and evaluation's live maps

    @property
    def total(self) -> int:
        return self.process + self.parameters + self.activations

    def describe(self) -> str:
        gb = 1 << 30
        return (f"{self.total / gb:.2f} GB (process {self.process / gb:.2f}, parameters and optimizer "
                f"{self.parameters / gb:.2f}, activations {self.activations / gb:.2f})")


def largest_layer(arch: Architecture, resolution: int) -> int:
    """Elements per image of the largest conv output (what evaluation holds at its peak)."""
    cx = complexity(arch, resolution)
    stem_hw = resolution if arch.stem == "cifar" else conv_out(resolution, 7, 2, 3)
    largest = STEM_CHANNELS * stem_hw * stem_hw
    in_hw = cx.parts[0].out_resolution
    for stage, part in zip(arch.stages, cx.parts[1:-1], strict=False):
        width = stage.cardinality * stage.group_width
        largest = max(largest, width * in_hw * in_hw, stage.out_channels * part.out_resolution ** 2)
        in_hw = part.out_resolution
    return largest


def training_memory(arch: Architecture, resolution: int, batch_size: int, eval_batch_size: int = 256
                    ) -> MemoryEstimate:
    """The estimated peak memory of training `arch` at `resolution` with `batch_size` (and evaluating it
    with `eval_batch_size`), as trials.loop does on a CPU."""
    cx = complexity(arch, resolution)
    train = cx.activations * batch_size * FLOAT_BYTES * SAVED_PER_ACTIVATION
    evaluate = largest_layer(arch, resolution) * eval_batch_size * FLOAT_BYTES * LIVE_PER_LAYER
    return MemoryEstimate(PROCESS_BYTES, cx.params * FLOAT_BYTES * OPTIMIZER_COPIES, int(max(train, evaluate)))


__all__ = ["MemoryEstimate", "largest_layer", "training_memory"]
