"""Files on disk: atomic writes and validated safetensors I/O.

Low in the stack: imports NumPy (and nothing from goldbull_np above it), so every layer that writes
or reads a file (nn's LoRA adapters, text's save_pretrained / HF loading, train's checkpoints) uses
the same two modules:

- :mod:`goldbull_np.io.atomic`: a file or a whole directory appears complete or not at all.
- :mod:`goldbull_np.io.safetensors`: one writer and one validating reader for every safetensors file.
- :mod:`goldbull_np.io.lock`: the advisory writer's lock of a run directory.
- :mod:`goldbull_np.io.json_file`: the one reader of JSON files from outside (bounded, UTF-8, named errors).
"""
from .atomic import (TMP_PREFIX, TRASH_PREFIX, atomic_directory, atomic_write, atomic_write_json, atomic_write_text,
                     fsync_dir, fsync_file, fsync_tree, remove_tree)
from .json_file import MAX_JSON_BYTES, read_json
from .lock import LOCK_NAME, DirectoryLock, DirectoryLockedError
from .safetensors import (DTYPES, MAX_HEADER_SIZE, load_safetensors, read_safetensors_header, save_safetensors)

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_directory", "fsync_file", "fsync_dir",
           "fsync_tree", "remove_tree", "TMP_PREFIX", "TRASH_PREFIX", "save_safetensors", "load_safetensors",
           "read_safetensors_header", "DTYPES", "MAX_HEADER_SIZE", "DirectoryLock", "DirectoryLockedError", "LOCK_NAME",
           "read_json", "MAX_JSON_BYTES"]
