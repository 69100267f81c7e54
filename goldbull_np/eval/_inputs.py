"""Checks shared by the metrics: predictions are strings, references are strings or lists of strings,
and the two lists pair up. Errors name the offending index so a bad row in a big file is easy to find."""
from typing import List, Sequence


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str, what: str):
    """Import ``module`` or raise MissingDependencyError naming ``pip install 'goldbull_np[extra]'``."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the optional dependency {module.split('.')[0]!r} ({exc}); "
            f"install it with: pip install 'goldbull_np[{extra}]'") from None


def _is_seq(x) -> bool:
    return isinstance(x, (list, tuple))


def check_predictions(predictions, name="predictions") -> List[str]:
    """A non-empty list of strings (a bare string is refused: it would score its characters)."""
    if isinstance(predictions, str) or not _is_seq(predictions):
        raise TypeError(f"{name} must be a list of strings, got {type(predictions).__name__}")
    if not predictions:
        raise ValueError(f"{name} is empty: nothing to score")
    for i, p in enumerate(predictions):
        if p is None:
            raise TypeError(f"{name}[{i}] is None (use '' for an empty text)")
        if not isinstance(p, str):
            raise TypeError(f"{name}[{i}] must be a string, got {type(p).__name__}")
    return list(predictions)


def check_pairs(predictions, references, multi_ref=True):
    """``(predictions, references)`` with each reference as a non-empty list of strings.

    Args:
        predictions: list of strings.
        references: list (one entry per prediction) of a string or, with ``multi_ref``, a list of
            strings (several references for that prediction).
    Raises:
        TypeError: not a list, None or a non-string item (naming its index).
        ValueError: empty lists, or counts that differ.
    """
    preds = check_predictions(predictions)
    if isinstance(references, str) or not _is_seq(references):
        raise TypeError(f"references must be a list, got {type(references).__name__}")
    if not references:
        raise ValueError("references is empty: nothing to score against")
    if len(references) != len(preds):
        raise ValueError(f"{len(preds)} predictions but {len(references)} references: they must pair up "
                         "(for several references per prediction pass a list of strings for each)")
    refs = []
    for i, r in enumerate(references):
        if isinstance(r, str):
            refs.append([r])
        elif multi_ref and _is_seq(r):
            if not r:
                raise ValueError(f"references[{i}] is an empty list: each prediction needs a reference")
            for j, x in enumerate(r):
                if not isinstance(x, str):
                    raise TypeError(f"references[{i}][{j}] must be a string, got "
                                    f"{'None' if x is None else type(x).__name__}")
            refs.append(list(r))
        elif r is None:
            raise TypeError(f"references[{i}] is None (use '' for an empty text)")
        else:
            raise TypeError(f"references[{i}] must be a string{' or a list of strings' if multi_ref else ''}, "
                            f"got {type(r).__name__}")
    return preds, refs


def single_refs(refs: Sequence[Sequence[str]]) -> bool:
    return all(len(r) == 1 for r in refs)
