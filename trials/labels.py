"""A Ray worker's process title that names its trial (stdlib and Ray only, cheap to import)."""

from __future__ import annotations


def process_title(trial_id: str, arch_name: str) -> str:
    return f"ray::trial_{trial_id} {arch_name}"


def label_process(trial_id: str, arch_name: str) -> str:
    """Name this worker process after its trial, as the Ray dashboard (cluster view: the worker's
    command line), `ps` and `top` show it; every trial actor is otherwise "ray::ImplicitFunc.train".

    Ray resets the title around each actor task (one Tune `train()` call per reported epoch), so a
    trainable calls this at its start and after each report. Returns the title set."""
    title = process_title(trial_id, arch_name)
    try:
        from ray._raylet import setproctitle  # what Ray itself uses for "ray::…" titles
    except ImportError:
        try:
            from setproctitle import setproctitle
        except ImportError:
            return ""
    setproctitle(title)
    return title


__all__ = ["label_process", "process_title"]
