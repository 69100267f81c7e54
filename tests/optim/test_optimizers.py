"""Optimizers: three steps against the hand-written formulas, torch semantics for skipped
parameters, AdamW's flat buffer, and state_dict round trips (also through safetensors + JSON)."""
import json

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn

RNG = np.random.default_rng(0)
W0 = [RNG.standard_normal((3, 4)), RNG.standard_normal(5)]
GRADS = [[RNG.standard_normal(w.shape) for w in W0] for _ in range(3)]


def make_params(dtype):
    return [nn.Parameter(w.astype(dtype)) for w in W0]


def run(opt_fn, dtype=np.float32, grads=GRADS):
    ps = make_params(dtype)
    opt = opt_fn(ps)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = None if g is None else g.astype(dtype)
        opt.step()
    return ps, opt


def adam_ref(lr, b1, b2, eps, wd, decoupled):
    out = []
    for i, w in enumerate(W0):
        p, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
        for t, gs in enumerate(GRADS, start=1):
            g = gs[i]
            if decoupled:
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decoupled", [True, False])
def test_adam_adamw_three_steps(dtype, decoupled):
    hp = dict(lr=0.1, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.3)
    cls = gb.optim.AdamW if decoupled else gb.optim.Adam
    ps, opt = run(lambda ps: cls(ps, **hp), dtype)
    ref = adam_ref(0.1, 0.8, 0.95, 1e-6, 0.3, decoupled)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(p.data, r, rtol=tol, atol=tol)
    assert all(opt.state[p]["step"] == 3 for p in ps)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_three_steps(nesterov):
    lr, mom, wd, damp = 0.1, 0.9, 0.01, 0.0
    ps, _ = run(lambda ps: gb.optim.SGD(ps, lr=lr, momentum=mom, weight_decay=wd, nesterov=nesterov), np.float64)
    for i, w in enumerate(W0):
        p, buf = w.copy(), None
        for gs in GRADS:
            d = gs[i] + wd * p
            buf = d.copy() if buf is None else mom * buf + (1 - damp) * d
            p = p - lr * (d + mom * buf if nesterov else buf)
        np.testing.assert_allclose(ps[i].data, p, rtol=1e-13)
    plain, _ = run(lambda ps: gb.optim.SGD(ps, lr=0.5), np.float64)
    np.testing.assert_allclose(plain[1].data, W0[1] - 0.5 * sum(g[1] for g in GRADS), rtol=1e-13)
    with pytest.raises(ValueError, match="Nesterov"):
        gb.optim.SGD(make_params(np.float32), nesterov=True)


def test_param_without_grad_is_skipped_and_its_step_does_not_advance():
    grads = [GRADS[0], [None, GRADS[1][1]], [GRADS[2][0], None]]
    ps, opt = run(lambda ps: gb.optim.AdamW(ps, lr=0.1), np.float32, grads)
    ps64, opt64 = run(lambda ps: gb.optim.AdamW(ps, lr=0.1), np.float64, grads)  # per-parameter path
    assert [opt.state[p]["step"] for p in ps] == [2, 2] == [opt64.state[p]["step"] for p in ps64]
    for p, q in zip(ps, ps64):
        np.testing.assert_allclose(p.data, q.data, rtol=2e-6, atol=2e-6)


def test_adamw_groups_with_different_betas_and_closure():
    def make(ps):
        return gb.optim.AdamW([{"params": ps[:1], "betas": (0.5, 0.6)}, {"params": ps[1:], "eps": 1e-3}], lr=0.1)

    ps, _ = run(make, np.float32)
    ps64, _ = run(make, np.float64)
    for p, q in zip(ps, ps64):
        np.testing.assert_allclose(p.data, q.data, rtol=2e-6, atol=2e-6)
    p = nn.Parameter(np.ones(2, np.float32))
    opt = gb.optim.AdamW([p])

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0 and np.all(p.data < 1)


def test_adamw_flat_buffer_views_and_fused_equals_unfused():
    ps = make_params(np.float32)
    opt = gb.optim.AdamW([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01, "weight_decay": 0.0}], lr=0.1)
    assert ps[0].data.base is opt._flat and ps[1].data.base is opt._flat
    ref = make_params(np.float32)
    ref_opt = gb.optim.AdamW([{"params": ref[:1]}, {"params": ref[1:], "lr": 0.01, "weight_decay": 0.0}],
                             lr=0.1, fused=False)
    for k, gs in enumerate(GRADS):
        if k == 0:
            for p, q, g in zip(ps, ref, gs):
                p.grad, q.grad = g.astype(np.float32), g.astype(np.float32)
        else:  # grads accumulated straight into the flat buffer
            opt.zero_grad(set_to_none=False)
            ref_opt.zero_grad(set_to_none=False)
            assert ps[0].grad.base is opt._flat_grad and not ps[0].grad.any()
            for p, q, g in zip(ps, ref, gs):
                x = gb.tensor(g.astype(np.float32))
                (p * x).sum().backward()
                (q * x).sum().backward()
        opt.step()
        ref_opt.step()
    for p, q in zip(ps, ref):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-6, atol=1e-7)
    # something rebinding p.data (e.g. a loader) is copied back into the buffer on the next step
    ps[1].data = np.zeros(5, np.float32)
    ps[1].grad = np.ones(5, np.float32)
    ps[0].grad = None
    opt.step()
    assert ps[1].data.base is opt._flat and np.all(ps[1].data < 0)


def _user_loop(set_to_none, keep=None, steps=3, maximize=False, fused=True):
    """zero_grad -> backward -> step over GRADS (the second parameter unused on step 1); ``keep``
    holds what the caller keeps of p.grad between steps ("array" or "view")."""
    ps = make_params(np.float32)
    opt = gb.optim.AdamW([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01, "maximize": maximize}], lr=0.1,
                           fused=fused)
    kept = []
    for k, gs in enumerate(GRADS[:steps]):
        opt.zero_grad(set_to_none=set_to_none)
        if set_to_none:
            assert all(p.grad is None for p in ps)  # torch's semantics, whatever is lent
        for i, (p, g) in enumerate(zip(ps, gs)):
            if k == 0 and i == 1:
                continue  # no gradient: not updated, grad stays None
            x = gb.tensor(g.astype(np.float32))
            (p * x).sum().backward()
        if k == 0 and set_to_none:
            assert ps[1].grad is None
        if keep is not None:
            g = ps[0].grad if keep == "array" else ps[0].grad[1:]
            kept.append((g, g.copy()))
        opt.step()
    return ps, opt, kept


@pytest.mark.parametrize("maximize", [False, True])
def test_adamw_set_to_none_writes_into_the_flat_buffer_and_equals_the_zeroing_loop(maximize):
    ps, opt, _ = _user_loop(True, maximize=maximize)
    ref, _, _ = _user_loop(True, maximize=maximize, fused=False)  # per-parameter NumPy formulas
    for p, q in zip(ps, ref):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-6, atol=1e-7)
    # the lent views: backward wrote straight into the buffer, step() had nothing to copy
    assert ps[0].grad.base is opt.flat_gradient
    assert (ps[1].grad.base is opt.flat_gradient) is (not maximize)  # maximizing groups are not lent to
    # accumulating two backward passes after zero_grad(set_to_none=True) sums them
    opt.zero_grad()
    x = gb.tensor(np.ones((3, 4), np.float32))
    (ps[0] * x).sum().backward()
    (ps[0] * x).sum().backward()
    np.testing.assert_array_equal(ps[0].grad, np.full((3, 4), 2, np.float32))


@pytest.mark.parametrize("keep", ["array", "view"])
def test_adamw_never_lends_a_gradient_the_caller_still_holds(keep):
    ps, opt, kept = _user_loop(True, keep=keep)
    for g, snapshot in kept:  # a later backward did not write into what the caller kept
        np.testing.assert_array_equal(g, snapshot)
    ref, _, _ = _user_loop(True, fused=False)
    for p, q in zip(ps, ref):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-6, atol=1e-7)


def _save_load_roundtrip(sd, tmp_path):
    """The trainer's format: arrays in safetensors, everything else in JSON."""
    from safetensors.numpy import load_file, save_file

    arrays, meta = {}, {"state": {}, "param_groups": sd["param_groups"]}
    for idx, st in sd["state"].items():
        meta["state"][idx] = {}
        for k, v in st.items():
            if isinstance(v, np.ndarray):
                arrays[f"{idx}.{k}"] = v
            else:
                meta["state"][idx][k] = v
    save_file(arrays, str(tmp_path / "opt.safetensors"))
    meta = json.loads(json.dumps(meta))
    for name, arr in load_file(str(tmp_path / "opt.safetensors")).items():
        idx, k = name.split(".")
        meta["state"][idx][k] = arr
    return meta


@pytest.mark.parametrize("make", [
    lambda ps: gb.optim.AdamW([{"params": ps[:1]}, {"params": ps[1:], "weight_decay": 0.0}], lr=0.05),
    lambda ps: gb.optim.Adam(ps, lr=0.05, weight_decay=0.1),
    lambda ps: gb.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
])
def test_state_dict_round_trip_is_bit_exact(make, tmp_path):
    ps, opt = run(make, np.float32, GRADS[:2])
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1] and isinstance(sd["param_groups"][0]["params"][0], int)
    loaded = _save_load_roundtrip(sd, tmp_path)
    qs = [nn.Parameter(p.data.copy()) for p in ps]
    opt2 = make(qs)
    opt2.load_state_dict(loaded)
    sd2 = opt2.state_dict()
    assert sd2["param_groups"] == sd["param_groups"]
    for i in sd["state"]:
        for k, v in sd["state"][i].items():
            np.testing.assert_array_equal(sd2["state"][i][k], v)
            assert type(sd2["state"][i][k]) is type(v)
    for p, q, g in zip(ps, qs, GRADS[2]):
        p.grad = q.grad = g.astype(np.float32)
    opt.step()
    opt2.step()
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_errors():
    ps, opt = run(lambda ps: gb.optim.AdamW(ps), np.float32, GRADS[:1])
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameters"):
        gb.optim.AdamW(make_params(np.float32)[:1]).load_state_dict(sd)
    sd["state"][0]["exp_avg"] = np.zeros(7, np.float32)
    with pytest.raises(ValueError, match="shape"):
        gb.optim.AdamW(make_params(np.float32)).load_state_dict(sd)


def test_zero_grad_and_groups_validation():
    ps = make_params(np.float32)
    opt = gb.optim.SGD(ps, lr=0.1)
    for p in ps:
        p.grad = np.ones(p.shape, np.float32)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in ps)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)
    with pytest.raises(ValueError, match="more than one"):
        gb.optim.SGD([{"params": ps}, {"params": ps[:1]}])
    with pytest.raises(ValueError, match="empty"):
        gb.optim.SGD([])
    with pytest.raises(ValueError, match="learning rate"):
        gb.optim.AdamW(ps, lr=-1)


def test_param_groups_helper():
    """The one weight-decay rule (nanoGPT's): matrices and embedding tables decay, vectors do not; names in
    no_decay are excluded on top; frozen parameters are left out; a tied weight is listed once."""
    gb.manual_seed(0)
    model = gb.text.GoldbullText(gb.ModelConfig.tiny(vocab_size=11))
    decay, no_decay = gb.optim.param_groups(model, weight_decay=0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert sorted({names[id(p)].split(".")[-2] for p in decay["params"]}) == [
        "down_proj", "embed_positions", "embed_tokens", "o_proj", "qkv_proj", "up_proj"]
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    nd = {names[id(p)] for p in no_decay["params"]}
    assert {"norm.weight", "layers.0.attn.qkv_proj.bias", "layers.0.attn_norm.weight"} <= nd
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    d2, nd2 = gb.optim.param_groups(model, 0.1, no_decay=("embed",))
    assert {names[id(p)] for p in nd2["params"]} == nd | {"embed_tokens.weight", "embed_positions.weight"}
    model.embed_tokens.weight.requires_grad = False
    d3, _ = gb.optim.param_groups(model, 0.1)
    assert len(d3["params"]) == len(decay["params"]) - 1  # frozen: in neither group
    opt = gb.optim.AdamW(gb.optim.param_groups(model, 0.1), lr=1e-3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_matches_torch_when_available():
    torch = pytest.importorskip("torch")
    for name, kw in [("AdamW", dict(lr=0.1, weight_decay=0.1)), ("Adam", dict(lr=0.1, weight_decay=0.1)),
                     ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1))]:
        ps, _ = run(lambda ps: getattr(gb.optim, name)(ps, **kw), np.float64)
        tp = [torch.nn.Parameter(torch.tensor(w)) for w in W0]
        topt = getattr(torch.optim, name)(tp, **kw)
        for gs in GRADS:
            for t, g in zip(tp, gs):
                t.grad = torch.tensor(g)
            topt.step()
        for p, t in zip(ps, tp):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_adamw_zero_grad_in_place_zeroes_every_gradient_once():
    """set_to_none=False: float32 gradients become the zeroed flat buffer's views; a float64 parameter (outside
    the buffer) keeps its own array, zeroed in place."""
    p32, p64 = nn.Parameter(np.ones((2, 3), np.float32)), nn.Parameter(np.ones(4))
    opt = gb.optim.AdamW([p32, p64], lr=0.1)
    p32.grad, p64.grad = np.full((2, 3), 5, np.float32), np.full(4, 5.0)
    own64 = p64.grad
    opt.zero_grad(set_to_none=False)
    assert p32.grad.base is opt.flat_gradient and p64.grad is own64
    np.testing.assert_array_equal(p32.grad, np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(p64.grad, np.zeros(4))
