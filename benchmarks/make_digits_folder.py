"""Write scikit-learn's 8x8 digits (1,797 images, no download) as PNG files plus labels.csv.

    python benchmarks/make_digits_folder.py OUT     ->  OUT/<digit>/<index>.png, OUT/labels.csv

Pixel values 0..16 are scaled to 0..255 (grayscale "L" PNGs); labels.csv has the header
filename,label with the digit as the label and the path relative to OUT.
"""
import argparse
import csv
import os

import numpy as np


def make_digits_folder(out):
    from PIL import Image
    from sklearn.datasets import load_digits
    d = load_digits()
    os.makedirs(out, exist_ok=True)
    rows = []
    for i, (img, y) in enumerate(zip(d.images, d.target)):
        rel = f"{int(y)}/{i:04d}.png"
        os.makedirs(os.path.join(out, str(int(y))), exist_ok=True)
        a = np.clip(np.rint(img * (255.0 / 16.0)), 0, 255).astype(np.uint8)
        Image.fromarray(a, "L").save(os.path.join(out, rel))
        rows.append((rel, int(y)))
    with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label"])
        w.writerows(rows)
    return len(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="output directory")
    args = p.parse_args(argv)
    n = make_digits_folder(args.out)
    print(f"wrote {n} images and labels.csv to {args.out}")


if __name__ == "__main__":
    main()
