"""FineTuner / FineTuningConfig (goldbull_np.text.finetune) and ``goldbull finetune``."""
import os

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.nn.lora import LoRALinear
from goldbull_np.text import FineTuner, FineTuningConfig, GoldbullText, ModelConfig
from goldbull_np.train.config import ConfigError
from goldbull_np.data import TokenDataset

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def base_model(seed=0, **over):
    gb.manual_seed(seed)
    kw = dict(n_layer=3, block_size=16, init_std=0.1)
    kw.update(over)
    return GoldbullText(ModelConfig.tiny(**kw))


def dataset(n=600, block=16, seed=0):
    ids = np.random.default_rng(seed).integers(0, 65, n // 4).repeat(4)  # learnable: each token repeats
    return TokenDataset.from_array(ids, block)


def run(config, **model_over):
    m = base_model(**model_over)
    tuner = FineTuner(m, config)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    state = tuner.fine_tune(dataset())
    return m, tuner, before, state


def test_config_validation():
    with pytest.raises(ConfigError, match="target_layers"):
        FineTuningConfig(target_layers=["embeddings"])
    with pytest.raises(ConfigError, match="lora_rank"):
        FineTuningConfig(lora_rank=-1)
    with pytest.raises(ConfigError, match="more than the model's 3 layers"):
        FineTuner(base_model(), FineTuningConfig(freeze_layers=4))


def test_lora_finetuning_respects_freeze_layers_and_target_layers():
    cfg = FineTuningConfig(learning_rate=1e-2, batch_size=4, max_steps=12, freeze_layers=1, target_layers=["attention"],
                           lora_rank=4, lora_alpha=8, lora_dropout=0.0)
    m, tuner, before, state = run(cfg, n_kv_head=1, position="rope", norm="rmsnorm", mlp="swiglu", bias=False)
    assert state.step == 12
    assert not isinstance(m.layers[0].attn.qkv_proj, LoRALinear)  # frozen block: no adapters
    assert isinstance(m.layers[1].attn.qkv_proj, LoRALinear) and isinstance(m.layers[2].attn.o_proj, LoRALinear)
    assert not isinstance(m.layers[1].mlp.up_proj, LoRALinear)  # "feedforward" not targeted
    assert tuner.num_trainable_parameters() == sum(p.data.size for p in m.get_lora_parameters())
    after = m.state_dict()
    for k, v in before.items():
        if "lora" not in k:
            np.testing.assert_array_equal(after[k], v, err_msg=k)  # the base did not move
    assert np.abs(m.layers[2].attn.qkv_proj.lora["v_proj"].lora_B.data).max() > 0  # adapters trained
    ev = tuner.trainer.evaluate(dataset(seed=0))
    assert ev.loss < 4.1  # below the uniform log(65) = 4.17


def test_gradient_checkpointing_gives_the_same_training_with_a_frozen_base():
    kw = dict(learning_rate=1e-2, batch_size=4, max_steps=4, lora_rank=4, lora_dropout=0.1, seed=7)
    m0, *_ = run(FineTuningConfig(**kw, gradient_checkpointing=False), dropout=0.1)
    m1, t1, *_ = run(FineTuningConfig(**kw, gradient_checkpointing=True), dropout=0.1)
    assert m1.gradient_checkpointing and not m0.gradient_checkpointing
    p0, p1 = m0.get_lora_parameters(), m1.get_lora_parameters()
    assert len(p0) == len(p1) == 3 * 6 * 2  # layers x (q, k, v, o, up, down) x (A, B)
    assert any(np.abs(p.data).max() > 0 for p in p1[1::2])  # B's moved off zero: gradients arrived
    for a, b in zip(p0, p1):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-4, atol=1e-6)


def test_full_finetuning_freezes_embeddings_and_first_blocks():
    cfg = FineTuningConfig(learning_rate=1e-3, batch_size=4, max_steps=3, freeze_layers=1,
                           target_layers=["feedforward"], lora_rank=0)
    m, tuner, before, _ = run(cfg)
    after = m.state_dict()
    for k, v in before.items():
        moved = not np.array_equal(after[k], v)
        should = k.startswith(("layers.1.mlp", "layers.2.mlp", "norm."))
        assert moved == should, k
    assert tuner.trainer.optimizer._flat.size == tuner.num_trainable_parameters()


def test_save_model_writes_merged_model_and_adapters(tmp_path):
    from goldbull_np.data import CharTokenizer
    tok = CharTokenizer.from_text(TEXT)
    cfg = FineTuningConfig(learning_rate=1e-2, batch_size=4, max_steps=3, lora_rank=4, lora_dropout=0.0)
    m = base_model()
    tuner = FineTuner(m, cfg, tokenizer=tok)
    tuner.fine_tune(dataset())
    out = tuner.save_model(tmp_path / "ft")
    files = set(os.listdir(out))
    assert {"config.json", "model.safetensors", "adapter_config.json", "adapter_model.safetensors"} <= files
    assert "goldbull_tokenizer.json" in files
    ids = np.random.default_rng(1).integers(0, 65, (2, 10))
    m.eval()
    want = m(ids)[0].data
    assert isinstance(m.layers[0].attn.qkv_proj, LoRALinear) and not m.layers[0].attn.qkv_proj.merged
    merged = GoldbullText.from_pretrained(out)  # a plain GoldbullText: no LoRA tensors in model.safetensors
    np.testing.assert_allclose(merged(ids)[0].data, want, atol=1e-5, rtol=0)
    again = base_model()
    again.load_lora(out)
    again.eval()
    np.testing.assert_allclose(again(ids)[0].data, want, atol=1e-6, rtol=0)


def test_cli_finetune(tmp_path):
    from goldbull_np.data import CharTokenizer
    from goldbull_np.cli import build_parser
    tok = CharTokenizer.from_text(TEXT)
    ck = tmp_path / "base"
    gb.manual_seed(0)
    GoldbullText(ModelConfig.tiny(vocab_size=tok.vocab_size, block_size=16)).save_pretrained(ck)
    tok.save(ck)
    data = tmp_path / "data.txt"
    data.write_text(TEXT)
    parser = build_parser()
    args = parser.parse_args(["finetune", "--checkpoint", str(ck), "--data", str(data), "--lora-rank", "4",
                              "--out", str(tmp_path / "out"), "--max-steps", "3", "--no-progress",
                              "--target-layers", "attention"])
    assert args.func(args) == 0
    tuned = GoldbullText.from_pretrained(tmp_path / "out")
    base = GoldbullText.from_pretrained(ck)
    assert not np.array_equal(tuned.layers[0].attn.qkv_proj.weight.data, base.layers[0].attn.qkv_proj.weight.data)
    np.testing.assert_array_equal(tuned.layers[0].mlp.up_proj.weight.data, base.layers[0].mlp.up_proj.weight.data)
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()
    bad = parser.parse_args(["finetune", "--checkpoint", str(ck), "--data", str(tmp_path / "nope.txt"),
                             "--out", str(tmp_path / "o2")])
    assert bad.func(bad) == 2


def test_cli_finetune_from_a_hugging_face_directory(tmp_path):
    import sys
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from goldbull_np.cli import build_parser
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hf"))
    import hf_helpers as H
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=280, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf = tmp_path / "hf"
    cfg = H.llama_config(vocab=tk.get_vocab_size())
    H.write_checkpoint(hf, cfg, H.llama_weights(cfg))
    tk.save(str(hf / "tokenizer.json"))
    data = tmp_path / "data.txt"
    data.write_text(TEXT)
    parser = build_parser()
    args = parser.parse_args(["finetune", "--checkpoint", str(hf), "--data", str(data), "--lora-rank", "2",
                              "--out", str(tmp_path / "out"), "--max-steps", "2", "--block-size", "8",
                              "--gradient-checkpointing", "--no-progress"])
    assert args.func(args) == 0
    out = GoldbullText.from_pretrained(tmp_path / "out")  # written in goldbull's own format
    assert out.config.mlp == "swiglu" and out.config.n_kv_head == 2
    assert (tmp_path / "out" / "tokenizer.json").exists() or (tmp_path / "out" / "goldbull_tokenizer.json").exists()
