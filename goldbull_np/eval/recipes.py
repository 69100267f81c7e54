"""The evaluation recipe behind ``goldbull eval --metrics``: a checkpoint and a data file to a summary dict."""
import json
import os
import time

from .evaluator import Evaluator, GenerationConfig, resolve_metrics


def data_kind(path) -> str:
    """"examples" for input/output JSON/JSONL, "text" for a text file (documents for perplexity)."""
    from ..data import detect_format
    return "text" if detect_format(path) == "text" else "examples"


def evaluate_checkpoint_metrics(checkpoint, data_path, metrics=("bleu", "rouge", "perplexity", "bertscore"), *,
                                generation=None, stride=None, bertscore_model_dir=None, bertscore_layers=None,
                                bertscore_idf=False, rouge_stemmer=True, text_mode="document",
                                with_generations=False) -> dict:
    """Score a checkpoint's model on a data file with named metrics.

    Args:
        checkpoint: a checkpoint or run directory (goldbull_np.text.recipes.load_for_inference).
        data_path: input/output JSON/JSONL (generation metrics + conditional perplexity) or a text
            file (perplexity only; the whole file is one document unless ``text_mode="line"``).
        metrics: names or "a,b": bleu, chrf, rouge, perplexity, bertscore.
        generation: a GenerationConfig (greedy, 64 new tokens by default).
        with_generations: include the generated texts in the result.
    Returns:
        ``{"checkpoint", "data", "metrics": {name: value}, "details", "examples", "seconds"[, "generations"]}``.
    """
    from ..text.recipes import load_for_inference
    t0 = time.perf_counter()
    names = resolve_metrics(metrics, "text")
    if not os.path.isfile(data_path):
        raise FileNotFoundError(f"data file not found: {data_path}")
    model, tokenizer, ck = load_for_inference(checkpoint)
    ev = Evaluator(generation or GenerationConfig(), bertscore_model_dir=bertscore_model_dir,
                   bertscore_layers=bertscore_layers, bertscore_idf=bertscore_idf, rouge_stemmer=rouge_stemmer,
                   perplexity_stride=stride)
    if data_kind(data_path) == "text":
        from ..text.recipes import read_text
        text, _ = read_text(data_path)
        docs = [x for x in text.splitlines() if x.strip()] if text_mode == "line" else [text]
        dataset = docs
    else:
        dataset = os.fspath(data_path)
    r = ev.evaluate_text_generation(model, dataset, names, tokenizer=tokenizer)
    out = {"checkpoint": str(ck), "data": str(data_path), "metrics": dict(r.table()), "details": r.details,
           "examples": r.examples, "seconds": time.perf_counter() - t0}
    if with_generations and r.generations is not None:
        out["generations"] = r.generations
    return out


def write_json(path, summary) -> None:
    from ..io import atomic_write_json
    atomic_write_json(path, json.loads(json.dumps(summary, default=float)))


__all__ = ["evaluate_checkpoint_metrics", "data_kind", "write_json"]
