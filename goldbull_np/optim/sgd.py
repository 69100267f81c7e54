"""SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD's formulas)."""
import numpy as np

from .optimizer import Optimizer, check_range


class SGD(Optimizer):
    """Stochastic gradient descent.

    Per parameter with a gradient g (torch's update)::

        g = g + weight_decay * p
        buf = g (first step) | momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov) | buf
        p = p - lr * g

    Args:
        params: parameters or param-group dicts.
        lr: learning rate.
        momentum, dampening, nesterov, weight_decay, maximize: as torch.
    State: ``{"momentum_buffer": ndarray}`` per parameter when momentum != 0.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def check_hyperparameters(self, group, where=""):
        """torch's checks (``not 0.0 <= lr``), so NaN fails; inf is refused too."""
        inf = float("inf")
        check_range(where, "learning rate (lr)", group["lr"], 0.0, inf, high_open=True)
        check_range(where, "momentum", group["momentum"], 0.0, inf, high_open=True)
        check_range(where, "dampening", group["dampening"], 0.0, inf, high_open=True)
        check_range(where, "weight_decay", group["weight_decay"], 0.0, inf, high_open=True)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{where + ': ' if where else ''}Nesterov momentum requires a momentum and zero "
                             "dampening")

    def step(self, closure=None):
        """Update every parameter that has a gradient. Returns the closure's loss (or None)."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = -p.grad if group["maximize"] else p.grad
                if wd != 0:
                    d = d + p.data.dtype.type(wd) * p.data
                if mom != 0:
                    st = self.state.setdefault(p, {})
                    buf = st.get("momentum_buffer")
                    if buf is None:
                        buf = st["momentum_buffer"] = np.array(d, dtype=p.dtype, copy=True)
                    else:
                        buf *= p.dtype.type(mom)
                        buf += p.dtype.type(1 - damp) * d
                    d = d + p.dtype.type(mom) * buf if nesterov else buf
                p.data -= p.dtype.type(lr) * d
                p._bump_version()
        return loss
