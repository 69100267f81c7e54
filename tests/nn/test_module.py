"""Module: registration, traversal, state_dict / load_state_dict, modes, dtype, repr; containers."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight  # tied
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.register_buffer("running", np.zeros(4, dtype=np.float32))
        self.register_buffer("table", np.arange(3, dtype=np.float32), persistent=False)

    def forward(self, ids):
        return self.head(self.body(self.emb(ids)) * self.scale)


def test_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "emb.weight", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]
    # the tied weight appears once, under its first name, unless duplicates are requested
    assert "head.weight" in [n for n, _ in net.named_parameters(remove_duplicate=False)]
    assert [n for n, _ in net.named_modules()] == ["", "emb", "body", "body.0", "body.1", "body.2", "head"]
    assert [n for n, _ in net.named_children()] == ["emb", "body", "head"]
    assert [n for n, _ in net.named_buffers()] == ["running", "table"]
    assert net.get_submodule("body.2") is net.body[2]
    assert net.get_parameter("body.0.bias") is net.body[0].bias
    assert net.num_parameters() == 1 + 40 + 32 + 8 + 32 + 4
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        net.nope


def test_assignment_rules():
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        lin.weight = np.zeros((3, 2))
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    del lin.weight
    assert list(lin.parameters()) == []

    class Bad(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="super"):
        Bad()


def test_state_dict_keys_and_roundtrip():
    gb.manual_seed(0)
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == ["scale", "running", "emb.weight", "body.0.weight", "body.0.bias", "body.2.weight",
                        "body.2.bias", "head.weight"]  # non-persistent "table" left out
    assert sd["emb.weight"] is a.emb.weight.data  # the arrays themselves, as torch's share storage
    w_before = b.emb.weight.data
    b.load_state_dict(sd)
    assert b.emb.weight.data is w_before  # copied in place
    ids = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(a(ids).data, b(ids).data)
    # tied weight stored once still loads (its alias is present)
    b2 = Net()
    del sd["head.weight"]
    assert b2.load_state_dict(sd).missing_keys == []
    np.testing.assert_array_equal(b2.head.weight.data, a.emb.weight.data)


def test_load_errors_list_every_problem():
    net = Net()
    sd = dict(net.state_dict())
    del sd["body.0.bias"]
    del sd["scale"]
    sd["extra.weight"] = np.zeros(2)
    sd["body.2.weight"] = np.zeros((5, 5), np.float32)
    before = net.body[0].weight.data.copy()
    sd["body.0.weight"] = np.zeros((8, 4), np.float32)
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    for s in ('"body.0.bias"', '"scale"', '"extra.weight"', "size mismatch for body.2.weight",
              "(5, 5)", "(4, 8)", "Missing key(s)", "Unexpected key(s)"):
        assert s in msg
    np.testing.assert_array_equal(net.body[0].weight.data, before)  # nothing copied on error
    # strict=False reports instead of raising, but shape mismatches still raise
    del sd["body.2.weight"]
    res = net.load_state_dict(sd, strict=False)
    assert set(res.missing_keys) == {"body.0.bias", "scale", "body.2.weight"}
    assert res.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(net.body[0].weight.data, 0)


def test_train_eval_zero_grad_apply_requires_grad():
    net = Net()
    assert net.training and net.body[1].training
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    out = net(np.array([[1, 2]]))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[:2] == ["Embedding", "Linear"]
    net.body.requires_grad_(False)
    assert net.num_parameters(trainable_only=True) == 1 + 40
    assert not net.body[0].weight.requires_grad


def test_to_double_keeps_parameter_identity():
    net = Net()
    w = net.emb.weight
    net.double()
    assert w is net.emb.weight is net.head.weight
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.running.dtype == np.float64
    assert net(np.array([[1]])).dtype == np.float64
    net.to("cpu", gb.float32)
    assert net.emb.weight.dtype == np.float32
    with pytest.raises(ValueError, match="cpu"):
        net.to(device="cuda")


def test_repr_tree():
    r = repr(Net())
    assert r.startswith("Net(\n  (emb): Embedding(10, 4)\n  (body): Sequential(\n    (0): Linear(in_features=4")
    assert "(1): GELU(approximate='none')" in r
    assert r.endswith("(head): Linear(in_features=4, out_features=10, bias=False)\n)")


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and layers[-1] is layers[2]
    layers.append(nn.ReLU())
    assert [n for n, _ in layers.named_children()] == ["0", "1", "2", "3"]
    assert len(list(layers.parameters())) == 6
    with pytest.raises(IndexError):
        layers[4]
    d = nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.Tanh()})
    assert list(d.keys()) == ["a", "b"] and "a" in d
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]
    seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Identity())
    x = gb.randn(2, 3)
    np.testing.assert_allclose(seq(x).data, np.maximum(seq[0](x).data, 0))
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2


def test_parameter():
    p = nn.Parameter(np.zeros(3, np.float32))
    assert p.requires_grad and p.is_leaf and isinstance(p, gb.Tensor)
    t = gb.randn(2)
    assert nn.Parameter(t).data is t.data
    assert repr(p).startswith("Parameter containing:")
    assert not nn.Parameter(np.zeros(2), requires_grad=False).requires_grad


def test_replacing_a_modulelist_entry_keeps_its_position():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Tanh(), nn.ReLU()])
    layers[0] = nn.Identity()
    assert [type(m).__name__ for m in layers] == ["Identity", "Tanh", "ReLU"]
    lin = nn.Linear(2, 3)
    lin.weight = nn.Parameter(np.zeros((3, 2), np.float32))
    assert list(lin.state_dict()) == ["weight", "bias"]
