"""A search whose trials die as real ones do, run as `python -m tests.helpers.dying_trials STATE RUNS`.

Trials start one at a time; by their order: the first allocates memory until Ray's memory monitor kills
its worker (the test sets RAY_memory_usage_threshold a little above the machine's current use); the
second writes its PID and waits, and this driver kills that worker by its PID (SIGKILL); the others
train for real. The driver prints the summary as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

CHUNK = 128 << 20


def make_dying(state_dir: str):
    def dying_trial(config: dict) -> None:
        from ray import tune

        from trials.trainable import train_trial

        state = Path(state_dir)
        mine = state / f"{tune.get_context().get_trial_id()}.role"
        if not mine.exists():
            mine.write_text(("hog", "victim")[n] if (n := len(list(state.glob("*.role")))) < 2 else "train")
        role = mine.read_text()
        if role == "hog":
            import numpy as np

            held = []
            for _ in range(80):  # up to 10 GiB, touched page by page; the monitor should act long before
                held.append(np.ones(CHUNK, dtype=np.uint8))
                time.sleep(0.05)
            raise RuntimeError("the memory monitor did not kill this trial")
        if role == "victim":
            (state / "victim.pid").write_text(str(os.getpid()))
            time.sleep(120)
            raise RuntimeError("this trial's worker was not killed")
        train_trial(config)

    return dying_trial


def kill_victim(state: Path) -> None:
    """Kill the victim trial's worker by its PID, once it has written it."""
    pid_file = state / "victim.pid"
    while not pid_file.exists():
        time.sleep(0.2)
    time.sleep(0.5)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)


def main(state_dir: str, storage: str) -> None:
    from nas.orchestration import SearchSettings, run_search
    from search_spaces import parse_flops

    state = Path(state_dir)
    threading.Thread(target=kill_victim, args=(state,), daemon=True).start()
    settings = SearchSettings(budget_flops=parse_flops("500MFLOPs"), dataset="synthetic", train_subset=128,
                              val_size=128, batch_size=32, trials=3, max_epochs=1, scheduler="none",
                              max_concurrent=1, cpus_per_trial=1, max_failures=0, storage_path=storage,
                              name="dying", references="none")
    summary = run_search(settings, trainable=make_dying(state_dir))
    print(json.dumps({k: summary[k] for k in ("trials", "outcomes")}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
