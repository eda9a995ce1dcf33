"""`python tests/checked_deletions.py LOG ARGS...`: `python -m nas.search ARGS` with slow experiment-state
uploads, checking each checkpoint deletion against the experiment state on storage at that moment.

Tune writes a snapshot at every step of its loop and uploads it in the background; here each upload sends the
state staged when it was launched, but only after UPLOAD_DELAY_S (PUTs under load), so many snapshots are
written while one upload is in flight. Before every deletion the newest experiment state on storage is read:
if it names the checkpoint as the latest of a trial that is not TERMINATED, a driver killed now could not be
resumed. One JSON line per deletion goes to LOG: {"checkpoint", "named_by": trial id or null}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

UPLOAD_DELAY_S = float(os.environ.get("UPLOAD_DELAY_S", "1.5"))


def stored_latest(experiment_fs_path: str, fs) -> dict[str, str]:
    """{checkpoint path: trial id} for each trial that is not TERMINATED in the newest stored state."""
    from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    newest = _find_newest_experiment_checkpoint(experiment_fs_path, fs)
    if newest is None:
        return {}
    with fs.open_input_stream(newest) as f:
        state = json.loads(f.read())
    named = {}
    for trial_json, metadata_json in state["trial_data"]:
        trial = json.loads(trial_json)
        manager = _TrainingRunMetadata.from_json_state(metadata_json).checkpoint_manager
        latest = manager.latest_checkpoint_result if manager else None
        if trial["status"] != "TERMINATED" and latest is not None:
            named[latest.checkpoint.path] = trial["trial_id"]
    return named


def install(log: Path) -> None:
    import shutil
    import tempfile

    from ray.train._internal.storage import _FilesystemSyncer, _upload_to_fs_path

    from nas.orchestration import checkpoints

    command = _FilesystemSyncer._sync_up_command

    def slow_upload(local_path: str, **kwargs) -> None:
        time.sleep(UPLOAD_DELAY_S)  # the PUTs take this long: storage has the new state only at the end
        try:
            _upload_to_fs_path(local_path=local_path, **kwargs)
        finally:
            shutil.rmtree(local_path, ignore_errors=True)

    def held_command(self, local_path: str, uri: str, exclude=None):
        # What an upload sends is read when it is launched (in Tune's thread, right after the snapshot).
        copy = tempfile.mkdtemp(prefix="upload-")
        shutil.copytree(local_path, copy, dirs_exist_ok=True)
        _, kwargs = command(self, copy, uri, exclude)
        return slow_upload, kwargs

    delete = checkpoints._delete

    def checked_delete(ckpt) -> None:
        experiment = ckpt.path.rsplit("/", 2)[0]  # RUN_DIR/trial_ID/checkpoint_N -> RUN_DIR
        named_by = stored_latest(experiment, ckpt.filesystem).get(ckpt.path)
        with log.open("a") as f:
            f.write(json.dumps({"checkpoint": ckpt.path, "named_by": named_by}) + "\n")
        delete(ckpt)

    _FilesystemSyncer._sync_up_command = held_command  # the driver's uploads: the experiment state
    checkpoints._delete = checked_delete


if __name__ == "__main__":
    from nas.orchestration.ray_env import configure_ray_env

    configure_ray_env(None)
    install(Path(sys.argv[1]))
    from nas.search import main

    sys.exit(main(sys.argv[2:]))
