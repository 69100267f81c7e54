"""``goldbull_np.nn.utils``: torch's location of the gradient-clipping functions.

They live in ``goldbull_np.optim.clip`` (clipping is an optimizer-step concern, and optim sits above nn);
the names resolve there on first use, so importing nn does not import optim.
"""
_CLIP_NAMES = ("clip_grad_norm_", "clip_grad_value_")


def __getattr__(name):
    if name in _CLIP_NAMES:
        from ..optim import clip
        return getattr(clip, name)
    raise AttributeError(f"module 'goldbull_np.nn.utils' has no attribute {name!r}")


__all__ = list(_CLIP_NAMES)
