"""Image-folder datasets: a directory of images plus ``labels.csv``, decoded once into a uint8 cache.

``labels.csv`` has the header ``filename,label``; ``filename`` is a path relative to the image
directory (subdirectories allowed, ``/`` separators), ``label`` a class name or an integer index.
Every listed file is decoded with Pillow, converted to the dataset's channels, resized to
``image_size`` (bilinear) and stored in a memory-mapped uint8 ``(N, H, W, C)`` ``.npy`` cache keyed by the
files' paths, sizes and modification times and the image size: later epochs and later runs read the
cache and decode nothing.

Conversions (documented, not errors): palette ("P"), CMYK, YCbCr and 1-bit images are converted by
Pillow; an alpha channel is dropped; 16-bit grayscale ("I;16", "I") keeps its high byte (value >> 8);
float images ("F") are clipped to [0, 255]. With ``channels="auto"`` the dataset is grayscale (C = 1)
when every image is gray (R == G == B), else RGB, and grayscale images are repeated to RGB.

Errors (:class:`ImageDataError`, a ValueError) name the file and the labels.csv row: a corrupt,
truncated or non-image file, an image over Pillow's pixel limit (a decompression bomb), a listed
file that is missing, labels.csv without the header or with a duplicate row, a class with no
examples, an image_size of 0. Images in the directory with no row are not used, and their count
(and the first few names) is logged as a warning.
"""
import csv
import hashlib
import logging
import os
import warnings

import numpy as np

log = logging.getLogger("goldbull_np.vision")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
CACHE_VERSION = 1


class ImageDataError(ValueError):
    """A problem with an image folder or its labels.csv; the message names the file and row."""


def check_image_size(image_size):
    """(H, W) positive ints (an int means square) -> tuple, else ImageDataError."""
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ImageDataError(f"image_size must be (H, W) positive integers, got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ImageDataError(f"image_size must be (H, W) positive integers, got {tuple(image_size)}")
    return h, w


# ----------------------------------------------------------------------------------------------
# labels.csv

def read_labels(labels_csv, class_names=None):
    """-> (rows [(row number, relative path, label string)], class names, label indices (N,) int64).

    Class names: ``class_names`` if given; else, when every label is an integer, 0..max (each must
    have an example); else the sorted distinct names."""
    if not os.path.isfile(labels_csv):
        raise ImageDataError(f"{labels_csv}: no such labels file")
    with open(labels_csv, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ImageDataError(f"{labels_csv}: empty file (expected the header 'filename,label')") from None
        if [h.strip().lower() for h in header[:2]] != ["filename", "label"]:
            raise ImageDataError(f"{labels_csv} row 1: expected the header 'filename,label', got {','.join(header)!r}")
        rows, seen = [], {}
        for n, rec in enumerate(reader, start=2):
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) < 2 or not rec[0].strip() or not rec[1].strip():
                raise ImageDataError(f"{labels_csv} row {n}: expected 'filename,label', got {','.join(rec)!r}")
            name = rec[0].strip().replace("\\", "/")
            if os.path.isabs(name) or ".." in name.split("/"):
                raise ImageDataError(f"{labels_csv} row {n}: {name!r} must be a path inside the image directory")
            if name in seen:
                raise ImageDataError(f"{labels_csv} row {n}: {name!r} is listed again (first at row {seen[name]})")
            seen[name] = n
            rows.append((n, name, rec[1].strip()))
    if not rows:
        raise ImageDataError(f"{labels_csv}: no rows after the header")
    labels = [r[2] for r in rows]
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        index = {c: i for i, c in enumerate(class_names)}
        ids = []
        for n, name, lab in rows:
            if lab in index:
                ids.append(index[lab])
            elif lab.lstrip("-").isdigit() and 0 <= int(lab) < len(class_names):
                ids.append(int(lab))
            else:
                raise ImageDataError(f"{labels_csv} row {n}: label {lab!r} of {name!r} is not one of the "
                                     f"{len(class_names)} classes {class_names[:10]}{'...' if len(class_names) > 10 else ''}")
    elif all(lab.lstrip("-").isdigit() for lab in labels):
        ids = [int(lab) for lab in labels]
        bad = [(r[0], r[1], i) for r, i in zip(rows, ids) if i < 0]
        if bad:
            raise ImageDataError(f"{labels_csv} row {bad[0][0]}: negative class index {bad[0][2]} for {bad[0][1]!r}")
        class_names = [str(i) for i in range(max(ids) + 1)]
    else:
        class_names = sorted(set(labels))
        index = {c: i for i, c in enumerate(class_names)}
        ids = [index[lab] for lab in labels]
    ids = np.asarray(ids, np.int64)
    counts = np.bincount(ids, minlength=len(class_names))
    empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise ImageDataError(f"{labels_csv}: class(es) {empty} have no examples (labels are "
                             f"{'indices 0..' + str(len(class_names) - 1) if class_names[0] == '0' else 'names'}; "
                             "every class needs at least one image)")
    return rows, class_names, ids


# ----------------------------------------------------------------------------------------------
# decoding

def _to_array(im, path):
    """A Pillow image -> (H, W, 3) uint8 RGB, with the module docstring's conversions."""
    from PIL import Image
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.int64)
        if mode != "I" or a.max(initial=0) > 255:
            a = a >> 8
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        im = Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8), "L")
    return np.asarray(im.convert("RGB"), np.uint8)


def decode_image(path, size, where=""):
    """Decode one file to (H, W, 3) uint8 resized to size = (H, W); ImageDataError naming path and row."""
    from PIL import Image, UnidentifiedImageError
    H, W = size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                a = _to_array(im, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDataError(f"{path}{where}: refused, larger than Pillow's pixel limit "
                             f"(Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}): {exc}") from None
    except UnidentifiedImageError:
        raise ImageDataError(f"{path}{where}: not an image file Pillow can read") from None
    except FileNotFoundError:
        raise ImageDataError(f"{path}{where}: listed in labels.csv but the file is missing") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDataError(f"{path}{where}: corrupt or truncated image ({exc})") from None
    if a.shape[:2] != (H, W):
        a = np.asarray(Image.fromarray(a).resize((W, H), Image.BILINEAR), np.uint8)
    return a


def resize_batch(a, size):
    """(B, h, w, C) float in [0, 1] -> (B, H, W, C), bilinear (Pillow, per image and channel)."""
    from PIL import Image
    H, W = size
    out = np.empty((a.shape[0], H, W, a.shape[3]), np.float32)
    for i in range(a.shape[0]):
        for c in range(a.shape[3]):
            out[i, :, :, c] = np.asarray(Image.fromarray(a[i, :, :, c].astype(np.float32), "F").resize((W, H), Image.BILINEAR))
    return out


def _unlisted(images_dir, listed):
    found = []
    for root, _, files in os.walk(images_dir):
        if ".goldbull_cache" in root.split(os.sep):
            continue
        for f in files:
            if f.lower().endswith(IMAGE_EXTENSIONS):
                rel = os.path.relpath(os.path.join(root, f), images_dir).replace(os.sep, "/")
                if rel not in listed:
                    found.append(rel)
    return sorted(found)


# ----------------------------------------------------------------------------------------------
# the dataset

class _LabelledImages:
    """What an image dataset and a view of it share: the class count and the per-class counts."""

    @property
    def num_classes(self):
        return len(self.class_names)

    def class_counts(self):
        return np.bincount(self.labels, minlength=self.num_classes)


class ImageFolderDataset(_LabelledImages):
    """Images listed in labels.csv, decoded once into a memory-mapped uint8 cache.

    Args:
        images_dir: the image directory.
        labels_csv: the labels file (default ``images_dir/labels.csv``).
        image_size: (H, W) every image is resized to.
        channels: 1, 3 or "auto" (gray if every image is gray).
        class_names: the class list (e.g. a trained model's); default from the labels (module docstring).
        cache_dir: where the cache lives (default ``images_dir/.goldbull_cache``, or the system temp
            directory when that is not writable).

    Items: ``(image (H, W, C) uint8, label int)``. Attributes: ``images`` (N, H, W, C) uint8 memmap,
    ``labels`` (N,) int64, ``files``, ``class_names``, ``unlisted`` (images without a row).
    """

    def __init__(self, images_dir, labels_csv=None, image_size=(32, 32), channels="auto", class_names=None,
                 cache_dir=None):
        self.images_dir = os.fspath(images_dir)
        if not os.path.isdir(self.images_dir):
            raise ImageDataError(f"{self.images_dir}: no such image directory")
        self.labels_csv = os.fspath(labels_csv) if labels_csv is not None else os.path.join(self.images_dir, "labels.csv")
        self.image_size = check_image_size(image_size)
        if channels not in ("auto", 1, 3):
            raise ImageDataError(f"channels must be 1, 3 or 'auto', got {channels!r}")
        rows, self.class_names, self.labels = read_labels(self.labels_csv, class_names)
        self.files = [r[1] for r in rows]
        self.rows = [r[0] for r in rows]
        self.unlisted = _unlisted(self.images_dir, set(self.files))
        if self.unlisted:
            log.warning("%d image(s) in %s have no row in %s and are not used: %s%s", len(self.unlisted),
                        self.images_dir, self.labels_csv, ", ".join(self.unlisted[:5]),
                        " ..." if len(self.unlisted) > 5 else "")
        self.images = self._load_cache(channels, cache_dir)
        self.channels = int(self.images.shape[3])

    # ---- cache ----------------------------------------------------------------------------
    def _key(self, channels):
        h = hashlib.sha256()
        h.update(f"v{CACHE_VERSION} {self.image_size} {channels}\n".encode())
        for rel, row in zip(self.files, self.rows):
            path = os.path.join(self.images_dir, rel)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise ImageDataError(f"{path} ({self.labels_csv} row {row}): listed in labels.csv but the file "
                                     "is missing") from None
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:24]

    def _cache_dir(self, cache_dir):
        d = cache_dir or os.path.join(self.images_dir, ".goldbull_cache")
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            pass
        import tempfile
        d = os.path.join(tempfile.gettempdir(), "goldbull_vision_cache")
        os.makedirs(d, exist_ok=True)
        return d

    def _load_cache(self, channels, cache_dir):
        key = self._key(channels)
        d = self._cache_dir(cache_dir)
        path = os.path.join(d, f"images-{key}.npy")
        if os.path.exists(path):
            arr = np.load(path, mmap_mode="r")
            if arr.shape[:3] == (len(self.files),) + self.image_size and arr.dtype == np.uint8:
                self.cache_path, self.decoded = path, 0
                return arr
        H, W = self.image_size
        tmp = f"{path}.tmp{os.getpid()}"
        rgb = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(self.files), H, W, 3))
        gray = True
        try:
            for i, (rel, row) in enumerate(zip(self.files, self.rows)):
                a = decode_image(os.path.join(self.images_dir, rel), self.image_size, f" ({self.labels_csv} row {row})")
                rgb[i] = a
                gray = gray and bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())
            C = 1 if (channels == 1 or (channels == "auto" and gray)) else 3
            if C == 1:
                one = np.lib.format.open_memmap(tmp + "1", mode="w+", dtype=np.uint8, shape=(len(self.files), H, W, 1))
                if gray:
                    one[..., 0] = rgb[..., 0]
                else:  # PIL's "L" weights
                    one[..., 0] = np.clip(np.rint(rgb.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)),
                                          0, 255).astype(np.uint8)
                one.flush()
                del one, rgb
                os.replace(tmp + "1", path)
                os.remove(tmp)
            else:
                rgb.flush()
                del rgb
                os.replace(tmp, path)
        except BaseException:
            for p in (tmp, tmp + "1"):
                if os.path.exists(p):
                    os.remove(p)
            raise
        self.cache_path, self.decoded = path, len(self.files)
        log.info("decoded %d images from %s into %s", len(self.files), self.images_dir, path)
        return np.load(path, mmap_mode="r")

    # ---- dataset protocol -----------------------------------------------------------------
    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return np.asarray(self.images[i]), int(self.labels[i])

    def fingerprint(self):
        return {"type": "ImageFolderDataset", "len": len(self), "cache": os.path.basename(self.cache_path)}

    def split(self, val_fraction=0.2, seed=0, stratified=True):
        """(train, val) :class:`ImageSubset` views: a seeded (stratified by class) split."""
        return split_indices(self, val_fraction, seed, stratified)


class ImageSubset(_LabelledImages):
    """A view of some items of an ImageFolderDataset (``images``/``labels`` index lazily)."""

    def __init__(self, base, indices, name="subset"):
        self.base, self.indices, self.name = base, np.asarray(indices, np.int64), name
        self.labels = base.labels[self.indices]
        self.class_names, self.channels, self.image_size = base.class_names, base.channels, base.image_size

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        j = int(self.indices[i])
        return np.asarray(self.base.images[j]), int(self.base.labels[j])

    def fingerprint(self):
        h = hashlib.sha256(self.indices.tobytes()).hexdigest()[:16]
        return {**self.base.fingerprint(), "subset": self.name, "len": len(self), "indices": h}


def split_indices(ds, val_fraction=0.2, seed=0, stratified=True):
    """Seeded train/validation split of a dataset with ``labels``; stratified keeps each class's share
    (every class with >= 2 examples gets at least one validation example)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    n = len(ds)
    if val_fraction == 0 or n < 2:
        return ImageSubset(ds, np.arange(n), "train"), None
    val = []
    if stratified:
        for c in range(len(ds.class_names)):
            idx = np.flatnonzero(ds.labels == c)
            rng.shuffle(idx)
            k = int(round(len(idx) * val_fraction))
            k = min(max(k, 1 if len(idx) >= 2 else 0), len(idx) - 1) if len(idx) else 0
            val.extend(idx[:k].tolist())
    else:
        perm = rng.permutation(n)
        val = perm[:max(1, int(round(n * val_fraction)))].tolist()
    val = np.sort(np.asarray(val, np.int64))
    train = np.setdiff1d(np.arange(n), val)
    return ImageSubset(ds, train, "train"), ImageSubset(ds, val, "val")
