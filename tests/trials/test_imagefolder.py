"""Image folders as users have them: mixed sizes and modes, EXIF rotation, stray files, a corrupt image, an
empty class; decoded once and cached by content and resolution."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import trials.datasets as D
from trials.datasets import DatasetError
from trials.datasets import image_decode as decode


def _class_dirs(root, names=("cats", "dogs")):
    for name in names:
        (root / name).mkdir(parents=True)
    return [root / name for name in names]


def test_every_pillow_mode_decodes_to_rgb(tmp_path):
    cats, dogs = _class_dirs(tmp_path)
    Image.new("L", (40, 30), 200).save(cats / "grey.png")
    Image.new("RGBA", (30, 30), (255, 0, 0, 0)).save(cats / "transparent.png")  # fully transparent
    palette = Image.new("P", (30, 50))
    palette.putpalette([0, 0, 255] * 256)
    palette.save(cats / "palette.png")
    Image.fromarray(np.full((30, 30), 65535, dtype=np.uint16)).save(cats / "sixteen.png")  # 16-bit grey
    Image.new("RGB", (64, 64), (0, 255, 0)).save(dogs / "big.jpg", quality=95)
    Image.new("CMYK", (30, 30), (0, 0, 0, 0)).save(dogs / "cmyk.jpg")
    assert Image.open(cats / "sixteen.png").mode.startswith("I")
    ds = D.load_dataset(f"imagefolder:{tmp_path}", resolution=16)
    assert ds.train.images.shape == (6, 3, 16, 16) and ds.train.images.dtype.is_floating_point is False
    by_name = dict(zip(["grey", "palette", "sixteen", "transparent", "big", "cmyk"], ds.train.images, strict=True))
    assert by_name["grey"].unique().tolist() == [200]
    assert by_name["transparent"].unique().tolist() == [255]  # composited on white, not black
    assert by_name["palette"][2].unique().tolist() == [255] and by_name["palette"][0].max() == 0
    assert by_name["sixteen"].unique().tolist() == [255]  # scaled to 8 bits, not clipped to garbage
    assert by_name["big"][1].float().mean() > 240
    assert by_name["cmyk"].float().mean() > 240


def test_exif_orientation_is_applied(tmp_path):
    # 40 wide, 20 high, left half black, right half white; EXIF 6 = shown rotated 90 degrees clockwise
    img = Image.new("L", (40, 20), 0)
    img.paste(255, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.convert("RGB").save(tmp_path / "rot.jpg", exif=exif, quality=100)
    arr = decode.decode_image(tmp_path / "rot.jpg", 20)
    # shown upright it is 20 wide, 40 high, the left (black) half on top: rows differ, not columns
    assert arr.shape == (3, 20, 20)
    assert arr[0, :8].mean() < 50 and arr[0, -8:].mean() > 200


def test_hidden_and_non_image_files_are_ignored_and_a_corrupt_image_skipped(tmp_path):
    cats, dogs = _class_dirs(tmp_path)
    for d in (cats, dogs):
        for i in range(3):
            Image.new("RGB", (24, 24), (i, i, i)).save(d / f"{i}.png")
    (cats / ".DS_Store").write_bytes(b"\0\0")
    (cats / "._0.png").write_bytes(b"AppleDouble")  # macOS resource fork: hidden, image suffix
    (cats / "labels.csv").write_text("a,b\n")
    (tmp_path / ".ipynb_checkpoints").mkdir()  # a hidden folder is not a class
    (dogs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ds = D.load_dataset(f"imagefolder:{tmp_path}")
    assert ds.classes == ["cats", "dogs"] and len(ds.train) + len(ds.test) == 6
    assert ds.ignored == 3
    assert [p for p, _ in ds.skipped] == [str(dogs / "broken.png")] and "Error" in ds.skipped[0][1]


def test_an_empty_class_is_refused_in_one_line_naming_it(tmp_path):
    cats, dogs = _class_dirs(tmp_path)
    Image.new("RGB", (8, 8)).save(cats / "a.png")
    (dogs / "readme.txt").write_text("no images yet")
    with pytest.raises(DatasetError, match=f"class folder {dogs} holds no images") as err:
        D.load_dataset(f"imagefolder:{tmp_path}")
    assert "\n" not in str(err.value)


def test_own_resolution_is_the_median_shorter_side(tmp_path):
    cats, dogs = _class_dirs(tmp_path)
    for i, size in enumerate([(32, 40), (32, 32), (64, 48)]):
        Image.new("RGB", size).save(cats / f"{i}.png")
        Image.new("RGB", size).save(dogs / f"{i}.png")
    assert D.describe_dataset(f"imagefolder:{tmp_path}").resolution == 32
    assert D.describe_dataset(f"imagefolder:{tmp_path}", resolution=20).resolution == 20
    assert D.load_dataset(f"imagefolder:{tmp_path}").train.images.shape[-1] == 32


def test_decoded_once_then_read_from_the_cache_keyed_by_content_and_resolution(tmp_path, monkeypatch):
    cats, dogs = _class_dirs(tmp_path / "imgs")
    for d in (cats, dogs):
        for i in range(4):
            Image.new("RGB", (16, 16), (10 * i, 0, 0)).save(d / f"{i}.png")
    calls = []
    real = decode.decode_files
    monkeypatch.setattr(decode, "decode_files", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    name = f"imagefolder:{tmp_path / 'imgs'}"
    first = D.load_dataset(name, resolution=8)
    assert calls == [8, 8]  # train and test decoded
    again = D.load_dataset(name, resolution=8)
    assert calls == [8, 8] and np.array_equal(first.train.images.numpy(), again.train.images.numpy())
    D.load_dataset(name, resolution=12)
    assert calls[2:] == [12, 12]  # another resolution: decoded anew
    Image.new("RGB", (16, 16), (255, 255, 255)).save(cats / "0.png")  # content changed (size differs)
    changed = D.load_dataset(name, resolution=8)
    assert calls[4:] == [8] and changed.train.images.max() == 255  # only the split that changed
