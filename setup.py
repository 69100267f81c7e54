"""Build goldbull_np._C from csrc/ (cffi). Metadata lives in pyproject.toml.

The C extension is optional: if there is no compiler, or compiling fails, the install still
succeeds with a warning and goldbull_np runs on its NumPy/Numba kernels.
"""
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that turns a failed C build into a warning."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - CompileError, PlatformError, no compiler, ...
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc, ext.name)

    @staticmethod
    def _warn(exc, name="goldbull_np._C"):
        msg = (f"WARNING: building the optional C extension {name} failed ({type(exc).__name__}: {exc}); "
               "goldbull_np will use its NumPy/Numba kernels.")
        print("*" * 80, msg, "*" * 80, sep="\n", file=sys.stderr)


setup(
    cffi_modules=["csrc/build_kernels.py:ffibuilder"],
    cmdclass={"build_ext": OptionalBuildExt},
)
