"""Shared fixtures: a small digits folder (scikit-learn's 8x8 digits as PNGs)."""
import os
import sys

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
