"""The embedded default corpus: English prose taken from the Python standard library's own docstrings.

It exists on every machine that has Python, needs no download, and is deterministic for a given Python
version. Docstrings are read from the imported objects (so .pyc-only installs work); under ``python -OO``,
which strips them, they are parsed out of the module sources instead.
"""
import ast
import importlib
import inspect
import sys
import warnings

# Pure-Python modules with long, well-written docstrings, present in every CPython distribution.
DEFAULT_MODULES = (
    "argparse", "collections", "functools", "itertools", "json", "textwrap", "difflib", "pathlib", "random",
    "statistics", "fractions", "decimal", "heapq", "bisect", "string", "shutil", "tempfile", "csv", "datetime",
    "calendar", "contextlib", "dataclasses", "enum", "typing", "inspect", "ast", "tokenize", "pprint",
    "logging", "unittest", "doctest", "email.message", "http.client", "urllib.parse", "zipfile", "tarfile",
    "subprocess", "threading", "queue", "sched", "configparser", "optparse", "gettext", "locale", "codecs",
    "base64", "hashlib", "hmac", "secrets", "uuid", "ipaddress", "smtplib", "ftplib", "imaplib", "pdb",
    "cmd", "shlex", "glob", "fnmatch", "filecmp", "fileinput", "linecache", "traceback", "warnings",
    "weakref", "copy", "numbers", "operator", "abc", "io", "os", "posixpath", "selectors", "asyncio.events",
    "asyncio.tasks", "concurrent.futures._base", "multiprocessing.pool", "xml.dom.minidom", "html.parser",
    "wave", "colorsys", "timeit", "trace", "pydoc", "plistlib", "mailbox", "netrc", "graphlib",
)

def _module_docs(name: str) -> list:
    with warnings.catch_warnings():  # some modules warn on import or attribute access (deprecations)
        warnings.simplefilter("ignore")
        return _collect(name)


def _collect(name: str) -> list:
    try:
        mod = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a platform may lack a module; skip it
        return []
    docs = []
    if sys.flags.optimize >= 2:  # docstrings stripped: read them from the source
        try:
            tree = ast.parse(inspect.getsource(mod))
        except (OSError, TypeError, SyntaxError):
            return []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                d = ast.get_docstring(node)
                if d:
                    docs.append(d)
        return docs
    if mod.__doc__:
        docs.append(inspect.cleandoc(mod.__doc__))
    for attr, obj in vars(mod).items():  # definition order: deterministic
        if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if obj.__doc__:
                docs.append(inspect.cleandoc(obj.__doc__))
            if inspect.isclass(obj):
                for mname, member in vars(obj).items():
                    if mname.startswith("_") and mname != "__init__":
                        continue
                    doc = getattr(member, "__doc__", None)
                    if inspect.isfunction(member) and doc:
                        docs.append(inspect.cleandoc(doc))
    return docs


def default_corpus(modules=DEFAULT_MODULES, max_chars: int = 1_000_000) -> str:
    """The default training text: docstrings of ``modules``, cleaned, de-duplicated, joined by blank lines.

    Args:
        modules: importable standard-library module names.
        max_chars: stop adding docstrings beyond this many characters.

    Returns:
        A plain-text corpus (mostly ASCII English prose with some code samples).
    """
    seen, parts, total = set(), [], 0
    for name in modules:
        for doc in _module_docs(name):
            # ASCII only keeps a char-level vocabulary small; indentation is kept (code samples)
            text = "\n".join(line.rstrip().expandtabs(4) for line in doc.splitlines()).strip()
            text = text.encode("ascii", "ignore").decode("ascii")
            if len(text) < 40 or text in seen:
                continue
            seen.add(text)
            parts.append(text)
            total += len(text) + 2
            if total >= max_chars:
                return "\n\n".join(parts) + "\n"
    if not parts:  # pragma: no cover - only on a Python with no standard library
        parts = [inspect.cleandoc(str.__doc__ or ""), inspect.cleandoc(dict.__doc__ or ""),
                 "The quick brown fox jumps over the lazy dog."]
    return "\n\n".join(parts) + "\n"
