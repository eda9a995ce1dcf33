"""The dataset of a search, found once by the driver and made available to every trial on every node.

In-memory datasets (Fashion-MNIST, CIFAR, synthetic) are loaded (or downloaded) once on the driver and
shipped through Ray's object store as uint8 numpy arrays (tune.with_parameters puts them there, and puts
them again when a resumed Tuner is given the trainable): a trial then needs no copy of the files on its
node, and does not decode the files again per trial (docs/performance.md: the shipped arrays replaced
~1 s of decoding per trial). Image folders are decoded once here, at the search's training resolution
(through trials' content-keyed cache), and shipped the same way; only a folder too large to hold in
memory stays on disk, and then its path must be one that every node sees, which is checked with one
tiny Ray task per node before trials start.

ray and trials (torch) are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .settings import SearchConfigError, SearchSettings


def absolute_data_env() -> None:
    """Make a relative $NAS_DATA_DIR absolute (against the driver's directory), for the driver's own
    look-up and for the Ray workers it starts: Tune runs each trial in its own working directory."""
    from trials import DATA_DIR_ENV_VAR

    value = os.environ.get(DATA_DIR_ENV_VAR)
    if value:
        os.environ[DATA_DIR_ENV_VAR] = str(Path(value).expanduser().resolve())


def shipped_dataset(settings: SearchSettings, log=print) -> dict[str, Any] | None:
    """Load the search's dataset on the driver (downloading it at most once; an image folder decoded at
    the training resolution), check the sizes the trials will ask of it, and return it as arrays to
    ship; None for an image folder too large for memory (read where it lies).

    Raises SearchConfigError naming the setting, before any trial starts.
    """
    from trials import IMAGEFOLDER, DatasetError, dataset_arrays, load_dataset

    try:
        ds = load_dataset(settings.dataset, settings.data_dir, download=True,
                          resolution=settings.train_resolution if settings.dataset.startswith(IMAGEFOLDER) else None)
    except DatasetError as exc:
        setting = "data_dir" if settings.data_dir else "dataset"
        raise SearchConfigError(setting, "{error}", error=str(exc).splitlines()[0]) from None
    if settings.dataset.startswith(IMAGEFOLDER):
        log(folder_line(ds))
    check_sizes(settings, len(ds.train))
    if not ds.in_memory:
        check_visible_everywhere(settings.dataset[len(IMAGEFOLDER):])
        return None
    return dataset_arrays(ds)


def folder_line(ds) -> str:
    """What was read of an image folder: images, classes, resolution, and what was left out."""
    line = (f"Images: {len(ds.train)} training and {len(ds.test)} test images in {ds.num_classes} classes, "
            f"decoded at {ds.resolution}x{ds.resolution}")
    if ds.ignored:
        line += f"; {ds.ignored} files ignored (hidden, or not images)"
    if ds.skipped:
        path, why = ds.skipped[0]
        line += f"; {len(ds.skipped)} unreadable images skipped (first: {path}: {why})"
    return line


def check_sizes(settings: SearchSettings, n_train: int) -> None:
    """--val-size must leave training images; refused here instead of in every trial."""
    if settings.val_size is not None and not 0 < settings.val_size < n_train:
        raise SearchConfigError("val_size", "{val} must be below the {n} training images of {dataset}",
                                val=settings.val_size, n=n_train, dataset=settings.dataset)


def _path_is_dir(path: str) -> tuple[str, bool]:
    import ray

    return ray.get_runtime_context().get_node_id(), Path(path).is_dir()


def check_visible_everywhere(path: str) -> None:
    """Refuse an image folder that some alive node of the Ray cluster cannot see (a 0-CPU task per node)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(_path_is_dir)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    answers = ray.get([probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                       .remote(path) for node in nodes], timeout=120)
    blind = [node for node, seen in answers if not seen]
    if blind:
        raise SearchConfigError("dataset", "imagefolder: {path} is not a directory on {k} of the {n} Ray nodes "
                                "(first: {node}); put it on a filesystem that every node mounts at that path",
                                path=path, k=len(blind), n=len(nodes), node=blind[0][:12])


def accepts_data(trainable) -> bool:
    """Whether a trainable takes the shipped dataset (trials.train_trial does; test wrappers may not)."""
    import inspect

    try:
        return "data" in inspect.signature(trainable).parameters
    except (TypeError, ValueError):
        return False


__all__ = ["absolute_data_env", "accepts_data", "check_sizes", "check_visible_everywhere", "folder_line",
           "shipped_dataset"]
