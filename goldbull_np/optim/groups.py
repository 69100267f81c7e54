"""The one weight-decay rule: ``param_groups`` splits parameters into a decay and a no-decay group.

The rule (nanoGPT's): a trainable parameter decays when it has two or more dimensions — Linear weights
and embedding tables — and does not when it has fewer — biases and norm gains. ``no_decay`` name
substrings exclude more parameters by name. Every trainer builds its default optimizer with this.
"""


def decays(name: str, param, no_decay=()) -> bool:
    """Whether ``param`` (qualified name ``name``) belongs to the weight-decay group."""
    return param.ndim >= 2 and not any(s in name for s in no_decay)


def param_groups(model, weight_decay=0.1, no_decay=()):
    """Two param groups for AdamW: decay on matrices (weights, embedding tables), none on vectors.

    Args:
        model: a Module (anything with ``named_parameters()``) or an iterable of ``(name, parameter)``.
        weight_decay: the decay group's weight_decay.
        no_decay: name substrings that also exclude a parameter from decay (e.g. ``("embed",)``).
    Returns:
        ``[{"params": [...], "weight_decay": weight_decay}, {"params": [...], "weight_decay": 0.0}]``;
        frozen parameters are left out, a shared (tied) parameter is listed once, under its first name.
    """
    named = model.named_parameters() if callable(getattr(model, "named_parameters", None)) else model
    decay, other, seen = [], [], set()
    for name, p in named:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if decays(name, p, no_decay) else other).append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)}, {"params": other, "weight_decay": 0.0}]
