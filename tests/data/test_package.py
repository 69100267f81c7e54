import os
import re
import subprocess
import sys


def test_public_names_importable_from_goldbull_np_data():
    import goldbull_np.data as data

    for name in ("TextDataset", "TokenDataset", "PreprocessConfig", "CleaningConfig", "Preprocessor", "DataLoader",
                 "ByteTokenizer", "CharTokenizer", "BPETokenizer", "load_tokenizer", "DataFormatError",
                 "EmptyDatasetError"):
        assert hasattr(data, name), name
    assert issubclass(data.DataFormatError, ValueError)


def test_import_is_lazy_about_optional_and_upper_layers():
    # goldbull_np itself may load autograd; goldbull_np.data must add no upper layer, no Tensor,
    # and neither optional dependency.
    code = ("import sys, goldbull_np; before = set(sys.modules); import goldbull_np.data; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in ('tokenizers', 'langdetect', 'torch') "
            "or m.split('.')[:2] in (['goldbull_np', 'autograd'], ['goldbull_np', 'nn'], ['goldbull_np', 'train'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_data_layer_does_not_reference_the_tensor():
    import goldbull_np.data as data

    root = os.path.dirname(data.__file__)
    for name in os.listdir(root):
        if name.endswith(".py"):
            src = open(os.path.join(root, name), encoding="utf-8").read()
            imports = re.findall(r"^\s*(?:from|import)\s+(\S+)", src, re.M)
            # the leaf modules below everything are allowed: shared values, atomic writes
            imports = [m for m in imports if m not in ("..constants", "..io")]
            assert not [m for m in imports if "autograd" in m or m.startswith(("..", "goldbull_np.nn"))], name
