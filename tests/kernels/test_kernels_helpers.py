"""The comparison helper every backend test goes through must fail on a structural mismatch."""
import numpy as np
import pytest

from kernels_helpers import assert_all_close
from test_kernels_backends import _same

A, B = np.ones(3, np.float32), np.zeros(2, np.float32)


def test_backend_tests_use_the_strict_helper():
    assert _same is assert_all_close


@pytest.mark.parametrize("got,want", [
    ((A,), (A, B)),                 # a short tuple: zip would have compared only the first item
    ((A, B, B), (A, B)),            # a long one
    ((A, None), (A, B)),            # None where the reference has an array
    ((A, B), (A, None)),            # an array where the reference has None
    (A, (A, B)),                    # an array where the reference returns a tuple
    ((A,), A),                      # and the other way round
], ids=["short", "long", "none-for-array", "array-for-none", "array-for-tuple", "tuple-for-array"])
def test_structure_mismatches_fail(got, want):
    with pytest.raises(AssertionError):
        _same(got, want, np.float32, "kernel")


def test_matching_outputs_pass():
    _same((A, None, B), (A.copy(), None, B.copy()), np.float32, "kernel")
    _same(A, A.copy(), np.float32, "kernel")
