"""Config dataclasses from plain dicts and JSON files, with errors that name the file and the field."""
import dataclasses

from .io.json_file import MAX_JSON_BYTES, read_json  # noqa: F401 - the one JSON reader, re-exported here


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

