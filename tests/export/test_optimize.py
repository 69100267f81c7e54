"""ModelOptimizer: passes run on a copy (the input untouched); exact passes keep the outputs; each pass
reports what it changed; the optimised model saves and loads back."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn
from goldbull_np.export import FuseLinearLayers, ModelOptimizer, PruneUnusedLayers, QuantizeWeights
from goldbull_np.nn.lora import LoRAConfig
from goldbull_np.text import GoldbullText, ModelConfig


def _lm(**kw):
    gb.manual_seed(0)
    m = GoldbullText(ModelConfig.tiny(vocab_size=50, n_layer=3, **kw))
    m.eval()
    return m


def test_lora_idle_adapters_and_unreached_modules_go_and_the_outputs_stay():
    m = _lm()
    m.add_lora_adapters(LoRAConfig(rank=2, alpha=4, dropout=0.0, target_modules=["q_proj", "o_proj"]))
    for name, p in m.named_parameters():
        if "lora_B" in name and "o_proj" in name:
            p.data[...] = np.float32(0.02)  # o_proj adapters do something; q_proj ones (B = 0) nothing
    m.unused_head = nn.Linear(32, 3)
    x = np.random.default_rng(1).integers(0, 50, (2, 9))
    want = m(x)[0].data.copy()
    state = {k: v.copy() for k, v in m.state_dict().items()}
    opt = ModelOptimizer().add_pass(PruneUnusedLayers()).add_pass(FuseLinearLayers())
    out = opt.optimize(m, measure=False)
    assert all(np.array_equal(v, state[k]) for k, v in m.state_dict().items()) and hasattr(m, "unused_head")
    prune, fuse = opt.reports
    assert "removed 3 LoRA adapter(s) whose B is zero" in prune.changes[0] and "unused_head" in prune.changes[1]
    assert fuse.changes == ["merged 3 LoRA-wrapped Linear(s) into their base weights"]
    assert not any("lora" in k for k in out.state_dict()) and not hasattr(out, "unused_head")
    assert prune.parameters_after < prune.parameters_before
    np.testing.assert_allclose(out(x)[0].data, want, atol=1e-5)


def test_linear_pairs_and_conv_batchnorm_in_a_sequential_fold():
    gb.manual_seed(0)
    seq = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    x = gb.randn(3, 6)
    want = seq(x).data
    opt = ModelOptimizer().add_pass(FuseLinearLayers())
    out = opt.optimize(seq, sample_input=x, measure=False)
    assert opt.reports[0].changes == ["folded .0 and .1 into one Linear"]
    np.testing.assert_allclose(out(x).data, want, rtol=1e-5, atol=1e-6)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    conv[1].running_mean.data[...] = np.float32([0.1, -0.2, 0.3, 0.0])
    conv[1].running_var.data[...] = np.float32([1.5, 0.5, 2.0, 1.0])
    conv[1].weight.data[...] = np.float32([1.0, 2.0, 0.5, -1.0])
    conv.eval()
    img = gb.randn(2, 3, 5, 5)
    want = conv(img).data
    out = ModelOptimizer().add_pass(FuseLinearLayers()).optimize(conv, sample_input=img, measure=False)
    assert type(out[1]).__name__ == "Identity"
    np.testing.assert_allclose(out(img).data, want, rtol=1e-5, atol=1e-5)


def test_quantize_and_prune_blocks_report_and_save(tmp_path):
    m = _lm()
    opt = ModelOptimizer().add_pass(PruneUnusedLayers(layers=[2])).add_pass(QuantizeWeights(8))
    out = opt.optimize(m, decode_tokens=8)
    prune, quant = opt.reports
    assert out.config.n_layer == 2 and len(out.layers) == 2 and m.config.n_layer == 3
    assert quant.bytes_after < 0.5 * quant.bytes_before and quant.max_rel_output_change < 0.05
    assert all(r.tokens_per_second_before > 0 and r.tokens_per_second_after > 0 for r in opt.reports)
    assert "int8" in str(quant) and "tok/s" in str(quant)
    out.save(tmp_path / "deploy")
    back = GoldbullText.from_pretrained(tmp_path / "deploy")
    x = np.random.default_rng(2).integers(0, 50, (1, 7))
    np.testing.assert_array_equal(back(x)[0].data, out(x)[0].data)
    with pytest.raises(FileExistsError):
        out.save(tmp_path / "deploy")
    with pytest.raises(ValueError, match="do not leave at least one"):
        ModelOptimizer().add_pass(PruneUnusedLayers(layers=[0, 1, 2])).optimize(m, measure=False)
    with pytest.raises(TypeError, match="add_pass takes"):
        ModelOptimizer().add_pass(object())


def test_an_exact_pass_that_changes_the_outputs_is_an_error():
    class Breaks(FuseLinearLayers):
        def apply(self, model):
            model.norm.weight.data[...] *= 2
            return ["doubled the final norm"]

    with pytest.raises(RuntimeError, match="Breaks changed the outputs"):
        ModelOptimizer().add_pass(Breaks()).optimize(_lm(), measure=False)


def test_optimize_attention_reuses_one_kv_cache_and_keeps_grouped_heads():
    from goldbull_np.export import OptimizeAttention
    m = _lm(n_head=2, n_kv_head=1)
    opt = ModelOptimizer().add_pass(OptimizeAttention(batch_sizes=(1, 2)))
    out = opt.optimize(m, decode_tokens=8)
    changes = opt.reports[0].changes
    assert "3 attention module(s) on the fused kernel, 2 query heads over 1 K/V heads (grouped, kept grouped)" in changes
    assert any("preallocated KV caches for batch size(s) [1, 2]" in c for c in changes)
    first = out.new_kv_cache(1)
    assert out.new_kv_cache(1) is first and first.pos == 0 and out.new_kv_cache(3) is not first
    x = np.random.default_rng(3).integers(0, 50, (2, 5))
    a = out.generate(x, max_new_tokens=6, temperature=0).data
    b = out.generate(x, max_new_tokens=6, temperature=0).data  # the reused cache starts empty each call
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, m.generate(x, max_new_tokens=6, temperature=0).data)
    assert m.new_kv_cache(1) is not m.new_kv_cache(1)  # the original model is unchanged


def test_a_resnets_batch_norms_fold_into_its_convolutions():
    from goldbull_np.vision import GoldbullVision, VisionConfig
    gb.manual_seed(0)
    m = GoldbullVision(VisionConfig.resnet_tiny(num_classes=4))
    rng = np.random.default_rng(0)
    for mod in m.modules():
        if type(mod).__name__ == "BatchNorm2d":
            mod.running_mean.data[...] = rng.standard_normal(mod.num_features).astype(np.float32) * 0.1
            mod.running_var.data[...] = 1 + rng.random(mod.num_features).astype(np.float32)
    m.eval()
    x = gb.randn(2, m.config.in_channels, *m.config.image_size)
    opt = ModelOptimizer().add_pass(FuseLinearLayers())
    out = opt.optimize(m, sample_input=x, measure=False)
    n_bn = sum(type(mod).__name__ == "BatchNorm2d" for mod in m.modules())
    assert n_bn > 2 and sum(type(mod).__name__ == "BatchNorm2d" for mod in out.modules()) == 0
    assert len(opt.reports[0].changes) == n_bn
    np.testing.assert_allclose(out(x)[0].data, m(x)[0].data, rtol=1e-4, atol=1e-5)


def test_named_attention_heads_are_removed_and_a_zeroed_head_changes_nothing(tmp_path):
    m = _lm(n_head=4, n_embd=32)  # head_dim 8
    for i in range(3):  # head 2 of every block contributes nothing: its o_proj columns are zero
        m.layers[i].attn.o_proj.weight.data[:, 16:24] = 0
    x = np.random.default_rng(5).integers(0, 50, (2, 10))
    want = m(x)[0].data
    opt = ModelOptimizer().add_pass(PruneUnusedLayers(heads={0: [2], 1: [2], 2: [2]}))
    out = opt.optimize(m, measure=False)
    assert out.config.n_head == 3 and out.config.head_dim == 8 and m.config.n_head == 4
    assert out.layers[0].attn.qkv_proj.weight.shape == (3 * 3 * 8, 32) and out.layers[0].attn.o_proj.weight.shape == (32, 24)
    np.testing.assert_allclose(out(x)[0].data, want, atol=1e-5)
    np.testing.assert_allclose(out.generate(x[:1, :4], max_new_tokens=4, temperature=0).data,
                               m.generate(x[:1, :4], max_new_tokens=4, temperature=0).data)
    out.save(tmp_path / "pruned")
    np.testing.assert_allclose(GoldbullText.from_pretrained(tmp_path / "pruned")(x)[0].data, want, atol=1e-5)
    assert "removed 1 attention head(s) from each of 3 blocks (n_head 4 -> 3)" in opt.reports[0].changes
    with pytest.raises(ValueError, match="same number of heads in every one of the 3 blocks"):
        ModelOptimizer().add_pass(PruneUnusedLayers(heads={0: [1]})).optimize(m, measure=False)
    with pytest.raises(ValueError, match="grouped K/V heads"):
        ModelOptimizer().add_pass(PruneUnusedLayers(heads={0: [1], 1: [1], 2: [1]})).optimize(
            _lm(n_head=4, n_kv_head=2), measure=False)
