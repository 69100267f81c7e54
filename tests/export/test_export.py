"""Export formats, each checked by its real consumer: onnx.checker + onnxruntime (logits and KV-cache decoding
within 1e-4 at several batch/sequence sizes), torch.load(weights_only=True), transformers' GPT-2/Llama classes;
atomic writers that refuse to overwrite, LoRA merged without touching the model, features refused by name."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.export import ModelExporter
from goldbull_np.text import GoldbullText, ModelConfig

ROOT = Path(__file__).resolve().parents[2]
GPT2 = dict()
LLAMA = dict(norm="rmsnorm", mlp="swiglu", position="rope", bias=False, n_head=2, n_kv_head=1, tie_embeddings=False)


def model(seed=0, **kw):
    gb.manual_seed(seed)
    m = GoldbullText(ModelConfig.tiny(vocab_size=50, **kw))
    m.eval()
    return m


def ids(B, T, seed=0):
    return np.random.default_rng(seed).integers(0, 50, (B, T))


def _ort_run(session, m, tokens, past=None, mask=None):
    c = m.config
    B, T = tokens.shape
    S = (0 if past is None else past[0].shape[2]) + T
    feeds = {"input_ids": tokens, "attention_mask": np.ones((B, S), np.int64) if mask is None else mask}
    for i in range(c.n_layer):
        for j, kv in enumerate(("key", "value")):
            feeds[f"past_key_values.{i}.{kv}"] = (np.zeros((B, c.n_kv_head, 0, c.head_dim), np.float32)
                                                  if past is None else past[2 * i + j])
    out = session.run(None, feeds)
    return out[0], out[1:]


@pytest.mark.parametrize("kw", [GPT2, dict(gelu_approximate="tanh", tie_embeddings=False), LLAMA],
                         ids=["gpt2", "gpt2-tanh-untied", "llama-gqa"])
def test_onnx_runs_in_onnxruntime_with_our_logits_and_kv_cache(tmp_path, kw):
    onnx = pytest.importorskip("onnx", reason="the export extra (onnx) is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    m = model(**kw)
    path = ModelExporter().export_onnx(m, tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(os.fspath(path)), full_check=True)
    s = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()][:2] == ["input_ids", "attention_mask"]
    assert [o.name for o in s.get_outputs()][:3] == ["logits", "present.0.key", "present.0.value"]
    for B, T in ((1, 1), (1, 7), (3, 12)):
        x = ids(B, T, seed=B * T)
        want = m(x)[0].data
        got, _ = _ort_run(s, m, x)
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-4
        if T > 2:  # cached decoding: a prefix, then one token at a time
            _, present = _ort_run(s, m, x[:, :T - 2])
            for t in (T - 2, T - 1):
                step, present = _ort_run(s, m, x[:, t:t + 1], past=present)
                assert np.abs(step[:, 0] - want[:, t]).max() < 1e-4


def test_onnx_attention_mask_hides_right_padding(tmp_path):
    pytest.importorskip("onnx", reason="the export extra (onnx) is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    m = model()
    s = ort.InferenceSession(os.fspath(ModelExporter().export_onnx(m, tmp_path / "m.onnx")),
                             providers=["CPUExecutionProvider"])
    x = ids(2, 8)
    mask = np.ones((2, 8), np.int64)
    mask[1, 5:] = 0
    got, _ = _ort_run(s, m, x, mask=mask)
    np.testing.assert_allclose(got[1, :5], m(x[1:, :5])[0].data[0], atol=1e-4)


@pytest.mark.parametrize("kw", [GPT2, LLAMA], ids=["gpt2", "llama"])
def test_pytorch_file_loads_weights_only(tmp_path, kw):
    torch = pytest.importorskip("torch", reason="torch is not installed (optional comparison)")
    m = model(**kw)
    path = ModelExporter().export_pytorch(m, tmp_path / "model.pt")
    for mmap in (False, True):
        sd = torch.load(path, weights_only=True, mmap=mmap)
        ours = m.state_dict()
        tied = set(m.tied_weights())
        assert set(sd) == set(ours) - tied
        for k, v in sd.items():
            assert v.dtype == torch.float32 and np.array_equal(v.numpy(), ours[k]), k


def test_the_pickle_names_only_the_weights_only_globals():
    import pickletools

    from goldbull_np.export.pytorch import state_dict_pickle
    pkl = state_dict_pickle({"a": np.zeros((2, 3), np.float32), "b": np.arange(3), "c": np.array(1.0)})
    globals_ = {arg for op, arg, _ in pickletools.genops(pkl) if op.name == "GLOBAL"}
    assert globals_ == {"torch._utils _rebuild_tensor_v2", "torch FloatStorage", "torch LongStorage",
                        "torch DoubleStorage", "collections OrderedDict"}


@pytest.mark.parametrize("kw", [GPT2, dict(gelu_approximate="tanh", tie_embeddings=False), LLAMA,
                                dict(LLAMA, bias=True, n_kv_head=2, mlp_hidden=40)],
                         ids=["gpt2", "gpt2-tanh", "llama-gqa", "llama-bias"])
def test_hugging_face_directory_loads_in_transformers_with_equal_logits(tmp_path, kw):
    torch = pytest.importorskip("torch", reason="torch is not installed (optional comparison)")
    transformers = pytest.importorskip("transformers", reason="transformers is not installed (optional comparison)")
    m = model(**kw)
    out = ModelExporter().export_huggingface(m, tmp_path / "hf")
    hf, info = transformers.AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert type(hf).__name__ == ("LlamaForCausalLM" if kw.get("norm") == "rmsnorm" else "GPT2LMHeadModel")
    hf.eval()
    x = ids(2, 11)
    with torch.no_grad():
        theirs = hf(torch.from_numpy(x)).logits.numpy()
    assert np.abs(theirs - m(x)[0].data).max() < 1e-4
    back = GoldbullText.from_pretrained(out)  # and our own HF loader reads it back
    back.eval()
    np.testing.assert_array_equal(back(x)[0].data, m(x)[0].data)


def test_hf_refuses_what_neither_architecture_expresses(tmp_path):
    with pytest.raises(ValueError, match="no Hugging Face architecture.*'position': 'rope'"):
        ModelExporter().export_huggingface(model(position="rope"), tmp_path / "x")
    with pytest.raises(ValueError, match="GPT-2 has no grouped-query attention"):
        ModelExporter().export_huggingface(model(n_head=2, n_kv_head=1), tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_writers_refuse_to_overwrite_and_name_missing_directories(tmp_path):
    m = model()
    ex = ModelExporter()
    (tmp_path / "model.pt").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="model.pt: already exists"):
        ex.export_pytorch(m, tmp_path / "model.pt")
    assert (tmp_path / "model.pt").read_bytes() == b"old"
    ex.export_pytorch(m, tmp_path / "model.pt", overwrite=True)
    assert (tmp_path / "model.pt").read_bytes() != b"old"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ex.export_safetensors(m, tmp_path / "no" / "such" / "dir")
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        ex.export(m, tmp_path / "x", "tflite")
    out = ex.export_safetensors(m, tmp_path / "st")
    x = ids(1, 6)
    np.testing.assert_array_equal(GoldbullText.from_pretrained(out)(x)[0].data, m(x)[0].data)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_lora_is_merged_into_the_export_and_the_model_is_left_exactly_as_it_was(tmp_path):
    from goldbull_np.nn.lora import LoRAConfig
    m = model()
    m.add_lora_adapters(LoRAConfig(rank=2, alpha=4, dropout=0.0, target_modules=["q_proj", "v_proj", "up_proj"]))
    rng = np.random.default_rng(0)
    for p in m.get_lora_parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.1
    before = {k: v.copy() for k, v in m.state_dict().items()}
    kinds = [type(mod).__name__ for _, mod in m.named_modules()]
    assert kinds.count("LoRALinear") == 4  # qkv_proj (q and v slices) and up_proj of 2 blocks
    x = ids(2, 9)
    want = m(x)[0].data
    out = ModelExporter().export_safetensors(m, tmp_path / "merged")
    assert all(np.array_equal(v, before[k]) for k, v in m.state_dict().items())  # bit for bit
    assert [type(mod).__name__ for _, mod in m.named_modules()] == kinds
    loaded = GoldbullText.from_pretrained(out)
    np.testing.assert_allclose(loaded(x)[0].data, want, atol=1e-5)


def test_an_unknown_module_is_refused_by_name(tmp_path):
    from goldbull_np.nn.adapters import AdapterConfig
    m = model()
    m.add_adapters_to_layers([0], AdapterConfig(bottleneck_size=4))
    with pytest.raises(ValueError, match="no exporter knows: .*Adapter"):
        ModelExporter().export_onnx(m, tmp_path / "m.onnx")


def test_goldbull_export_command(tmp_path):
    m = model()
    m.save_pretrained(tmp_path / "ck")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = lambda *a: subprocess.run([sys.executable, "-m", "goldbull_np.cli", "export", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, env=env, timeout=120)
    r = run("--checkpoint", tmp_path / "ck", "--format", "pytorch", "--out", tmp_path / "m.pt")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.pt").is_file() and "-> " in r.stdout
    r = run("--checkpoint", tmp_path / "ck", "--format", "pytorch", "--out", tmp_path / "m.pt")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run("--checkpoint", tmp_path / "ck", "--format", "gif", "--out", tmp_path / "m.gif")
    assert r.returncode == 2 and "--format" in r.stderr


def test_gguf_round_trips_through_the_gguf_reader(tmp_path):
    gguf = pytest.importorskip("gguf", reason="the export extra (gguf) is not installed")
    m = model(**LLAMA)
    path = ModelExporter().export_gguf(m, tmp_path / "m.gguf", tokenizer=False)
    r = gguf.GGUFReader(os.fspath(path))
    f = lambda k: r.fields[k].contents()  # noqa: E731
    c = m.config
    assert (f("general.architecture"), f("llama.block_count"), f("llama.embedding_length")) == ("llama", 2, 32)
    assert (f("llama.attention.head_count"), f("llama.attention.head_count_kv"), f("llama.context_length")) == \
        (c.n_head, c.n_kv_head, c.block_size)
    got = {t.name: np.asarray(t.data) for t in r.tensors}
    assert len(got) == 2 + 1 + 9 * c.n_layer
    sd = m.state_dict()
    np.testing.assert_array_equal(got["token_embd.weight"], sd["embed_tokens.weight"])
    np.testing.assert_array_equal(got["blk.1.ffn_down.weight"], sd["layers.1.mlp.down_proj.weight"])
    H, D = c.n_head, c.head_dim
    from goldbull_np.export.gguf import permute_rotary
    np.testing.assert_array_equal(got["blk.0.attn_q.weight"], permute_rotary(sd["layers.0.attn.qkv_proj.weight"][:H * D], H))
    with pytest.raises(ValueError, match="only Llama-architecture"):
        ModelExporter().export_gguf(model(), tmp_path / "gpt2.gguf")
    from goldbull_np.data import CharTokenizer
    with pytest.raises(ValueError, match="CharTokenizer has no GGUF form"):
        ModelExporter().export_gguf(m, tmp_path / "c.gguf", tokenizer=CharTokenizer.from_text("abc"))


def test_the_rotary_permutation_turns_rotate_half_into_ggml_interleaved_pairs():
    """llama.cpp rotates pairs (2i, 2i+1); we (and HF) rotate (i, i + D/2). With the permuted projection,
    GGML's rotation of the permuted rows equals the permutation of our rotation, at every position."""
    from goldbull_np.export.gguf import permute_rotary
    rng = np.random.default_rng(0)
    H, D, C, theta = 2, 8, 5, 10000.0
    W, x = rng.standard_normal((H * D, C)), rng.standard_normal(C)
    inv = theta ** (-np.arange(0, D, 2) / D)  # (D/2,)
    for pos in (0, 3, 17):
        ang = pos * inv
        q = (W @ x).reshape(H, D)
        ours = q * np.cos(np.r_[ang, ang]) + np.concatenate([-q[:, D // 2:], q[:, :D // 2]], 1) * np.sin(np.r_[ang, ang])
        qp = (permute_rotary(W, H) @ x).reshape(H, D)
        a, b = qp[:, 0::2], qp[:, 1::2]
        ggml = np.empty_like(qp)
        ggml[:, 0::2], ggml[:, 1::2] = a * np.cos(ang) - b * np.sin(ang), a * np.sin(ang) + b * np.cos(ang)
        np.testing.assert_allclose(ggml, permute_rotary(ours.reshape(H * D, 1), H).reshape(H, D), atol=1e-12)


def test_gguf_carries_a_byte_level_bpe_tokenizer(tmp_path):
    gguf = pytest.importorskip("gguf", reason="the export extra (gguf) is not installed")
    pytest.importorskip("tokenizers", reason="the bpe extra (tokenizers) is not installed")
    from goldbull_np.data import BPETokenizer
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 50)
    tok = BPETokenizer.train([corpus], vocab_size=300, special_tokens={"eos": "<|endoftext|>"})
    gb.manual_seed(0)
    m = GoldbullText(ModelConfig.tiny(**{**LLAMA, "vocab_size": tok.vocab_size}))
    path = ModelExporter().export_gguf(m, tmp_path / "t.gguf", tokenizer=tok)
    r = gguf.GGUFReader(os.fspath(path))
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    assert r.fields["tokenizer.ggml.model"].contents() == "gpt2" and len(tokens) == tok.vocab_size
    assert r.fields["tokenizer.ggml.merges"].contents() and "<|endoftext|>" in tokens
    assert r.fields["tokenizer.ggml.eos_token_id"].contents() == tok.eos_token_id


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_directory_loads_back_with_from_pretrained(tmp_path, bits):
    from goldbull_np.nn.quantized import QuantizedLinear
    m = model(n_embd=64)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    out = ModelExporter().export_quantized(m, tmp_path / f"q{bits}", bits)
    assert all(np.array_equal(v, before[k]) for k, v in m.state_dict().items())  # the model is unchanged
    q = GoldbullText.from_pretrained(out)
    q.eval()
    assert sum(isinstance(mod, QuantizedLinear) and mod.bits == bits for mod in q.modules()) == 2 * 4
    x = ids(2, 12)
    want, got = m(x)[0].data, q(x)[0].data
    assert np.abs(got - want).max() / np.abs(want).max() < (0.03 if bits == 8 else 0.3)
    fp32 = ModelExporter().export_safetensors(m, tmp_path / "fp32")
    size = lambda d: os.path.getsize(Path(d) / "model.safetensors")  # noqa: E731
    assert size(out) < (0.35 if bits == 8 else 0.25) * size(fp32)
    gen = q.generate(x[:1, :3], max_new_tokens=5, temperature=0)  # the KV-cache path runs quantised too
    assert gen.shape == (1, 8)
    q.save_pretrained(tmp_path / "again")  # and a loaded quantised model saves as one
    np.testing.assert_array_equal(GoldbullText.from_pretrained(tmp_path / "again")(x)[0].data, got)
    with pytest.raises(ValueError, match="bits must be 4 or 8"):
        ModelExporter().export_quantized(m, tmp_path / "q3", 3)


def test_a_corrupted_int8_directory_names_the_tensor(tmp_path):
    from goldbull_np.io import load_safetensors, save_safetensors
    out = ModelExporter().export_quantized(model(), tmp_path / "q", 8)
    path = out / "model.safetensors"
    good = load_safetensors(path)
    name = "layers.0.attn.qkv_proj"
    for key, bad in ((f"{name}.scale", good[f"{name}.scale"][:-1]),
                     (f"{name}.qweight", good[f"{name}.qweight"].astype(np.float32))):
        save_safetensors({**good, key: bad}, path)
        with pytest.raises(ValueError, match=f"tensor '{key}' has (shape|dtype)"):
            GoldbullText.from_pretrained(out)


@pytest.mark.parametrize("arch", ["resnet", "vit"])
def test_vision_models_export_to_onnx_with_our_logits(tmp_path, arch):
    onnx = pytest.importorskip("onnx", reason="the export extra (onnx) is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from goldbull_np.vision import GoldbullVision, VisionConfig
    cfg = VisionConfig.resnet_small(num_classes=10) if arch == "resnet" else VisionConfig.vit_tiny(num_classes=7)
    gb.manual_seed(0)
    m = GoldbullVision(cfg)
    rng = np.random.default_rng(0)
    for mod in m.modules():  # eval-mode batch norm with statistics that matter
        if type(mod).__name__ == "BatchNorm2d":
            mod.running_mean.data[...] = rng.standard_normal(mod.num_features).astype(np.float32) * 0.1
            mod.running_var.data[...] = 1 + rng.random(mod.num_features).astype(np.float32)
    m.eval()
    path = ModelExporter().export_onnx(m, tmp_path / "v.onnx")
    onnx.checker.check_model(onnx.load(os.fspath(path)), full_check=True)
    s = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()] == ["pixel_values"] and [o.name for o in s.get_outputs()] == ["logits"]
    sizes = [tuple(cfg.image_size)] + ([(40, 24)] if arch == "resnet" else [])  # ResNet: any image size
    for B, (H, W) in zip((1, 3), sizes * 2):
        x = rng.standard_normal((B, cfg.in_channels, H, W)).astype(np.float32)
        np.testing.assert_allclose(s.run(None, {"pixel_values": x})[0], m(x)[0].data, atol=1e-4)


def test_group_norm_has_no_onnx_form_and_is_named(tmp_path):
    pytest.importorskip("onnx", reason="the export extra (onnx) is not installed")
    from goldbull_np.vision import GoldbullVision, VisionConfig
    m = GoldbullVision(VisionConfig.resnet_tiny(num_classes=3, norm="group"))
    with pytest.raises(ValueError, match="net.stem.1 is a GroupNorm"):
        ModelExporter().export_onnx(m, tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_the_bert_encoder_exports_to_onnx_with_padding_masked(tmp_path):
    pytest.importorskip("onnx", reason="the export extra (onnx) is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from goldbull_np.text.bert import BertConfig, BertModel
    gb.manual_seed(0)
    m = BertModel(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, max_position_embeddings=40, hidden_dropout_prob=0.0))
    m.eval()
    s = ort.InferenceSession(os.fspath(ModelExporter().export_onnx(m, tmp_path / "b.onnx")),
                             providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for B, T in ((1, 5), (3, 9)):
        x, tt = rng.integers(0, 60, (B, T)), rng.integers(0, 2, (B, T))
        mask = np.ones((B, T), np.int64)
        mask[-1, T - 3:] = 0  # right padding in the last row
        got = s.run(None, {"input_ids": x, "attention_mask": mask, "token_type_ids": tt})[0]
        want = m(x, attention_mask=mask, token_type_ids=tt).data
        np.testing.assert_allclose(got[mask.astype(bool)], want[mask.astype(bool)], atol=1e-4)
