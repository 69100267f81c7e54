"""Checkpoints: one directory each, written atomically, rotated keep-last-k plus best; never pickle.

Layout of ``<dir>/checkpoint-00000500/``::

    config.json             the model config       (GoldbullText.from_pretrained(dir) loads these two)
    model.safetensors       the weights
    optimizer.safetensors   optimizer moments, one tensor per "state.<param index>.<name>"
    trainer_state.json      step, epoch, run id, metric, optimizer param groups and scalar state,
                            scheduler, RNG state, data-loader position, training config, counters
    tokenizer.json ...      whatever the tokenizer's save(dir) writes

A checkpoint is written to ``.tmp-checkpoint-...`` beside its target, every file and the directory are
fsynced, then it is renamed into place. ``trainer_state.json`` is written last, so a directory without
it is not a checkpoint. Old checkpoints are renamed to ``.trash-...`` before being removed, and only
after the new one is complete: there is never a moment without a complete checkpoint on disk.
Leftover ``.tmp-``/``.trash-`` directories from a killed run are removed when a manager opens the directory,
unless another process holds the directory's writer lock (:mod:`goldbull_np.io.lock`): a reader never
touches what a live writer owns. Saving takes the lock (a second writing process gets a
DirectoryLockedError naming the holder's pid); the Trainer holds it for a whole run.

Which checkpoint is the latest or the best is derived from the directories themselves (their
``trainer_state.json``), not from pointer files that could disagree with them.
"""
import math
import os
import re
import shutil  # noqa: F401 - (tests watch rmtree through this module)
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .._config_io import read_json
from ..io import TMP_PREFIX, TRASH_PREFIX, atomic_directory, atomic_write_json, fsync_dir, load_safetensors, remove_tree
from ..io import DirectoryLock, DirectoryLockedError, save_safetensors
from ..nn.model_base import PreTrainedModel
from .config import CheckpointConfig
from .state_schema import check_trainer_state

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
FORMAT = "goldbull-checkpoint"
FORMAT_VERSION = 1
_NAME_RE = re.compile(r"^checkpoint-(\d+)$")


# ---------------------------------------------------------------------------------------------------------
# optimizer state <-> (arrays for safetensors, JSON for the rest)

def flatten_optimizer_state(state_dict: dict):
    """Split a torch-layout optimizer state dict into ``(arrays, json_part)``.

    Arrays (and NumPy scalars, kept as 0-d arrays so their dtype survives) go to ``arrays`` under
    ``"state.<idx>.<name>"``; Python scalars, ``param_groups`` and anything else go to ``json_part``.
    :func:`unflatten_optimizer_state` inverts it bit-exactly.
    """
    arrays, js_state = {}, {}
    for idx, st in state_dict.get("state", {}).items():
        js = {}
        for k, v in st.items():
            if isinstance(v, np.ndarray) or isinstance(v, np.generic):
                arrays[f"state.{idx}.{k}"] = np.ascontiguousarray(np.asarray(v))
                js[k] = {"__array__": f"state.{idx}.{k}", "scalar": isinstance(v, np.generic)}
            elif hasattr(v, "data") and isinstance(getattr(v, "data"), np.ndarray):  # a Tensor
                arrays[f"state.{idx}.{k}"] = np.ascontiguousarray(v.data)
                js[k] = {"__array__": f"state.{idx}.{k}", "scalar": False, "tensor": True}
            else:
                js[k] = _jsonable(v, f"optimizer state[{idx}][{k}]")
        js_state[str(idx)] = js
    groups = [{k: _jsonable(v, f"param_groups[{i}][{k}]") for k, v in g.items()}
              for i, g in enumerate(state_dict.get("param_groups", []))]
    extra = {k: _jsonable(v, f"optimizer state_dict[{k}]") for k, v in state_dict.items()
             if k not in ("state", "param_groups")}
    return arrays, {"state": js_state, "param_groups": groups, "extra": extra,
                    "state_key_types": sorted({type(i).__name__ for i in state_dict.get("state", {})})}


def unflatten_optimizer_state(arrays: dict, js: dict, template: Optional[dict] = None) -> dict:
    """Rebuild the state dict written by :func:`flatten_optimizer_state`.

    ``template`` (the optimizer's current ``state_dict()``) is used to give back tuples where the
    optimizer had tuples (JSON only has lists).
    """
    int_keys = js.get("state_key_types", ["int"]) == ["int"]
    state = {}
    for idx, st in js["state"].items():
        out = {}
        for k, v in st.items():
            if isinstance(v, dict) and "__array__" in v:
                a = arrays[v["__array__"]]
                if v.get("scalar"):
                    a = a.reshape(()).dtype.type(a.reshape(())[()])
                elif v.get("tensor"):
                    from ..autograd import Tensor
                    a = Tensor(a)
                out[k] = a
            else:
                out[k] = v
        state[int(idx) if int_keys else idx] = out
    groups = [dict(g) for g in js["param_groups"]]
    if template is not None:
        for g, tg in zip(groups, template.get("param_groups", [])):
            for k, v in tg.items():
                if isinstance(v, tuple) and isinstance(g.get(k), list):
                    g[k] = tuple(g[k])
    sd = {"state": state, "param_groups": groups}
    sd.update(js.get("extra", {}))
    return sd


def _jsonable(v, where):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, where) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x, where) for k, x in v.items()}
    raise TypeError(f"cannot save {where} of type {type(v).__name__} in a checkpoint (no pickle)")


# ---------------------------------------------------------------------------------------------------------

@dataclass
class CheckpointInfo:
    """One complete checkpoint found on disk."""

    path: Path
    step: int
    run_id: Optional[str]
    saved_at: float
    metric_name: Optional[str]
    metric: Optional[float]
    finite: bool = True  # every weight finite when saved (checkpoints from before the flag count as finite)

    @property
    def name(self) -> str:
        return self.path.name


def read_trainer_state(path) -> dict:
    """The ``trainer_state.json`` of a checkpoint directory."""
    p = Path(path) / STATE_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{path} is not a goldbull checkpoint (no {STATE_FILE})")
    st = read_json(p, "no trainer state")  # malformed, too deep, not UTF-8: a ValueError naming the file
    return check_trainer_state(st, p)  # every field the loaders read, by name


class CheckpointManager:
    """Saves checkpoints under ``directory``, keeps the last ``max_checkpoints`` plus the best one.

    Only checkpoints of this manager's run (``run_id``, carried across resume) are rotated; checkpoints of
    other runs found in the directory ("foreign" ones) are never deleted and never count as this run's
    latest or best. The latest checkpoint of a directory is the most recently saved one.

    Args:
        directory: where checkpoint directories go (created if needed).
        config: a :class:`CheckpointConfig`.
    """

    def __init__(self, directory, config: Optional[CheckpointConfig] = None):
        self.directory = Path(directory)
        self.config = config if config is not None else CheckpointConfig()
        self.run_id = uuid.uuid4().hex
        self.directory.mkdir(parents=True, exist_ok=True)
        self.removed_temp = self.cleanup_temp()

    # --- discovery ----------------------------------------------------------------------------------
    def cleanup_temp(self) -> list:
        """Remove ``.tmp-``/``.trash-`` leftovers of a killed run; returns their names.

        Only while no writer is alive: the directory's lock is taken for the cleanup, and if another
        process holds it (or this process is writing here) nothing is removed.
        """
        lock = DirectoryLock(self.directory)
        if lock.held_here():
            return []  # a writer of this process may own them
        try:
            lock.acquire()
        except DirectoryLockedError:
            return []  # a live writer owns them
        try:
            removed = []
            for p in self.directory.iterdir():
                if p.name.startswith((TMP_PREFIX, TRASH_PREFIX)):
                    remove_tree(p)
                    removed.append(p.name)
            if removed:
                fsync_dir(self.directory)
            return removed
        finally:
            lock.release()

    def lock(self) -> DirectoryLock:
        """The directory's writer lock (not yet taken): ``with mgr.lock(): ...`` holds it for a block.

        Raises (on entry): DirectoryLockedError naming the pid of another process that holds it.
        """
        return DirectoryLock(self.directory)

    def checkpoints(self, run_id: Optional[str] = "any") -> list:
        """Complete checkpoints in the directory, oldest step first; ``run_id="any"`` for all runs."""
        out = []
        for p in self.directory.iterdir():
            m = _NAME_RE.match(p.name)
            if not m or not p.is_dir():
                continue
            try:
                st = read_trainer_state(p)
            except FileNotFoundError:
                continue  # not complete
            except (OSError, ValueError) as exc:
                import warnings
                warnings.warn(f"ignoring {p.name}: {exc}", RuntimeWarning, stacklevel=2)
                continue  # not ours to interpret
            if st.get("format") != FORMAT:
                continue
            metric = st.get("metric") or {}
            info = CheckpointInfo(path=p, step=int(st.get("step", m.group(1))), run_id=st.get("run_id"),
                                  saved_at=float(st.get("saved_at", 0.0)), metric_name=metric.get("name"),
                                  metric=metric.get("value"), finite=st.get("finite", True) is not False)
            if run_id == "any" or info.run_id == run_id:
                out.append(info)
        out.sort(key=lambda c: (c.step, c.saved_at))
        return out

    def latest(self, run_id: Optional[str] = "any", *, finite: bool = False) -> Optional[Path]:
        """The most recently saved complete checkpoint (of ``run_id``, default any run), or None;
        with ``finite=True`` only checkpoints whose weights were finite when saved count."""
        cks = [c for c in self.checkpoints(run_id) if c.finite or not finite]
        return max(cks, key=lambda c: (c.saved_at, c.step)).path if cks else None

    def best(self, run_id: Optional[str] = None) -> Optional[Path]:
        """The checkpoint with the best finite metric (of ``run_id``, default this manager's run), or None."""
        info = self._best_info(self.checkpoints(self.run_id if run_id is None else run_id))
        return info.path if info else None

    def _best_info(self, cks) -> Optional[CheckpointInfo]:
        name = self.config.best_metric
        if name is None:
            return None
        scored = [c for c in cks if c.metric_name == name and _finite(c.metric)]
        if not scored:
            return None
        sign = 1.0 if self.config.best_mode == "min" else -1.0
        return min(scored, key=lambda c: (sign * c.metric, -c.step))

    def is_better(self, value, than) -> bool:
        """Whether metric ``value`` beats ``than`` (None = nothing yet); NaN/inf never beat anything."""
        if not _finite(value):
            return False
        if than is None or not _finite(than):
            return True
        return value < than if self.config.best_mode == "min" else value > than

    def path_for(self, step: int) -> Path:
        return self.directory / f"{CHECKPOINT_PREFIX}{int(step):08d}"

    # --- saving -------------------------------------------------------------------------------------
    def save(self, step: int, *, model, trainer_state: dict, optimizer=None, tokenizer=None,
             metric: Optional[float] = None) -> Path:
        """Write ``checkpoint-<step>`` atomically and rotate old ones.

        Args:
            step: the optimizer step the checkpoint is taken after.
            model: a Module with ``save_pretrained(dir)`` (or ``state_dict()``).
            trainer_state: JSON-serialisable dict (scheduler, RNG, data position, config, counters...).
            optimizer: its state goes to optimizer.safetensors + trainer_state["optimizer"] when
                ``config.save_optimizer_state``.
            tokenizer: anything with ``save(dir)``.
            metric: the value of ``config.best_metric`` measured at this step (None if not measured).

        Returns:
            The checkpoint directory.
        """
        target = self.path_for(step)
        state = dict(trainer_state)
        if not self.config.save_scheduler_state:
            state.pop("scheduler", None)
        state.update(run_id=self.run_id, metric={"name": self.config.best_metric,
                                                 "value": float(metric) if metric is not None else None})
        bad = nonfinite_weights(model)
        state["finite"] = not bad
        if bad:
            import warnings
            warnings.warn(f"{target}: saving weights that are not finite ({', '.join(bad[:3])}"
                          f"{', ...' if len(bad) > 3 else ''} hold NaN/inf); the last finite checkpoint of "
                          "this run is kept", RuntimeWarning, stacklevel=2)
        with self.lock():  # a no-op share when the Trainer holds it for the run
            write_checkpoint(target, step=step, model=model, trainer_state=state,
                             optimizer=optimizer if self.config.save_optimizer_state else None, tokenizer=tokenizer,
                             replace=True)
            self.rotate()
        return target

    def rotate(self) -> list:
        """Delete this run's checkpoints beyond the last ``max_checkpoints``, keeping the best and the
        newest one with finite weights (a NaN checkpoint never evicts the last good one); returns them."""
        with self.lock():
            return self._rotate()

    def _rotate(self) -> list:
        mine = self.checkpoints(self.run_id)
        keep = {c.path for c in mine[-self.config.max_checkpoints:]}
        best = self._best_info(mine)
        if best is not None:
            keep.add(best.path)
        finite = [c for c in mine if c.finite]
        if finite:
            keep.add(finite[-1].path)
        removed = [c.path for c in mine if c.path not in keep]
        for p in removed:
            remove_tree(p)
        return removed

    # --- loading ------------------------------------------------------------------------------------
    def load(self, path=None, *, model=None, optimizer=None) -> dict:
        """Restore weights (and optimizer state) from ``path`` (default: the latest); returns trainer_state.

        Also adopts the checkpoint's run id, so rotation continues the resumed run's checkpoints.
        """
        path = Path(path) if path is not None else self.latest()
        if path is None:
            raise FileNotFoundError(f"no complete checkpoint in {self.directory}")
        state = load_checkpoint(path, model=model, optimizer=optimizer)
        if state.get("run_id"):
            self.run_id = state["run_id"]
        return state


def write_checkpoint(target, *, step: int, model, trainer_state: dict, optimizer=None, tokenizer=None,
                     replace: bool = False) -> Path:
    """Write one checkpoint directory at ``target``: into a temporary directory beside it, fsync, rename.

    Args:
        target: the checkpoint directory to create.
        step: recorded in trainer_state.json.
        model, optimizer, tokenizer: see :meth:`CheckpointManager.save`.
        trainer_state: JSON-serialisable dict; format, step and save time are added.
        replace: replace an existing ``target`` (else FileExistsError).
    """
    state = dict(trainer_state)
    with atomic_directory(target, replace=replace) as tmp:
        save_model_weights(model, tmp)
        if optimizer is not None:
            arrays, js = flatten_optimizer_state(optimizer.state_dict())
            save_safetensors(arrays, tmp / OPTIMIZER_FILE)
            state["optimizer"] = js
        if tokenizer is not None:
            tokenizer.save(os.fspath(tmp))
        state.update(format=FORMAT, format_version=FORMAT_VERSION, step=int(step), saved_at=time.time())
        atomic_write_json(tmp / STATE_FILE, state, indent=1)  # last: its presence marks completeness
    return Path(target)


def load_checkpoint(path, *, model=None, optimizer=None) -> dict:
    """Load weights into ``model`` and state into ``optimizer`` (in place) from a checkpoint directory.

    With an ``optimizer`` (resuming training) the weights and the optimizer's moments must be finite:
    training on from NaN only writes more NaN checkpoints. Errors name the file.
    """
    path = Path(path)
    state = read_trainer_state(path)
    if model is not None:
        load_model_weights(model, path)
        if optimizer is not None:
            bad = nonfinite_weights(model)
            if bad:
                mgr = CheckpointManager.__new__(CheckpointManager)  # read-only look at the siblings
                mgr.directory, mgr.config, mgr.run_id = path.parent, CheckpointConfig(), None
                good = mgr.latest(finite=True)
                raise ValueError(f"{path / MODEL_FILE}: cannot resume training from weights that are not finite "
                                 f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''} hold NaN/inf); resume "
                                 + (f"from {good}, the latest finite checkpoint" if good else
                                    "from an earlier checkpoint"))
    if optimizer is not None:
        opt_path = path / OPTIMIZER_FILE
        if "optimizer" not in state or not opt_path.is_file():
            raise FileNotFoundError(f"{path} has no optimizer state (saved with save_optimizer_state=False)")
        arrays = load_safetensors(opt_path)
        try:
            optimizer.load_state_dict(unflatten_optimizer_state(arrays, state["optimizer"], optimizer.state_dict()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{opt_path}: cannot load the optimizer state: {exc}") from None
    return state


def nonfinite_weights(model) -> list:
    """Names of the model's floating-point tensors that hold NaN or inf (one pass over the weights)."""
    bad = []
    for name, v in model.state_dict().items():
        a = _as_array(v)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            bad.append(name)
    return bad


def resolve_checkpoint(path) -> Path:
    """A checkpoint directory itself, or the best (else latest) checkpoint inside a run directory."""
    path = Path(path)
    if (path / STATE_FILE).is_file() or (path / MODEL_FILE).is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    mgr = CheckpointManager.__new__(CheckpointManager)  # read-only: no temp cleanup, no mkdir
    mgr.directory, mgr.config, mgr.run_id = path, CheckpointConfig(), None
    latest = mgr.latest(finite=True) or mgr.latest()  # a NaN checkpoint is never picked over a finite one
    if latest is None:
        raise FileNotFoundError(f"no complete checkpoint in {path}")
    best = mgr.best(run_id=read_trainer_state(latest).get("run_id"))
    return best or latest


# ---------------------------------------------------------------------------------------------------------
# model weights

def save_model_weights(model, directory) -> None:
    """``model.save_pretrained(dir)`` for a model on the model base (config.json + model.safetensors),
    else its ``state_dict()`` as model.safetensors."""
    if isinstance(model, PreTrainedModel):
        model.save_pretrained(os.fspath(directory))
        return
    arrays = {k: np.ascontiguousarray(_as_array(v)) for k, v in model.state_dict().items()}
    save_safetensors(arrays, Path(directory) / MODEL_FILE)


def load_model_weights(model, directory) -> None:
    """Copy model.safetensors into ``model``'s existing parameters in place (``load_state_dict`` copies
    into the existing arrays, so the optimizer keeps pointing at the same Parameters; tied weights stored
    once load back). Errors name the file and the tensor."""
    path = os.fspath(Path(directory) / MODEL_FILE)
    if isinstance(model, PreTrainedModel):
        model.load_weights(path)
        return
    model.load_state_dict(load_safetensors(path))


def _as_array(v):
    return v.data if hasattr(v, "data") and isinstance(v.data, np.ndarray) else np.asarray(v)


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)
