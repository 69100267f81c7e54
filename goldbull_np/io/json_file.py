"""Reading a JSON file that came from outside (config.json, index files, trainer_state.json, tokenizer
configs): bounded in size, UTF-8 only, and every failure a ValueError naming the file."""
import json

MAX_JSON_BYTES = 64 << 20  # a config, index or state file; a larger one is not what it claims to be


def read_json(path, missing):
    """The JSON in ``path``; a missing file raises FileNotFoundError "{path}: {missing}"; bad JSON, text that
    is not UTF-8, nesting deep enough to overflow the parser, or a file over ``MAX_JSON_BYTES`` a
    ValueError naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {missing}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise ValueError(f"{path}: larger than {MAX_JSON_BYTES >> 20} MiB; not a config/index file")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(f"{path}: UTF-16 text (byte-order mark); JSON files must be UTF-8")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ValueError(f"{path}: malformed JSON (nested too deeply)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from None


__all__ = ["read_json", "MAX_JSON_BYTES"]
