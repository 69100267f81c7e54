"""``Evaluator``: scores a model on a dataset with named metrics, grouped in families.

    metrics = Evaluator().evaluate_text_generation(model, test_dataset, ["bleu", "rouge", "perplexity", "bertscore"])
    print(metrics.bleu, metrics.rouge_l, metrics.perplexity, metrics.bert_score)

A metric is a function ``fn(ctx) -> {field: value}`` registered under a name and a family
(:func:`register_metric`). The text family ("text") holds bleu, chrf, rouge, perplexity and bertscore;
the code metrics (syntax, compilation, pass@k) will join as the "code" family with their own
``evaluate_code_generation`` on the same context: inputs, references, generations, model, tokenizer.

The dataset of ``evaluate_text_generation`` is the input/output format: a JSON/JSONL file path
(``{"examples": [{"input", "output"}]}`` or rows), or a list of ``{"input": str, "output": str |
[str, ...]}`` dicts / ``(input, output)`` pairs; the model generates from each input and the
generations are scored against the outputs (several outputs = several references). A text file or a
list of strings is a set of documents: only perplexity applies to it.
"""
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

from ._inputs import check_predictions

_METRICS: Dict[str, "Metric"] = {}


@dataclass
class Metric:
    name: str
    family: str
    fn: Callable
    needs_generations: bool = True  # scores generations against references (else: the model on the data)
    help: str = ""


def register_metric(name, family, fn, needs_generations=True, help=""):
    """Add a metric ``fn(ctx: EvalContext) -> dict`` to ``family`` under ``name``."""
    _METRICS[name] = Metric(name, family, fn, needs_generations, help)


def known_metrics(family=None) -> List[str]:
    return sorted(n for n, m in _METRICS.items() if family is None or m.family == family)


def resolve_metrics(metrics, family=None) -> List[str]:
    """The metric names, checked: unknown ones raise a ValueError listing the known ones."""
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names = [_ALIASES.get(str(m).lower(), str(m).lower()) for m in metrics]
    if not names:
        raise ValueError(f"no metric named; known metrics: {', '.join(known_metrics(family))}")
    bad = [m for m in names if m not in _METRICS or (family and _METRICS[m].family != family)]
    if bad:
        raise ValueError(f"unknown metric(s) {bad}; known metrics: {', '.join(known_metrics(family))}")
    return list(dict.fromkeys(names))


_ALIASES = {"bert_score": "bertscore", "bert-score": "bertscore", "ppl": "perplexity", "sacrebleu": "bleu",
            "rouge_l": "rouge", "rougel": "rouge"}


@dataclass
class GenerationConfig:
    """How the model generates from each input (greedy by default, KV cache on)."""
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    batch_size: int = 8
    seed: int = 0


@dataclass
class EvalContext:
    model: object
    tokenizer: object
    inputs: List[str]
    references: List[List[str]]
    documents: List[str]
    evaluator: "Evaluator"
    generations: Optional[List[str]] = None


@dataclass
class TextGenerationMetrics:
    """Results of :meth:`Evaluator.evaluate_text_generation` (None where a metric was not asked)."""
    bleu: Optional[float] = None
    chrf: Optional[float] = None
    rouge1: Optional[float] = None
    rouge2: Optional[float] = None
    rouge_l: Optional[float] = None
    rouge_lsum: Optional[float] = None
    perplexity: Optional[float] = None
    perplexity_tokens: Optional[int] = None
    bert_score: Optional[float] = None
    bert_score_precision: Optional[float] = None
    bert_score_recall: Optional[float] = None
    examples: int = 0
    details: dict = field(default_factory=dict)
    generations: Optional[List[str]] = None

    def to_dict(self, with_generations=False):
        d = asdict(self)
        if not with_generations:
            d.pop("generations")
        return d

    def table(self):
        """``[(metric, value)]`` of the metrics computed."""
        skip = {"details", "generations", "examples"}
        return [(k, v) for k, v in asdict(self).items() if k not in skip and v is not None]


class Evaluator:
    """Scores models with the registered metrics.

    Args:
        generation: a GenerationConfig (or its fields as keywords: max_new_tokens, temperature, ...).
        bertscore_model_dir: the BERTScore encoder directory (default all-MiniLM-L6-v2).
        bertscore_layers: BERTScore's num_layers (default: the encoder's last layer).
        bertscore_idf: idf weighting in BERTScore.
        rouge_stemmer: Porter stemming in ROUGE (rouge-score's use_stemmer).
        perplexity_stride: the sliding window's stride (default block_size // 2).
    """

    def __init__(self, generation=None, *, bertscore_model_dir=None, bertscore_layers=None, bertscore_idf=False,
                 rouge_stemmer=True, perplexity_stride=None, **generation_kw):
        if generation is None:
            generation = GenerationConfig(**generation_kw)
        elif generation_kw:
            raise TypeError("pass either generation= or its fields as keywords, not both")
        self.generation = generation
        self.bertscore_model_dir = bertscore_model_dir
        self.bertscore_layers = bertscore_layers
        self.bertscore_idf = bertscore_idf
        self.rouge_stemmer = rouge_stemmer
        self.perplexity_stride = perplexity_stride

    # ---- text ----------------------------------------------------------------------------------
    def evaluate_text_generation(self, model, dataset, metrics=("bleu", "rouge", "perplexity", "bertscore"),
                                 tokenizer=None) -> TextGenerationMetrics:
        """Generate from each input and score against the outputs; perplexity of the outputs given
        the inputs (or of the documents, for a text dataset).

        Args:
            model: a GoldbullText (generate + forward).
            dataset: see the module doc (path, list of dicts/pairs, or list of strings).
            metrics: names (or "bleu,rouge"): bleu, chrf, rouge, perplexity, bertscore.
            tokenizer: default ``model.tokenizer``.
        """
        names = resolve_metrics(metrics, "text")
        tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        if tok is None:
            raise ValueError("evaluate_text_generation: pass tokenizer= (the model has none)")
        inputs, refs, docs = load_eval_data(dataset)
        if docs is not None:
            bad = [n for n in names if _METRICS[n].needs_generations]
            if bad:
                raise ValueError(f"metric(s) {bad} need input/output examples; a text dataset (documents) "
                                 "supports only perplexity")
        ctx = EvalContext(model, tok, inputs or [], refs or [], docs or [], self)
        if any(_METRICS[n].needs_generations for n in names):
            from .perplexity import generate
            g = self.generation
            ctx.generations = generate(model, tok, ctx.inputs, max_new_tokens=g.max_new_tokens,
                                       temperature=g.temperature, top_k=g.top_k, top_p=g.top_p,
                                       batch_size=g.batch_size, seed=g.seed)
        return self._collect(names, ctx)

    def evaluate_texts(self, predictions, references, metrics=("bleu", "rouge", "bertscore")) -> TextGenerationMetrics:
        """Score given predictions against references (no model): the generation metrics only."""
        names = resolve_metrics(metrics, "text")
        bad = [n for n in names if not _METRICS[n].needs_generations]
        if bad:
            raise ValueError(f"metric(s) {bad} need a model; use evaluate_text_generation")
        from ._inputs import check_pairs
        preds, refs = check_pairs(predictions, references)
        ctx = EvalContext(None, None, [""] * len(preds), refs, [], self, generations=preds)
        return self._collect(names, ctx)

    def _collect(self, names, ctx):
        out = TextGenerationMetrics(examples=len(ctx.inputs) or len(ctx.documents), generations=ctx.generations)
        for n in names:
            for k, v in _METRICS[n].fn(ctx).items():
                if k == "details":
                    out.details[n] = v
                else:
                    setattr(out, k, v)
        return out


def load_eval_data(dataset):
    """``(inputs, references, documents)``: input/output examples (documents None) or documents
    (inputs/references None)."""
    import os
    if isinstance(dataset, (str, os.PathLike)):
        from ..data import ExampleReader, PromptExample, TextExample
        rows = list(ExampleReader(dataset))
        if not rows:
            raise ValueError(f"{dataset}: no examples")
        if all(isinstance(r, TextExample) for r in rows):
            return None, None, [r.text for r in rows]
        if not all(isinstance(r, PromptExample) for r in rows):
            raise ValueError(f"{dataset}: evaluation needs input/output examples (or text lines for perplexity)")
        return [r.input for r in rows], [[r.output] for r in rows], None
    if isinstance(dataset, dict) and "examples" in dataset:
        dataset = dataset["examples"]
    if not isinstance(dataset, (list, tuple)) or not dataset:
        raise ValueError("dataset must be a file path or a non-empty list of examples")
    if all(isinstance(x, str) for x in dataset):
        return None, None, check_predictions(list(dataset), "documents")
    if all(hasattr(x, "text") and not hasattr(x, "output") for x in dataset):  # data.TextExample
        return None, None, check_predictions([x.text for x in dataset], "documents")
    inputs, refs = [], []
    for i, x in enumerate(dataset):
        if isinstance(x, dict):
            if "input" not in x or "output" not in x:
                raise ValueError(f"dataset[{i}]: expected keys 'input' and 'output', got {sorted(x)}")
            inp, out = x["input"], x["output"]
        elif isinstance(x, (list, tuple)) and len(x) == 2:
            inp, out = x
        elif hasattr(x, "input") and hasattr(x, "output"):  # goldbull_np.data.PromptExample
            inp, out = x.input, x.output
        else:
            raise TypeError(f"dataset[{i}]: expected an {{'input', 'output'}} dict or an (input, output) pair, "
                            f"got {type(x).__name__}")
        inputs.append(inp)
        refs.append(out)
    from ._inputs import check_pairs
    inputs = check_predictions(inputs, "inputs")
    _, refs = check_pairs(inputs, refs)
    return inputs, refs, None


# ---- the text family -------------------------------------------------------------------------------
def _m_bleu(ctx):
    from .bleu import bleu
    r = bleu(ctx.generations, ctx.references)
    return {"bleu": r.score, "details": {"counts": r.counts, "totals": r.totals, "bp": r.bp,
                                         "sys_len": r.sys_len, "ref_len": r.ref_len}}


def _m_chrf(ctx):
    from .bleu import chrf
    return {"chrf": chrf(ctx.generations, ctx.references).score}


def _m_rouge(ctx):
    from .rouge import rouge
    r = rouge(ctx.generations, ctx.references, use_stemmer=ctx.evaluator.rouge_stemmer)
    return {"rouge1": r["rouge1"].fmeasure, "rouge2": r["rouge2"].fmeasure, "rouge_l": r["rougeL"].fmeasure,
            "rouge_lsum": r["rougeLsum"].fmeasure, "details": {k: v._asdict() for k, v in r.items()}}


def _m_perplexity(ctx):
    from .perplexity import perplexity
    ev = ctx.evaluator
    if ctx.documents:
        r = perplexity(ctx.model, ctx.documents, ctx.tokenizer, stride=ev.perplexity_stride)
    else:  # the outputs given the inputs (first reference)
        r = perplexity(ctx.model, [rs[0] for rs in ctx.references], ctx.tokenizer, prompts=ctx.inputs,
                       stride=ev.perplexity_stride)
    return {"perplexity": r.perplexity, "perplexity_tokens": r.tokens, "details": {"loss": r.loss}}


def _m_bertscore(ctx):
    from .bertscore import bert_score
    ev = ctx.evaluator
    r = bert_score(ctx.generations, ctx.references, model_dir=ev.bertscore_model_dir,
                   num_layers=ev.bertscore_layers, idf=ev.bertscore_idf)
    return {"bert_score": r.mean_f1, "bert_score_precision": r.mean_precision, "bert_score_recall": r.mean_recall,
            "details": {"num_layers": r.num_layers, "idf": r.idf}}


register_metric("bleu", "text", _m_bleu, help="corpus BLEU (sacrebleu's 13a, exp smoothing), 0-100")
register_metric("chrf", "text", _m_chrf, help="corpus chrF (sacrebleu's defaults), 0-100")
register_metric("rouge", "text", _m_rouge, help="ROUGE-1/2/L/Lsum F1 (rouge-score, stemmed), mean over pairs")
register_metric("perplexity", "text", _m_perplexity, needs_generations=False,
                help="token perplexity (sliding window) of the outputs given the inputs, or of the documents")
register_metric("bertscore", "text", _m_bertscore, help="BERTScore F1 on goldbull_np's MiniLM encoder")

__all__ = ["Evaluator", "GenerationConfig", "TextGenerationMetrics", "EvalContext", "register_metric",
           "known_metrics", "resolve_metrics", "load_eval_data"]
