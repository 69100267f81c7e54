"""nn.init: distributions, bounds, fans, and reproducibility from the global generator."""
import math

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn
from goldbull_np.nn import init


def big(*shape):
    return nn.Parameter(np.empty(shape, np.float32))


def test_normal_uniform_constant():
    gb.manual_seed(0)
    w = init.normal_(big(300, 400), 1.0, 0.02)
    assert abs(w.data.mean() - 1.0) < 1e-3 and abs(w.data.std() - 0.02) < 5e-4
    u = init.uniform_(big(300, 400), -2.0, 3.0).data
    assert u.min() >= -2.0 and u.max() < 3.0 and abs(u.mean() - 0.5) < 0.02
    assert (init.zeros_(big(3)).data == 0).all() and (init.ones_(big(3)).data == 1).all()
    assert (init.constant_(big(2, 2), 0.5).data == 0.5).all()
    t = init.trunc_normal_(big(1000), std=1.0, a=-0.5, b=0.5).data
    assert t.min() >= -0.5 and t.max() <= 0.5


def test_xavier_and_kaiming_scales():
    gb.manual_seed(1)
    fan_out, fan_in = 200, 300
    a = math.sqrt(6 / (fan_in + fan_out))
    xu = init.xavier_uniform_(big(fan_out, fan_in)).data
    assert xu.max() <= a and xu.min() >= -a and xu.max() > 0.99 * a
    xn = init.xavier_normal_(big(fan_out, fan_in), gain=2.0).data
    assert abs(xn.std() - 2 * math.sqrt(2 / (fan_in + fan_out))) < 0.02 * xn.std()
    kn = init.kaiming_normal_(big(fan_out, fan_in), nonlinearity="relu").data
    assert abs(kn.std() - math.sqrt(2 / fan_in)) < 0.02 * kn.std()
    ku = init.kaiming_uniform_(big(fan_out, fan_in), mode="fan_out", nonlinearity="relu").data
    bound = math.sqrt(2) * math.sqrt(3 / fan_out)
    assert ku.max() <= bound and ku.max() > 0.99 * bound
    conv = init.kaiming_uniform_(big(8, 4, 3, 3), a=math.sqrt(5)).data  # fan_in = 4*3*3
    assert np.abs(conv).max() <= 1 / math.sqrt(36)
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.xavier_uniform_(big(5))
    assert init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError):
        init.calculate_gain("bogus")


def test_scaled_residual_init():
    gb.manual_seed(2)
    w = init.scaled_residual_normal_(big(256, 256), n_layer=8).data
    assert abs(w.std() - 0.02 / math.sqrt(16)) < 2e-4


def test_reproducible_from_global_seed_or_generator():
    gb.manual_seed(7)
    a = nn.Linear(4, 4).weight.data.copy()
    gb.manual_seed(7)
    b = nn.Linear(4, 4).weight.data.copy()
    np.testing.assert_array_equal(a, b)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(init.normal_(big(5), generator=g1).data, init.normal_(big(5), generator=g2).data)
