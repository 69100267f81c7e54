"""Shared fixtures: a small digits folder (scikit-learn's 8x8 digits as PNGs) and image writers."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    pytest.importorskip("sklearn")
    pytest.importorskip("PIL")
    from make_digits_folder import make_digits_folder
    out = tmp_path_factory.mktemp("digits")
    make_digits_folder(str(out))
    return out


def write_png(path, array, mode=None):
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def write_folder(root, images, rows=None, header="filename,label"):
    """images: {relpath: array}; rows: list of (relpath, label) lines (default one per image, label 'a'/'b')."""
    for rel, a in images.items():
        write_png(os.path.join(root, rel), a)
    if rows is None:
        rows = [(rel, "ab"[i % 2]) for i, rel in enumerate(images)]
    with open(os.path.join(root, "labels.csv"), "w") as f:
        if header:
            f.write(header + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")
    return root
