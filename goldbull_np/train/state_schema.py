"""The shape of ``trainer_state.json``, checked before anything of it is used.

A checkpoint directory may come from anywhere (a colleague, a download, an edited file), so the state
file is untrusted: :func:`check_trainer_state` checks every field the loader reads, naming the file and
the field (``trainer.step``, ``optimizer.state.3.step``, ``rng``, ...) instead of letting a wrong type
surface as an AttributeError deep inside the resume. What a field's own owner validates (the data
position: :class:`~goldbull_np.train.cursor.DataCursor`; scheduler values; optimizer hyperparameters)
is checked there.
"""
import math

MAX_COUNT = 2 ** 53  # a step, epoch or count beyond this is not a real run (and floats stop being exact)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Checker:
    def __init__(self, path):
        self.path = path

    def fail(self, name, want, v):
        raise ValueError(f"{self.path}: field {name} must be {want}, got {v!r:.120}")

    def count(self, name, v, optional=False):
        if v is None and optional:
            return
        if not _is_int(v) or not 0 <= v <= MAX_COUNT:
            self.fail(name, f"an integer in [0, 2**53]{' or null' if optional else ''}", v)

    def number(self, name, v, optional=False, finite=False):
        if v is None and optional:
            return
        if not _is_number(v) or (finite and not math.isfinite(v)):
            self.fail(name, f"a {'finite ' if finite else ''}number{' or null' if optional else ''}", v)

    def obj(self, name, v, optional=False):
        if v is None and optional:
            return {}
        if not isinstance(v, dict):
            self.fail(name, f"an object{' or null' if optional else ''}", v)
        return v


def check_trainer_state(st, path="trainer_state.json") -> dict:
    """Raise ValueError naming ``path`` and the field for anything in ``st`` of the wrong type or range.

    Returns ``st`` unchanged.
    """
    c = _Checker(path)
    c.obj("(top level)", st)
    if "step" in st:
        c.count("step", st["step"])
    c.number("saved_at", st.get("saved_at", 0.0), finite=True)
    run_id = st.get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        c.fail("run_id", "a string or null", run_id)
    metric = c.obj("metric", st.get("metric"), optional=True)
    if metric.get("name") is not None and not isinstance(metric["name"], str):
        c.fail("metric.name", "a string or null", metric["name"])
    c.number("metric.value", metric.get("value"), optional=True)

    trainer = c.obj("trainer", st.get("trainer", {}))
    for name in ("step", "nonfinite_steps", "consecutive_nonfinite", "epoch"):
        if name in trainer:
            c.count(f"trainer.{name}", trainer[name])
    c.count("trainer.best_step", trainer.get("best_step"), optional=True)
    c.number("trainer.best_metric", trainer.get("best_metric"), optional=True)
    c.number("trainer.elapsed", trainer.get("elapsed", 0.0), finite=True)
    for k, v in c.obj("trainer.counts", trainer.get("counts", {})).items():
        c.number(f"trainer.counts.{k}", v, finite=True)
    c.obj("trainer.last_eval", trainer.get("last_eval"), optional=True)
    if not isinstance(trainer.get("stopped_early", False), bool):
        c.fail("trainer.stopped_early", "true or false", trainer["stopped_early"])
    c.count("epoch", st.get("epoch", 0))

    if "rng" in st:
        c.obj("rng", st["rng"])
    data = c.obj("data", st.get("data"), optional=True)
    if data:
        c.obj("data.loader", data.get("loader"), optional=True)
        for k, v in (data.get("loader") or {}).items():
            if k in ("seed", "epoch", "position", "num_samples"):
                c.count(f"data.loader.{k}", v)
    c.obj("scheduler", st.get("scheduler"), optional=True)
    c.obj("callbacks", st.get("callbacks"), optional=True)
    c.obj("training", st.get("training", {}))
    fp = c.obj("fingerprint", st.get("fingerprint", {}))
    c.obj("fingerprint.model", fp.get("model"), optional=True)

    if "optimizer" in st:
        opt = c.obj("optimizer", st["optimizer"])
        for i, st_i in c.obj("optimizer.state", opt.get("state")).items():
            for k, v in c.obj(f"optimizer.state.{i}", st_i).items():
                if k == "step":
                    c.count(f"optimizer.state.{i}.step", v)
        groups = opt.get("param_groups")
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            c.fail("optimizer.param_groups", "a list of objects", groups)
    return st


__all__ = ["check_trainer_state", "MAX_COUNT"]
