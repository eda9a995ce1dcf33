"""A trainable that wraps the real one and injects one fault per trial, by the order trials start.

Importable (Ray pickles trainables by reference). The faults are real: an exception out of the
training loop, a learning rate that makes the loss overflow, SIGKILL of the worker process, and the
CUDA out-of-memory exception raised from the model's forward pass (the only fault a CPU cannot cause
by itself). Attempts are counted in files under `state_dir`, shared by the worker processes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

FAULTS = ("raise", "nan", "kill", "oom", None)


def make_faulty(state_dir: str):
    def faulty_trial(config: dict) -> None:
        from ray import tune

        from trials.trainable import train_trial

        trial_id = tune.get_context().get_trial_id()
        state = Path(state_dir)
        mine = state / f"{trial_id}.attempts"
        if not mine.exists():
            order = len(list(state.glob("*.attempts")))
            mine.write_text(f"{FAULTS[order % len(FAULTS)]}\n")
        fault, *attempts = mine.read_text().split("\n")[:-1]
        first = not attempts
        mine.write_text(mine.read_text() + "attempt\n")
        fault = None if fault == "None" else fault
        real_report = tune.report
        from search_spaces import model

        real_forward = model.ResNeXt.forward  # restored below: Tune reuses worker processes

        def report(metrics, *args, **kwargs):
            # Fail during the second epoch's report, after the first epoch's checkpoint exists.
            if first and metrics.get("epoch") == 2:
                if fault == "raise":
                    raise RuntimeError("injected fault: trial raised in epoch 2")
                if fault == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_report(metrics, *args, **kwargs)

        tune.report = report
        if fault == "nan":
            config = {**config, "train": {**config["train"], "lr": 1e12}}
        if fault == "oom":
            import torch

            def forward(self, x):
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

            model.ResNeXt.forward = forward
        try:
            train_trial(config)
        finally:
            tune.report = real_report
            model.ResNeXt.forward = real_forward

    return faulty_trial
