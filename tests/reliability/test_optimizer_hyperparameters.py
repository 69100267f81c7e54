"""Item 6: a NaN/inf hyperparameter is refused where it enters (constructor, a param group, a loaded
state dict), as torch checks them (``not 0.0 <= lr``), naming the field; parameters never go NaN."""
import math

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.optim import SGD, Adam, AdamW

BAD = [math.nan, math.inf, -math.inf, -1.0]


def _param():
    p = gb.nn.Parameter(np.ones((3,), np.float32))
    p.grad = np.ones((3,), np.float32)
    return p


@pytest.mark.parametrize("opt", [Adam, AdamW])
@pytest.mark.parametrize("field", ["lr", "eps", "weight_decay"])
@pytest.mark.parametrize("value", BAD)
def test_adam_refuses_non_finite(opt, field, value):
    with pytest.raises(ValueError, match=field):
        opt([_param()], **{field: value})


@pytest.mark.parametrize("opt", [Adam, AdamW])
@pytest.mark.parametrize("betas", [(math.nan, 0.999), (0.9, math.nan), (0.9, math.inf), (1.0, 0.9), (-0.1, 0.9)])
def test_adam_refuses_bad_betas(opt, betas):
    with pytest.raises(ValueError, match=r"betas\["):
        opt([_param()], betas=betas)


@pytest.mark.parametrize("field", ["lr", "momentum", "dampening", "weight_decay"])
@pytest.mark.parametrize("value", BAD)
def test_sgd_refuses_non_finite(field, value):
    with pytest.raises(ValueError, match=field):
        SGD([_param()], **{field: value})


@pytest.mark.parametrize("opt", [Adam, AdamW, SGD])
def test_param_group_override_is_checked(opt):
    with pytest.raises(ValueError, match=r"parameter group 1: invalid learning rate"):
        opt([{"params": [_param()]}, {"params": [_param()], "lr": math.nan}])


@pytest.mark.parametrize("opt", [Adam, AdamW, SGD])
def test_loaded_state_dict_is_checked_before_anything_changes(opt):
    p = _param()
    o = opt([p], lr=0.1)
    sd = o.state_dict()
    sd["param_groups"][0]["lr"] = math.nan
    with pytest.raises(ValueError, match=r"loaded parameter group 0: invalid learning rate"):
        o.load_state_dict(sd)
    assert o.param_groups[0]["lr"] == 0.1
    o.step()
    assert np.isfinite(p.data).all()


@pytest.mark.parametrize("opt", [Adam, AdamW, SGD])
def test_valid_edges_accepted(opt):
    kw = {"lr": 0.0, "weight_decay": 0.0}
    if opt is not SGD:
        kw.update(eps=0.0, betas=(0.0, 0.0))
    opt([_param()], **kw)
