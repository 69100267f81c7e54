"""cffi builder for goldbull_np._C (out-of-line API mode), named by setup.py's cffi_modules.

The cdef is the concatenation of the declaration-only headers csrc/*.h; the sources are csrc/*.c.
Flags are portable (no -march=native): the AVX2/FMA loops are compiled per function with
__attribute__((target("avx2,fma"))) and chosen at run time (csrc/internal/gb_common.h).
Build in place for development:  python3 csrc/build_kernels.py  (or pip install -e .)
"""
import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
HEADERS = sorted(glob.glob(os.path.join(HERE, "*.h")))
SOURCES = sorted(glob.glob(os.path.join(HERE, "*.c")))


def _cdef_text(path):
    # cdef does not run the preprocessor: drop '#' lines (pragmas, includes) like pynacl does.
    with open(path) as f:
        return "".join(line for line in f if not line.lstrip().startswith("#"))


def _rel(path):
    # setuptools wants source paths relative to the project root (the cwd of setup.py)
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _flags():
    if sys.platform == "win32":
        return ["/O2", "/openmp"], []
    compile_args = ["-O3", "-std=gnu11", "-fno-math-errno", "-fno-trapping-math", "-fopenmp", "-pthread",
                    "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas"]
    link_args = ["-fopenmp", "-pthread"]
    return compile_args, link_args


def make_ffibuilder(absolute_paths=False):
    path = (lambda p: p) if absolute_paths else _rel
    compile_args, link_args = _flags()
    ffi = FFI()
    for h in HEADERS:
        ffi.cdef(_cdef_text(h))
    ffi.set_source(
        "goldbull_np._C",
        "#include <stdint.h>\n" + "".join(f'#include "{os.path.basename(h)}"\n' for h in HEADERS),
        sources=[path(s) for s in SOURCES],
        include_dirs=[path(HERE)],
        depends=[path(p) for p in HEADERS + glob.glob(os.path.join(HERE, "internal", "*.h"))],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    return ffi


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    # Development build in place (same module file as `pip install -e .`: goldbull_np/_C.abi3.so).
    # ffi.compile() chdirs into tmpdir, so it gets absolute paths; the .so is then moved into place.
    import sysconfig
    root = os.path.dirname(HERE)
    so = make_ffibuilder(absolute_paths=True).compile(tmpdir=os.path.join(root, "build", "cffi_inplace"),
                                                      verbose="-v" in sys.argv)
    pkg = os.path.join(root, "goldbull_np")
    for stale in glob.glob(os.path.join(pkg, "_C.*so")):
        os.remove(stale)  # one module file only, or the import may pick a stale one
    target = os.path.join(pkg, "_C" + sysconfig.get_config_var("EXT_SUFFIX"))
    os.replace(so, target)
    print(target)
