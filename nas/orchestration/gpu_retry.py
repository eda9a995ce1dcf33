"""Retry on a whole GPU a trial that ran out of GPU memory under a fractional share.

Ray's fractional GPUs are bookkeeping: trials sharing a GPU share its memory, so an OOM under a share
(trials.loop.FractionalOOM, raised before anything is reported) is likely a neighbour's doing and must
not score the architecture. Tune has no "retry with other resources" option: its ResourceChangingScheduler
changes resources only on results (a FractionalOOM trial has none), so this Tune callback does it by hand
with Tune's own (experimental) Trial.update_resources, in on_trial_recover: that runs after Tune has
requeued the failed trial as PENDING and before it starts it again, from its last checkpoint, on a new
actor placed with the new resources. The retry counts towards --max-failures (with 0 there is none).
ray is imported lazily (inside the factory), as elsewhere in nas.orchestration.
"""

from __future__ import annotations

from typing import Any


def was_fractional_oom(trial: Any) -> bool:
    """Whether the trial's latest failure was trials.loop.FractionalOOM."""
    from trials import FractionalOOM

    try:
        error = trial.get_pickled_error()
    except Exception:  # unreadable pickle: fall back to the text below
        error = None
    if error is not None and (isinstance(error, FractionalOOM) or isinstance(getattr(error, "cause", None),
                                                                             FractionalOOM)):
        return True
    if trial.error_file:
        try:
            with open(trial.error_file) as f:
                last = f.read().rsplit("Failure # ", 1)[-1]
        except OSError:
            return False
        return "FractionalOOM" in last
    return False


def whole_gpu_retry():
    """A tune.Callback that gives a FractionalOOM trial one whole GPU for its retry."""
    from ray.tune import Callback

    class WholeGpuRetry(Callback):
        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            required = trial.placement_group_factory.required_resources
            gpu = float(required.get("GPU", 0.0))
            if 0 < gpu < 1 and was_fractional_oom(trial):
                trial.update_resources({"cpu": float(required.get("CPU", 1.0)), "gpu": 1.0})
                print(f"trial {trial.trial_id}: out of GPU memory under a {gpu:g} share; retrying on a whole GPU",
                      flush=True)

    return WholeGpuRetry()


__all__ = ["was_fractional_oom", "whole_gpu_retry"]
