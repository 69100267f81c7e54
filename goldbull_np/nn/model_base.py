"""The model base: a config dataclass, ``save_pretrained``/``from_pretrained`` and a registry of model types.

Every model family (GoldbullText, and the code and vision models) is a :class:`PreTrainedModel` with a
:class:`PretrainedConfig`. On disk a model is a directory::

    config.json          the config's fields + "model_type" + "architectures"
    model.safetensors    the weights; a tied weight (two names, one Parameter) is stored once, under its
                         first name, and the metadata records ``tied`` = {alias: stored name}

Both files are written atomically (goldbull_np.io). ``PreTrainedModel.from_pretrained(dir)`` reads
``model_type`` from config.json and finds the loader registered for it, so a directory loads without
knowing its class; a family may also register foreign model types (GoldbullText registers Hugging
Face's "gpt2" and "llama", whose directories it converts).
"""
import dataclasses
import json
import os
from typing import Callable, ClassVar, Optional

import numpy as np

from .. import random as _random
from .._config_io import dataclass_from_dict, read_json
from ..io import atomic_write_json, load_safetensors, save_safetensors
from .module import Module

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

# model_type -> loader(directory) -> model; filled by register_model / register_model_type
_LOADERS: dict = {}
_ARCHITECTURES: dict = {}  # architecture name -> model_type, for configs without model_type


def physical_memory() -> Optional[int]:
    """This machine's physical memory in bytes (None where it cannot be told)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def _gib(n):
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def check_memory(nbytes: int, what: str, available: Optional[int] = None) -> None:
    """ValueError if ``what`` needs ``nbytes`` (estimated before allocating) and more than ``available``
    (default: the physical memory) exists: a model that cannot fit fails at once, not after minutes."""
    limit = physical_memory() if available is None else available
    if limit is not None and nbytes > limit:
        raise ValueError(f"{what} needs at least {_gib(nbytes)} for its weights alone, more than this machine's "
                         f"{_gib(limit)}: check the config's sizes")


class PretrainedConfig:
    """Base of model configs (dataclasses): ``to_dict``/``from_dict``, config.json, ``model_type``.

    Subclasses are dataclasses that set ``model_type`` and ``architecture`` and validate themselves
    (``__post_init__``).
    """

    model_type: ClassVar[str] = ""
    architecture: ClassVar[str] = ""

    def to_dict(self) -> dict:
        """The fields plus ``model_type`` and ``architectures`` (what config.json holds)."""
        d = dataclasses.asdict(self)
        d["model_type"] = self.model_type
        d["architectures"] = [self.architecture]
        return d

    @classmethod
    def from_dict(cls, d, source="config"):
        """Build from a dict as written by ``to_dict`` (unknown keys are an error naming them).

        Args:
            d: the mapping.
            source: named in error messages (the file path when loading a file).
        """
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(d).__name__}")
        d = dict(d)
        model_type = d.pop("model_type", cls.model_type)
        d.pop("architectures", None)
        if model_type != cls.model_type:
            raise ValueError(f"{source}: model_type is {model_type!r}, expected {cls.model_type!r}")
        return dataclass_from_dict(cls, d, source)

    def to_json_file(self, path) -> None:
        """Write config.json atomically."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_json_file(cls, path):
        """Read a config.json; errors name the file."""
        return cls.from_dict(read_json(path, "no such config file"), source=str(path))


def check_config_against_weights(config, weights_path, config_source, quantized=False) -> None:
    """Before building a model: a config that describes far more parameters than the weights file holds
    (read from its header, no data) is a ValueError naming both files, so a hostile config.json
    (``n_layer = 10**9``, ``vocab_size = 16M`` beside small weights) fails at once instead of allocating;
    then the model must fit in memory (``config.check_fits``). Configs without ``num_parameters()`` /
    ``memory_bytes()`` are not checked here."""
    from ..io import read_safetensors_header
    count = getattr(config, "num_parameters", None)
    if count is None or getattr(config, "memory_bytes", None) is None:
        return
    tensors, _ = read_safetensors_header(weights_path)
    held, held_bytes = 0, 0
    for info in tensors.values():
        n = 1
        for d in info["shape"]:
            n *= d
        held += n
        held_bytes += info["data_offsets"][1] - info["data_offsets"][0]
    want = count()
    if quantized:  # int8/int4 files hold fewer bytes (and int4 fewer values) than the float model: bound memory
        held, held_bytes = want, config.memory_bytes()
    # A small difference (a missing or misshapen tensor) is left to load_weights, which names each tensor;
    # a config that would allocate far more than the file holds is refused before anything is built.
    if want != held and config.memory_bytes() > 4 * held_bytes + _SLACK:
        raise ValueError(f"{config_source} describes a model of {want:,} parameters, but {weights_path} holds "
                         f"{held:,} values in {len(tensors)} tensors: the config does not match the weights")
    fits = getattr(config, "check_fits", None)
    if fits is not None:
        fits(source=str(config_source))


_SLACK = 64 << 20  # bytes a config may allocate beyond 4x its weights file before it is refused unbuilt


def register_model(cls):
    """Class decorator: register a PreTrainedModel subclass as the loader of its config's model_type."""
    register_model_type(cls.config_class.model_type, cls._load_native, (cls.config_class.architecture,))
    return cls


def register_model_type(model_type: str, loader: Callable, architectures=()) -> None:
    """Register ``loader(directory) -> model`` for directories whose config.json says ``model_type``
    (or, lacking one, lists one of ``architectures``)."""
    if not model_type:
        raise ValueError("register_model_type: empty model_type")
    _LOADERS[model_type] = loader
    for a in architectures:
        _ARCHITECTURES[a] = model_type


def registered_model_types() -> list:
    return sorted(_LOADERS)


def directory_model_type(directory, default: Optional[str] = None) -> str:
    """The ``model_type`` of the model directory's config.json (FileNotFoundError/ValueError naming it);
    ``default`` when the config names neither a model_type nor a known architecture."""
    path = os.path.join(directory, CONFIG_NAME)
    d = read_json(path, "no such config file (not a model directory)")
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(d).__name__}")
    mt = d.get("model_type")
    archs = d.get("architectures") or ()
    if not isinstance(archs, (list, tuple)):
        raise ValueError(f"{path}: architectures must be a list of class names, got {archs!r:.100}")
    if mt is None:  # older configs name only their architectures
        mt = next((_ARCHITECTURES[a] for a in archs if isinstance(a, str) and a in _ARCHITECTURES), default)
    if not isinstance(mt, str) or not mt:
        raise ValueError(f"{path}: no model_type (and no known architectures)")
    return mt


def load_pretrained(directory, expected: Optional[type] = None):
    """Load any registered model from ``directory`` by its config.json's model_type.

    Args:
        directory: a model directory (config.json + weights).
        expected: the class the result must be an instance of (the class ``from_pretrained`` was called on).
    """
    own = getattr(getattr(expected, "config_class", None), "model_type", None) or None
    model_type = directory_model_type(directory, default=own)
    loader = _LOADERS.get(model_type)
    if loader is None:
        path = os.path.join(directory, CONFIG_NAME)
        archs = read_json(path, "no such config file").get("architectures")
        raise ValueError(f"{path}: unsupported architecture (model_type={model_type!r}, architectures={archs}); "
                         f"supported: {', '.join(registered_model_types()) or 'none'} (a family's package must be "
                         "imported to register its model types, e.g. goldbull_np.text)")
    model = loader(os.fspath(directory))
    if expected is not None and not isinstance(model, expected):
        raise ValueError(f"{directory}: holds a {type(model).__name__} (model_type {model_type!r}), "
                         f"not a {expected.__name__}")
    return model


class PreTrainedModel(Module):
    """Base of the model families: a config, save/load in the directory format above, a default task.

    Subclasses set ``config_class`` (a :class:`PretrainedConfig` dataclass), take ``config`` as their
    first constructor argument, and are registered with :func:`register_model`.
    """

    config_class: ClassVar[type] = PretrainedConfig

    def default_task(self):
        """The training task a Trainer uses for this model when none is given (goldbull_np.train.Task)."""
        raise NotImplementedError(f"{type(self).__name__} has no default task: pass task= to the Trainer")

    # ---- tied weights ---------------------------------------------------------------------------
    def tied_weights(self) -> dict:
        """``{alias: name}`` for every parameter reachable under two names (alias -> the first name)."""
        first, tied = {}, {}
        for name, t in self.state_dict(keep_vars=True).items():
            if id(t) in first:
                tied[name] = first[id(t)]
            else:
                first[id(t)] = name
        return tied

    # ---- save / load ----------------------------------------------------------------------------
    def save_pretrained(self, save_directory) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``save_directory`` (created if needed);
        tied weights stored once; each file written atomically."""
        os.makedirs(save_directory, exist_ok=True)
        self.config.to_json_file(os.path.join(save_directory, CONFIG_NAME))
        tied = self.tied_weights()
        tensors = {name: np.ascontiguousarray(t.data) for name, t in self.state_dict(keep_vars=True).items()
                   if name not in tied}
        meta = {"format": "np", "model_type": self.config.model_type}
        if tied:
            meta["tied"] = json.dumps(tied, sort_keys=True)
        from .quantized import QUANT_CONFIG_NAME, quantization_config
        qconfig = quantization_config(self)
        qpath = os.path.join(save_directory, QUANT_CONFIG_NAME)
        if qconfig is not None:
            meta["quantization"] = f"int{qconfig['bits']}"
            atomic_write_json(qpath, qconfig)
        elif os.path.exists(qpath):
            os.remove(qpath)  # a float model written over a quantised directory
        save_safetensors(tensors, os.path.join(save_directory, WEIGHTS_NAME), metadata=meta)

    def save(self, directory, *, overwrite: bool = False):
        """``save_pretrained`` into a new directory, atomically (the seed's ``optimized_model.save(dir)``);
        an existing one is replaced only with ``overwrite``."""
        from ..io import atomic_directory
        with atomic_directory(directory, replace=overwrite) as tmp:
            self.save_pretrained(os.fspath(tmp))
        return directory

    @classmethod
    def from_pretrained(cls, pretrained_dir, device="cpu"):
        """Load a model directory: this class's (written by ``save_pretrained``) or any model type
        registered for it (a Hugging Face GPT-2 / Llama directory for GoldbullText).

        The global random generator is left as it was (construction draws a throwaway init).
        Raises:
            FileNotFoundError / ValueError naming the file, and the tensor for a missing, unexpected or
            wrongly shaped tensor.
        """
        if device not in (None, "cpu"):
            raise ValueError(f"only device='cpu' is supported, got {device!r}")
        return load_pretrained(pretrained_dir, expected=cls)

    @classmethod
    def _load_native(cls, directory):
        config_path, weights = os.path.join(directory, CONFIG_NAME), os.path.join(directory, WEIGHTS_NAME)
        config = cls.config_class.from_json_file(config_path)
        if not os.path.exists(weights):
            raise FileNotFoundError(f"{weights}: no such weights file")
        from .quantized import QUANT_CONFIG_NAME, prepare_quantized
        qpath = os.path.join(directory, QUANT_CONFIG_NAME)
        qconfig = read_json(qpath, "no such file") if os.path.exists(qpath) else None
        check_config_against_weights(config, weights, config_path, quantized=qconfig is not None)
        model = cls.from_config_untrained(config)
        if qconfig is not None:  # int8/int4 Linears (goldbull_np.nn.quantized) before the weights go in
            prepare_quantized(model, qconfig, source=qpath)
        model.load_weights(weights)
        return model

    @classmethod
    def from_config_untrained(cls, config):
        """A model built from ``config`` without disturbing the global random generator (its initial
        weights are a throwaway draw, to be overwritten by loaded ones)."""
        state = _random.get_rng_state()
        try:
            return cls(config)
        finally:
            _random.set_rng_state(state)

    def load_weights(self, path):
        """Load a safetensors file into the model in place (tied weights may be stored once).

        Raises:
            FileNotFoundError, or ValueError naming the file and each missing, unexpected, wrongly shaped
            or (for integer tensors) wrongly typed tensor; nothing is copied unless every tensor fits.
        """
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such weights file")
        arrays = load_safetensors(path)
        targets = self.state_dict(keep_vars=True)
        present = {id(targets[k]) for k in arrays if k in targets}
        missing = [k for k, t in targets.items() if k not in arrays and id(t) not in present]
        unexpected = [k for k in arrays if k not in targets]
        bad = [f"tensor {k!r} has shape {arrays[k].shape}, expected {targets[k].shape}" for k in arrays
               if k in targets and arrays[k].shape != targets[k].shape]
        # integer tensors (quantised weights) must come as what they are: a float cannot become int8 codes
        bad += [f"tensor {k!r} has dtype {arrays[k].dtype}, expected {targets[k].dtype}" for k in arrays
                if k in targets and targets[k].dtype.kind in "iub" and arrays[k].dtype != targets[k].dtype]
        if missing or unexpected or bad:
            parts = ([f"missing tensor(s) {missing}"] if missing else []) + \
                    ([f"unexpected tensor(s) {unexpected}"] if unexpected else []) + bad
            raise ValueError(f"{path}: " + "; ".join(parts))
        self.load_state_dict(arrays, strict=True)
        return self


__all__ = ["PretrainedConfig", "PreTrainedModel", "check_config_against_weights", "check_memory", "physical_memory",
           "register_model", "register_model_type", "load_pretrained",
           "registered_model_types", "directory_model_type", "CONFIG_NAME", "WEIGHTS_NAME"]
