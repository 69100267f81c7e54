"""Adam (L2 weight decay) and AdamW (decoupled weight decay), torch.optim's formulas.

AdamW's fast path: at construction every float32 parameter's array is moved into one flat float32
buffer and ``p.data`` is rebound to a view of its slice (the Parameter objects, and so module
attributes and tied weights, stay the same). ``exp_avg``/``exp_avg_sq`` and a gradient buffer are
flat too, so a step is: copy each ``p.grad`` into the flat gradient (skipped when ``p.grad`` already
is that view: after ``zero_grad(set_to_none=True)``, the trainer's, backward writes each first gradient
into the view it was lent, and after ``set_to_none=False`` adds into it), then one
``kernels.get("adamw_step")`` call over the buffer with one segment per param group (per-segment lr and
weight decay).

Parameters whose grad is None are skipped and their step count does not advance (torch). The
kernel takes one step count, so the buffer is updated in runs: maximal stretches of consecutive
parameters that have a gradient, share the step count and share betas/eps; usually that is one run.
Other dtypes (float64 in tests) take a per-parameter NumPy path with the same formulas.
If ``p.data`` is rebound later (e.g. ``module.to(...)``), the next step copies it back into the
buffer and re-binds the view (same dtype and shape required).
"""
import math
import sys
import weakref

import numpy as np

from .. import kernels
from .optimizer import Optimizer, check_range

_F32 = np.dtype(np.float32)
# id(flat gradient buffer) -> the fused AdamW that owns it (coalesce_flat_gradients looks gradients up here)
_FLAT_OWNERS = weakref.WeakValueDictionary()


_INF = float("inf")


def _check_hparams(group, where=""):
    """torch's checks (``not 0.0 <= lr``), so NaN fails; inf is refused too (it makes every parameter NaN)."""
    check_range(where, "learning rate (lr)", group["lr"], 0.0, _INF, high_open=True)
    check_range(where, "epsilon (eps)", group["eps"], 0.0, _INF, high_open=True)
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{where + ': ' if where else ''}invalid betas: {betas!r} (a pair (beta1, beta2))")
    check_range(where, "beta parameter at index 0 (betas[0])", betas[0], 0.0, 1.0, high_open=True)
    check_range(where, "beta parameter at index 1 (betas[1])", betas[1], 0.0, 1.0, high_open=True)
    check_range(where, "weight_decay", group["weight_decay"], 0.0, _INF, high_open=True)


def _adam_update(p, grad, st, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam/AdamW update of one parameter array in place (torch's op order)."""
    t = p.dtype.type
    st["step"] += 1
    step = st["step"]
    if weight_decay != 0:
        if decoupled:
            p *= t(1.0 - lr * weight_decay)
        else:
            grad = grad + t(weight_decay) * p
    m, v = st["exp_avg"], st["exp_avg_sq"]
    m += (grad - m) * t(1.0 - beta1)
    v *= t(beta2)
    v += t(1.0 - beta2) * grad * grad
    bc1 = 1.0 - beta1 ** step
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    denom = np.sqrt(v) / t(bc2_sqrt) + t(eps)
    p -= t(lr / bc1) * m / denom


class Adam(Optimizer):
    """Adam with L2 weight decay added to the gradient (torch.optim.Adam).

    Args:
        params: parameters or param-group dicts.
        lr: learning rate (1e-3).
        betas: (beta1, beta2) (0.9, 0.999).
        eps: denominator term (1e-8).
        weight_decay: L2 penalty coefficient (0).
        maximize: ascend instead of descend.
    State per parameter: ``{"step": int, "exp_avg": ndarray, "exp_avg_sq": ndarray}``.
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False):
        if amsgrad:
            raise NotImplementedError("amsgrad is not implemented")
        betas = tuple(betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=False,
                                      maximize=maximize))

    def check_hyperparameters(self, group, where=""):
        _check_hparams(group, where)

    def _new_state(self, p):
        return {"step": 0, "exp_avg": np.zeros(p.shape, p.dtype), "exp_avg_sq": np.zeros(p.shape, p.dtype)}

    def _step_param(self, p, group):
        st = self.state.get(p)
        if not st:
            st = self.state[p] = self._new_state(p)
        grad = -p.grad if group["maximize"] else p.grad
        b1, b2 = group["betas"]
        _adam_update(p.data, grad, st, group["lr"], b1, b2, group["eps"], group["weight_decay"], self.decoupled)
        p._bump_version()

    def step(self, closure=None):
        """Update every parameter that has a gradient. Returns the closure's loss (or None)."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._step_param(p, group)
        return loss


class AdamW(Adam):
    """AdamW: decoupled weight decay ``p *= 1 - lr * weight_decay`` (torch.optim.AdamW), with the
    fused flat-buffer kernel for float32 parameters (see the module docstring).

    Args:
        params, lr, betas, eps, maximize: as Adam.
        weight_decay: decoupled decay coefficient (default 1e-2).
        fused: use the flat buffer + ``adamw_step`` kernel for float32 parameters (default True).
    """

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)
        self.fused = fused is None or bool(fused)
        self._flat = None
        if self.fused:
            self._build_flat()

    # ---- flat buffers -------------------------------------------------------------------------
    def _build_flat(self):
        entries = []  # (param, group index, offset, size)
        off = 0
        for gi, g in enumerate(self.param_groups):
            for p in g["params"]:
                if p.dtype == _F32:
                    entries.append((p, gi, off, p.data.size))
                    off += p.data.size
        if not entries:
            return
        flat = np.empty(off, dtype=_F32)
        self._flat_m = np.zeros(off, dtype=_F32)
        self._flat_v = np.zeros(off, dtype=_F32)
        self._flat = flat
        self._entries = entries
        self._index = {id(p): i for i, (p, _, _, _) in enumerate(entries)}
        self._pviews = []
        for p, _, o, n in entries:
            flat[o:o + n] = p.data.reshape(-1)
            view = flat[o:o + n].reshape(p.shape)
            p.data = view
            self._pviews.append(view)
        self._new_gradient_buffer()

    def add_param_group(self, param_group):
        if getattr(self, "_flat", None) is not None:
            raise RuntimeError("AdamW(fused=True): add_param_group after construction is not supported; "
                               "pass every group to the constructor")
        super().add_param_group(param_group)

    def _new_state(self, p):
        i = self._index.get(id(p)) if self._flat is not None else None
        if i is None:
            return super()._new_state(p)
        _, _, o, n = self._entries[i]
        self._flat_m[o:o + n] = 0
        self._flat_v[o:o + n] = 0
        return {"step": 0, "exp_avg": self._flat_m[o:o + n].reshape(p.shape),
                "exp_avg_sq": self._flat_v[o:o + n].reshape(p.shape)}

    def _sync_param(self, i):
        """Re-bind ``p.data`` to its flat view if something replaced the array."""
        p, _, o, n = self._entries[i]
        if p.data is self._pviews[i]:
            return
        if p.data.dtype != _F32 or p.data.shape != self._pviews[i].shape:
            raise RuntimeError(f"a parameter of shape {self._pviews[i].shape} changed to {p.data.dtype} "
                               f"{p.data.shape} after AdamW(fused=True) was built over it")
        self._pviews[i][...] = p.data
        p.data = self._pviews[i]

    def zero_grad(self, set_to_none=True):
        """``set_to_none=False`` zeroes the flat gradient buffer and points each float32 ``p.grad``
        at its view, so backward accumulates straight into the buffer and step() copies nothing.

        ``set_to_none=True`` (torch's default) sets every ``p.grad`` to None, as torch does, and lends
        each float32 parameter its view for the next backward (see :meth:`_lend_gradient_views`), so
        the nanoGPT-style loop is as fast as the one above."""
        if self._flat is None:
            return super().zero_grad(set_to_none)
        for p, _, _, _ in self._entries:  # offers from an earlier zero_grad that no backward took
            if getattr(p, "_grad_into", None) is not None:
                p._grad_into = None
        if set_to_none:
            super().zero_grad(set_to_none=True)
            self._lend_gradient_views()
            return
        self._flat_grad[...] = 0
        for i, (p, _, _, _) in enumerate(self._entries):
            p.grad = self._gviews[i]
        flat = self._flat_grad
        for p in self._params():  # the others (not float32): zeroed in place (the views are zero already)
            if p.grad is not None and p.grad.base is not flat:
                p.grad[...] = 0

    def _lend_gradient_views(self):
        """Offer each float32 parameter (``p._grad_into``) its view of the flat gradient buffer: the
        engine writes the parameter's next gradient there and makes it ``p.grad`` (autograd/engine.py).

        If a caller still holds a gradient from an earlier step (``g = p.grad``, or a view of it),
        that array lives in the buffer, and torch's set_to_none promises it never changes: the
        buffer is then left to the caller and a new one is allocated (once per such step).
        Maximizing groups and plain Tensors (no attribute room) are not lent to.
        """
        held = sys.getrefcount(self._flat_grad) != self._flat_grad_refs or any(
            sys.getrefcount(v) != 3 for v in self._gviews)  # self._gviews, v, getrefcount's argument
        if held:
            self._new_gradient_buffer()
        groups = self.param_groups
        for i, (p, gi, _, _) in enumerate(self._entries):
            if not groups[gi]["maximize"] and hasattr(p, "__dict__"):
                p._grad_into = self._gviews[i]

    def _new_gradient_buffer(self):
        """A fresh flat gradient buffer and views of it (the old one stays with whoever holds it)."""
        old = getattr(self, "_flat_grad", None)
        if old is not None:
            _FLAT_OWNERS.pop(id(old), None)
        self._flat_grad = np.zeros(self._flat.size, dtype=_F32)
        self._gviews = [self._flat_grad[o:o + n].reshape(p.shape) for p, _, o, n in self._entries]
        self._gview_entry = {id(v): i for i, v in enumerate(self._gviews)}
        _FLAT_OWNERS[id(self._flat_grad)] = self
        # references to the buffer when no one outside holds a view of it: the attribute, each
        # view's base and getrefcount's argument (_lend_gradient_views compares)
        self._flat_grad_refs = sys.getrefcount(self._flat_grad)

    @property
    def flat_gradient(self):
        return self._flat_grad if self._flat is not None else None

    def gradient_arrays(self) -> list:
        """The gradients as few arrays as possible (see :meth:`Optimizer.gradient_arrays`): consecutive
        float32 gradients that are their views of the flat gradient buffer form one slice of it."""
        if self._flat is None:
            return super().gradient_arrays()
        out = [p.grad for g in self.param_groups for p in g["params"]
               if p.grad is not None and id(p) not in self._index]
        start = end = None  # the current run of views: flat_grad[start:end]
        for i, (p, _, o, n) in enumerate(self._entries):
            if p.grad is not None and p.grad is self._gviews[i]:
                if start is not None and o == end:
                    end = o + n
                    continue
                if start is not None:
                    out.append(self._flat_grad[start:end])
                start, end = o, o + n
                continue
            if start is not None:
                out.append(self._flat_grad[start:end])
                start = None
            if p.grad is not None:
                out.append(p.grad)
        if start is not None:
            out.append(self._flat_grad[start:end])
        return out

    def _flat_runs(self, grads):
        """The slices of the flat gradient buffer that hold exactly ``grads``, if each is one parameter's
        view of it (identity, not addresses); None otherwise."""
        idx = sorted(self._gview_entry.get(id(g), -1) for g in grads)
        if not idx or idx[0] < 0 or any(a == b for a, b in zip(idx, idx[1:])):
            return None
        runs, start = [], idx[0]
        for prev, i in zip(idx, idx[1:] + [None]):
            if i is None or i != prev + 1:  # entries start..prev are consecutive: one slice
                (_, _, o0, _), (_, _, o1, n1) = self._entries[start], self._entries[prev]
                runs.append(self._flat_grad[o0:o1 + n1])
                start = i
        return runs

    def step(self, closure=None):
        """One AdamW step over every parameter that has a gradient. Returns the closure's loss."""
        loss = self._closure_loss(closure)
        if self._flat is None:
            super().step()
            return loss
        for group in self.param_groups:  # parameters outside the flat buffer (non-float32)
            for p in group["params"]:
                if p.grad is not None and id(p) not in self._index:
                    self._step_param(p, group)
        run = []  # entries of the current run: (entry index, step, group)
        for i, (p, gi, o, n) in enumerate(self._entries):
            self._sync_param(i)
            if p.grad is None:
                self._flush(run)
                continue
            group = self.param_groups[gi]
            st = self.state.get(p)
            if not st:
                st = self.state[p] = self._new_state(p)
            if p.grad is not self._gviews[i]:
                g = p.grad.reshape(-1)
                if group["maximize"]:
                    np.negative(g, out=self._flat_grad[o:o + n], casting="unsafe")
                else:
                    self._flat_grad[o:o + n] = g
            elif group["maximize"]:
                raise RuntimeError("AdamW(maximize=True) with gradients in the flat buffer is not supported")
            key = (st["step"] + 1, group["betas"], group["eps"])
            if run and run[-1][1] != key:
                self._flush(run)
            run.append((i, key, gi))
            st["step"] += 1
        self._flush(run)
        return loss

    def _flush(self, run):
        """One kernel call over a run of consecutive entries sharing step, betas and eps."""
        if not run:
            return
        first, (step, (b1, b2), eps), _ = run[0]
        start = self._entries[first][2]
        _, _, o_last, n_last = self._entries[run[-1][0]]
        end = o_last + n_last
        bounds, lrs, wds = [0], [], []
        prev_g = None
        for i, _, gi in run:
            o = self._entries[i][2]
            if gi != prev_g:
                if prev_g is not None:
                    bounds.append(o - start)
                g = self.param_groups[gi]
                lrs.append(float(g["lr"]))
                wds.append(float(g["weight_decay"]))
                prev_g = gi
        bounds.append(end - start)
        kernels.get("adamw_step", _F32)(
            self._flat[start:end], self._flat_grad[start:end], self._flat_m[start:end], self._flat_v[start:end],
            int(step), np.asarray(lrs, dtype=np.float64), np.asarray(wds, dtype=np.float64),
            np.asarray(bounds, dtype=np.int64), beta1=float(b1), beta2=float(b2), eps=float(eps))
        for i, _, _ in run:
            self._entries[i][0]._bump_version()
        run.clear()

    def _load_state(self, new_state):
        """Loaded arrays are copied into the flat buffers, so the views stay live."""
        for p, entry in new_state.items():
            if self._flat is not None and id(p) in self._index:
                st = self._new_state(p)
                for k, v in entry.items():
                    if k in ("exp_avg", "exp_avg_sq"):
                        st[k][...] = v
                    else:
                        st[k] = v
                self.state[p] = st
            else:
                self.state[p] = entry


def coalesce_flat_gradients(grads: list) -> list:
    """``grads`` as few arrays as possible: when every one is its parameter's view of one fused AdamW's flat
    gradient buffer (after ``zero_grad``, either way), the slices of the buffer that hold exactly them (usually
    one), so ``clip_grad_norm_(model.parameters(), ...)`` is one kernel call as the trainer's clip is; otherwise
    ``grads`` unchanged."""
    base = grads[0].base if grads else None
    if base is None or any(g.base is not base for g in grads):
        return grads
    owner = _FLAT_OWNERS.get(id(base))
    if owner is None or owner.flat_gradient is not base:
        return grads
    return owner._flat_runs(grads) or grads
