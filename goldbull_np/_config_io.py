"""Config dataclasses from plain dicts and JSON files, with errors that name the file and the field."""
import dataclasses
import json


def unknown_fields(cls, data):
    """The keys of ``data`` that are not fields of the dataclass ``cls``, sorted."""
    names = {f.name for f in dataclasses.fields(cls)}
    return sorted(set(data) - names)


def dataclass_from_dict(cls, data, source):
    """``cls(**data)``; an unknown key, or a value the class's own checks reject, raises ValueError
    prefixed with ``source`` (the file path when loading a file)."""
    unknown = unknown_fields(cls, data)
    if unknown:
        raise ValueError(f"{source}: unknown {cls.__name__} field(s) {unknown}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


def read_json(path, missing):
    """The JSON in ``path``; a missing file raises FileNotFoundError "{path}: {missing}", bad JSON a
    ValueError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {missing}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from None
