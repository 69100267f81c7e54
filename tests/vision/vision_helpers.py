"""Helpers for tests/vision: write PNG files and image folders with a labels.csv."""
import os


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
