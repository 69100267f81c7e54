"""LR schedules: values at key steps, chaining, optimizer updates, state_dict round trips."""
import json
import math

import numpy as np
import pytest

from goldbull_np import nn, optim
from goldbull_np.optim.lr_scheduler import (ConstantScheduler, CosineScheduler, LambdaLR, LinearScheduler,
                                            WarmupScheduler, get_scheduler)


def make_opt(lr=1.0, groups=1):
    ps = [nn.Parameter(np.zeros(2, np.float32)) for _ in range(groups)]
    return optim.SGD([{"params": [p]} for p in ps], lr=lr)


def test_single_schedules_at_key_steps():
    w = WarmupScheduler(4, 0.1)
    assert [w.lr_at(s) for s in (0, 1, 3, 4, 100)] == pytest.approx([0.025, 0.05, 0.1, 0.1, 0.1])
    c = CosineScheduler(100, 1.0, 0.1)
    assert c.lr_at(0) == 1.0
    assert c.lr_at(50) == pytest.approx(0.55)
    assert c.lr_at(100) == pytest.approx(0.1) and c.lr_at(500) == pytest.approx(0.1)
    assert c.lr_at(25) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))
    lin = LinearScheduler(10, 1.0)
    assert [lin.lr_at(s) for s in (0, 5, 10, 20)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert ConstantScheduler(0.3).lr_at(1234) == 0.3


def test_warmup_chain_cosine():
    s = WarmupScheduler(10, 1e-3).chain(CosineScheduler(110, 1e-3, 1e-4))
    assert s.lr_at(0) == pytest.approx(1e-4)
    assert s.lr_at(9) == pytest.approx(1e-3)
    assert s.lr_at(10) == pytest.approx(1e-3)  # decay starts where warmup ends
    assert s.lr_at(60) == pytest.approx(5.5e-4)  # halfway through [10, 110]
    assert s.lr_at(110) == pytest.approx(1e-4) and s.lr_at(200) == pytest.approx(1e-4)
    with pytest.raises(TypeError):
        CosineScheduler(10, 1.0).chain(ConstantScheduler(1.0))


def test_scheduler_drives_optimizer_and_round_trips():
    opt = make_opt(groups=2)
    s = get_scheduler("cosine", opt, base_lr=1.0, total_steps=20, warmup_steps=5, min_lr=0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]  # lr_at(0) on attach
    lrs = []
    for _ in range(12):
        opt.step()
        lrs.append(s.step())
    assert lrs[:4] == pytest.approx([0.4, 0.6, 0.8, 1.0])
    assert opt.param_groups[1]["lr"] == pytest.approx(s.lr_at(12)) == s.get_last_lr()[0]
    sd = json.loads(json.dumps(s.state_dict()))
    opt2 = make_opt(groups=2)
    s2 = get_scheduler("cosine", opt2, base_lr=1.0, total_steps=20, warmup_steps=5, min_lr=0.0)
    s2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert [s2.step() for _ in range(8)] == [s.step() for _ in range(8)]
    assert s2.state_dict() == s.state_dict()
    with pytest.raises(ValueError, match="is for a"):
        LinearScheduler(5, 1.0).load_state_dict(ConstantScheduler(1.0).state_dict())


def test_get_scheduler_variants():
    assert isinstance(get_scheduler("linear", base_lr=1.0, total_steps=10), LinearScheduler)
    assert get_scheduler("constant", base_lr=0.5, warmup_steps=2).lr_at(0) == 0.25
    with pytest.raises(ValueError, match="total_steps"):
        get_scheduler("cosine", base_lr=1.0)
    with pytest.raises(ValueError, match="unknown"):
        get_scheduler("step", base_lr=1.0)


def test_lambda_lr():
    opt = make_opt(lr=0.5, groups=2)
    opt.param_groups[1]["lr"] = 2.0
    s = LambdaLR(opt, lambda step: 0.5 ** step)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 2.0]
    s.step()
    s.step()
    assert [g["lr"] for g in opt.param_groups] == [0.125, 0.5]
    sd = s.state_dict()
    assert sd == {"type": "LambdaLR", "last_step": 2, "base_lrs": [0.5, 2.0]}
    opt2 = make_opt(groups=2)
    s2 = LambdaLR(opt2, lambda step: 0.5 ** step)
    s2.load_state_dict(sd)
    assert [g["lr"] for g in opt2.param_groups] == [0.125, 0.5]
