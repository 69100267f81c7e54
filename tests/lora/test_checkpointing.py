"""Activation checkpointing (goldbull_np.nn.checkpoint): same gradients as without it, including the
frozen-base case where no input of the checkpointed call requires grad (LoRA / adapter parameters
live inside it) and with dropout (the generator is replayed for the recompute)."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn
from goldbull_np.nn.adapters import AdapterConfig
from goldbull_np.nn.checkpoint import Checkpoint, checkpoint
from goldbull_np.nn.lora import LoRAConfig
from goldbull_np.text import GoldbullText, ModelConfig


def grads_of(build, ckpt, seed=5):
    m = build()
    if ckpt:
        m.enable_gradient_checkpointing(ckpt)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 65, (2, 10))
    y = np.roll(x, -1, axis=1)
    gb.manual_seed(seed)  # the dropout masks
    logits, loss = m(x, y)
    loss.backward()
    after = gb.get_rng_state()
    return ({n: p.grad.copy() for n, p in m.named_parameters() if p.grad is not None}, loss.item(), after,
            logits.grad_fn)


def lora_model():
    gb.manual_seed(0)
    m = GoldbullText(ModelConfig.tiny(n_layer=3, dropout=0.1, n_kv_head=1, position="rope", norm="rmsnorm",
                                      mlp="swiglu", bias=False))
    m.add_lora_adapters(LoRAConfig(rank=4, dropout=0.2, target_modules=["q_proj", "v_proj", "down_proj"]))
    for i, p in enumerate(m.get_lora_parameters()):
        p.data[...] = np.random.default_rng(i).normal(0, 0.1, p.shape)
    return m


def adapter_model():
    gb.manual_seed(0)
    m = GoldbullText(ModelConfig.tiny(n_layer=3, dropout=0.1))
    m.add_adapters_to_layers([0, 2], AdapterConfig(bottleneck_size=4, dropout=0.1))
    m.freeze_base_parameters()
    return m


def full_model():
    gb.manual_seed(0)
    return GoldbullText(ModelConfig.tiny(n_layer=3, dropout=0.1))


@pytest.mark.parametrize("build", [lora_model, adapter_model, full_model])
@pytest.mark.parametrize("every", [1, 2])
def test_checkpointed_gradients_equal_plain_gradients(build, every):
    plain, loss0, rng0, _ = grads_of(build, 0)
    ck, loss1, rng1, node = grads_of(build, every)
    assert loss0 == loss1
    assert rng0 == rng1  # the recompute replays the generator and restores it
    assert set(ck) == set(plain) and plain
    for n in plain:
        np.testing.assert_allclose(ck[n], plain[n], rtol=1e-5, atol=1e-7, err_msg=n)
    if build is not full_model:  # frozen base: no gradient reaches any frozen weight
        assert all("lora" in n or "adapter" in n for n in plain)


def test_checkpoint_node_is_recorded_when_no_input_requires_grad():
    m = lora_model()
    m.enable_gradient_checkpointing()
    seen = set()
    stack = [m(np.zeros((1, 4), np.int64), np.zeros((1, 4), np.int64))[1].grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or isinstance(fn, gb.Tensor) or fn in seen:
            continue
        seen.add(fn)
        stack.extend(fn.next_functions)
    assert sum(isinstance(f, Checkpoint) for f in seen) == 3


def test_checkpoint_function_with_explicit_params_and_stray_params():
    gb.manual_seed(0)
    lin = nn.Linear(4, 3)
    lin.weight.requires_grad_(False)  # frozen weight, trainable bias
    x = gb.randn(2, 4)  # requires no grad

    def f(t):  # a plain function: its parameter cannot be found from it
        return (nn.functional.linear(t, lin.weight, lin.bias).tanh() ** 2).sum(-1)

    ref = f(x)
    ref.sum().backward()
    want = lin.bias.grad.copy()
    lin.bias.grad = None
    out = checkpoint(f, x, params=[lin.bias])
    np.testing.assert_allclose(out.data, ref.data)
    out.sum().backward()
    np.testing.assert_allclose(lin.bias.grad, want, rtol=1e-6)
    # an input that requires grad, and a parameter used inside but not passed: both still get gradients
    lin.bias.grad = None
    xr = gb.randn(2, 4, requires_grad=True)
    f(xr).sum().backward()
    want_x, want_b = xr.grad.copy(), lin.bias.grad.copy()
    xr.grad = lin.bias.grad = None
    checkpoint(f, xr).sum().backward()
    np.testing.assert_allclose(xr.grad, want_x, rtol=1e-6)
    np.testing.assert_allclose(lin.bias.grad, want_b, rtol=1e-6)


def test_no_graph_under_no_grad_and_in_eval_generation():
    m = lora_model()
    m.enable_gradient_checkpointing()
    with gb.no_grad():
        logits, _ = m(np.zeros((1, 4), np.int64))
    assert logits.grad_fn is None
    m.eval()
    out = m.generate(np.zeros((1, 2), np.int64), 3, temperature=0)
    assert out.shape == (1, 5)
