"""The map's nevers (../shared/ARCHITECTURE.md), read from every import in the package, function-level ones
included: train/ knows no model family, optim/ no nn/, kernels/ no autograd, nothing imports torch."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "goldbull_np"


def _imports(path: Path):
    """The absolute module names a file imports (relative imports resolved against the package)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    else:
        parts = parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod
            for a in node.names:  # from .. import text
                yield f"{mod}.{a.name}"


RULES = [
    ("train", ("goldbull_np.text", "goldbull_np.code", "goldbull_np.vision")),
    ("optim", ("goldbull_np.nn",)),
    ("kernels", ("goldbull_np.autograd", "goldbull_np.nn")),
    ("nn", ("goldbull_np.train", "goldbull_np.text", "goldbull_np.optim.step")),
    ("io", ("goldbull_np.nn", "goldbull_np.autograd", "goldbull_np.train")),
]


@pytest.mark.parametrize("layer, forbidden", RULES)
def test_a_layer_does_not_import_above_itself(layer, forbidden):
    bad = []
    for path in sorted((PKG / layer).rglob("*.py")):
        for mod in _imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PKG.parent)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_package_never_imports_torch():
    bad = [f"{p.relative_to(PKG.parent)}" for p in PKG.rglob("*.py")
           if any(m == "torch" or m.startswith("torch.") for m in _imports(p))]
    assert not bad


def test_the_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The test can fail: a relative import inside a function is found and resolved."""
    src = "def f():\n    from ..text import GoldbullText\n    from .. import vision\n"
    tree_path = tmp_path / "goldbull_np" / "train" / "probe.py"
    tree_path.parent.mkdir(parents=True)
    tree_path.write_text(src)
    monkeypatch.setattr(__import__(__name__), "PKG", tmp_path / "goldbull_np")
    mods = set(_imports(tree_path))
    assert {"goldbull_np.text", "goldbull_np.text.GoldbullText", "goldbull_np.vision"} <= mods
