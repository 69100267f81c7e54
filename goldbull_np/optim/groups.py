"""``param_groups``: split a model's parameters into weight-decay and no-decay groups."""


def param_groups(model, weight_decay=0.1, no_decay=("bias", "norm", "embed")):
    """Two param groups for AdamW: decay on matrices, none on biases, norms and embeddings.

    A trainable parameter decays when ``ndim >= 2`` and no string of ``no_decay`` occurs in its
    qualified name; so biases and norm weights (1-D) never decay, and embedding tables (names with
    "embed": embed_tokens, embed_positions) do not by default. A tied lm_head weight is the
    embedding's Parameter and is listed once, under its first name.

    Args:
        model: a Module.
        weight_decay: the decay group's weight_decay.
        no_decay: name substrings that exclude a parameter from decay.
    Returns:
        ``[{"params": [...], "weight_decay": weight_decay}, {"params": [...], "weight_decay": 0.0}]``
        (frozen parameters are left out).
    """
    decay, other = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim >= 2 and not any(s in name for s in no_decay):
            decay.append(p)
        else:
            other.append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)}, {"params": other, "weight_decay": 0.0}]
