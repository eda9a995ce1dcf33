"""The correctness review's image-folder search as a new user runs it: 32x32 PNGs in
imgs/{train,test}/{cats,dogs}, the CIFAR space. It trains at a sensible resolution (printed, in
search.json) and completes; a search whose trials cannot fit the machine's memory is refused before any
trial starts, in one line naming what to change."""

from __future__ import annotations

import json

import pandas as pd
from PIL import Image


def _imgs(root):
    for split, n in (("train", 40), ("test", 10)):
        for shade, cls in ((40, "cats"), (200, "dogs")):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (shade, i, 255 - shade)).save(root / split / cls / f"{i}.png")
    return root


def _search(capsys, *args: str):
    """`python -m nas.search ARGS` in this process, on the session's Ray: the command's own main (flags,
    checks, printed lines, exit code), without a Ray start-up per search."""
    from types import SimpleNamespace

    from nas.cli import run_main
    from nas.search import main

    capsys.readouterr()
    code = run_main(main, list(args))
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_a_folder_of_small_images_trains_at_their_size_and_completes(tmp_path, ray_instance, capsys):
    imgs = _imgs(tmp_path / "imgs")
    base = ["--budget", "120MFLOPs", "--space", "resnext-cifar", "--dataset", f"imagefolder:{imgs}",
            "--trials", "2", "--max-epochs", "1", "--storage-path", str(tmp_path / "runs"), "--seed", "1"]
    out = _search(capsys, *base, "--name", "rel")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Images: trials train at 28x28 (the space's 32x32, never above the images' own 32x32; no GPU: " \
           "at most 28x28, Fashion-MNIST's; --train-resolution to choose)" in out.stdout
    assert "Images: 80 training and 20 test images in 2 classes, decoded at 28x28" in out.stdout
    assert "Memory: memory per trial (estimate):" in out.stdout
    run = tmp_path / "runs" / "rel"
    assert json.loads((run / "search.json").read_text())["train_resolution"] == 28
    frame = pd.read_csv(run / "trials.csv")
    assert len(frame) == 2 and set(frame["outcome"]) == {"completed"}

    refused = _search(capsys, *base, "--name", "huge", "--train-resolution", "224", "--batch-size", "4096")
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith("error: --batch-size: trials need at least") and "--train-resolution" in line
    assert not (tmp_path / "runs" / "huge").exists()
