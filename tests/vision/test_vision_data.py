"""Image folders + labels.csv: decoding, conversions, the uint8 cache, and every bad input named by file and row."""
import logging
import os

import numpy as np
import pytest

from vision_helpers import write_folder, write_png

pytest.importorskip("PIL")
from goldbull_np.vision import ImageDataError, ImageFolderDataset  # noqa: E402


def _img(seed, shape=(6, 5, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_folder_with_subdirectories_names_and_cache(tmp_path):
    write_folder(tmp_path, {"cats/a.png": _img(0), "dogs/b.png": _img(1), "c.png": _img(2)},
                 rows=[("cats/a.png", "cat"), ("dogs/b.png", "dog"), ("c.png", "cat")])
    ds = ImageFolderDataset(tmp_path, image_size=(4, 4), channels=3)
    assert ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [0, 1, 0]
    assert ds.images.shape == (3, 4, 4, 3) and ds.images.dtype == np.uint8 and ds.decoded == 3
    assert isinstance(ds.images, np.memmap)
    img, lab = ds[1]
    assert img.shape == (4, 4, 3) and lab == 1
    again = ImageFolderDataset(tmp_path, image_size=(4, 4), channels=3)
    assert again.decoded == 0 and np.array_equal(np.asarray(again.images), np.asarray(ds.images))
    other = ImageFolderDataset(tmp_path, image_size=(5, 5), channels=3)  # another size: another cache
    assert other.decoded == 3


def test_integer_labels_and_auto_channels(tmp_path):
    g = np.random.default_rng(0).integers(0, 256, (5, 5), dtype=np.uint8)
    write_folder(tmp_path, {"x.png": g, "y.png": g[::-1].copy()}, rows=[("x.png", 1), ("y.png", 0)])
    ds = ImageFolderDataset(tmp_path, image_size=5)
    assert ds.channels == 1 and ds.class_names == ["0", "1"] and ds.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(ds.images[0, :, :, 0], g)


def test_grayscale_mixed_with_rgb_becomes_rgb(tmp_path):
    g = np.full((4, 4), 77, np.uint8)
    write_folder(tmp_path, {"g.png": g, "c.png": _img(3, (4, 4, 3))})
    ds = ImageFolderDataset(tmp_path, image_size=4)
    assert ds.channels == 3 and (ds.images[0] == 77).all()


def test_16_bit_and_palette_pngs_are_converted(tmp_path):
    from PIL import Image
    a16 = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4096)
    Image.fromarray(a16).save(tmp_path / "deep.png")  # a uint16 array: mode I;16
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    p = Image.fromarray(_img(4, (4, 4, 3))).convert("P", palette=Image.ADAPTIVE, colors=8)
    p.save(tmp_path / "pal.png")
    (tmp_path / "labels.csv").write_text("filename,label\ndeep.png,a\npal.png,b\n")
    ds = ImageFolderDataset(tmp_path, image_size=4, channels=3)
    np.testing.assert_array_equal(ds.images[0, :, :, 0], (a16 >> 8).astype(np.uint8))
    np.testing.assert_array_equal(ds.images[1], np.asarray(p.convert("RGB")))


@pytest.mark.parametrize("content,match", [
    ("truncated", "corrupt or truncated"), ("text", "not an image file"),
])
def test_corrupt_truncated_and_non_image_files_name_file_and_row(tmp_path, content, match):
    write_folder(tmp_path, {"ok.png": _img(5)}, rows=[("ok.png", "a"), ("bad.png", "b")])
    if content == "truncated":
        write_png(str(tmp_path / "full.png"), _img(6, (64, 64, 3)))
        data = (tmp_path / "full.png").read_bytes()
        os.remove(tmp_path / "full.png")
        (tmp_path / "bad.png").write_bytes(data[: len(data) // 2])
    else:
        (tmp_path / "bad.png").write_text("this is not a png")
    with pytest.raises(ImageDataError, match=match) as e:
        ImageFolderDataset(tmp_path, image_size=4)
    assert "bad.png" in str(e.value) and "row 3" in str(e.value)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    from PIL import Image
    write_folder(tmp_path, {"big.png": _img(7, (40, 40, 3)), "b.png": _img(8)})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageDataError, match="pixel limit") as e:
        ImageFolderDataset(tmp_path, image_size=4)
    assert "big.png" in str(e.value) and "row 2" in str(e.value)


@pytest.mark.parametrize("csv_text,match", [
    ("a.png,x\nb.png,y\n", "row 1: expected the header"),
    ("filename,label\na.png,x\nb.png,y\na.png,x\n", "row 4: 'a.png' is listed again \\(first at row 2\\)"),
    ("filename,label\na.png,x\nmissing.png,y\n", "missing.png.*row 3.*missing"),
    ("filename,label\na.png,0\nb.png,2\n", "class\\(es\\) \\['1'\\] have no examples"),
    ("filename,label\na.png,x\nb.png\n", "row 3: expected 'filename,label'"),
    ("filename,label\n../a.png,x\n", "inside the image directory"),
])
def test_bad_labels_csv(tmp_path, csv_text, match):
    write_png(str(tmp_path / "a.png"), _img(9))
    write_png(str(tmp_path / "b.png"), _img(10))
    (tmp_path / "labels.csv").write_text(csv_text)
    with pytest.raises(ImageDataError, match=match):
        ImageFolderDataset(tmp_path, image_size=4)


def test_class_names_given_and_unknown_label(tmp_path):
    write_folder(tmp_path, {"a.png": _img(11), "b.png": _img(12)}, rows=[("a.png", "cat"), ("b.png", "emu")])
    with pytest.raises(ImageDataError, match="row 3: label 'emu'"):
        ImageFolderDataset(tmp_path, image_size=4, class_names=["cat", "dog"])


def test_images_without_a_row_are_counted_in_the_log(tmp_path, caplog):
    write_folder(tmp_path, {"a.png": _img(13), "b.png": _img(14), "extra/c.png": _img(15)},
                 rows=[("a.png", "x"), ("b.png", "y")])
    with caplog.at_level(logging.WARNING, logger="goldbull_np.vision"):
        ds = ImageFolderDataset(tmp_path, image_size=4)
    assert ds.unlisted == ["extra/c.png"] and len(ds) == 2
    assert "1 image(s)" in caplog.text and "extra/c.png" in caplog.text


@pytest.mark.parametrize("size", [0, (0, 4), (4, -1), "x"])
def test_image_size_zero_is_an_error(tmp_path, size):
    write_folder(tmp_path, {"a.png": _img(16), "b.png": _img(17)})
    with pytest.raises(ImageDataError, match="image_size"):
        ImageFolderDataset(tmp_path, image_size=size)


def test_stratified_split_is_seeded_and_keeps_every_class(digits_dir):
    ds = ImageFolderDataset(digits_dir, image_size=8)
    tr, va = ds.split(0.2, seed=0)
    tr2, va2 = ds.split(0.2, seed=0)
    assert np.array_equal(va.indices, va2.indices) and len(tr) + len(va) == len(ds)
    assert not set(tr.indices) & set(va.indices)
    counts = va.class_counts()
    assert (counts > 0).all() and abs(len(va) - 0.2 * len(ds)) < 10
