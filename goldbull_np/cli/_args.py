"""Argument helpers shared by the subcommands."""
import argparse
import sys


def int_at_least(low: int, what: str):
    """An argparse type: an integer >= ``low``."""
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            v = low - 1
        if v < low:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {s!r}")
        return v

    return parse


def finite_float(low: float = float("-inf")):
    """An argparse type: a finite float >= ``low`` (``nan``/``inf``, which float() accepts, are refused)."""
    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        if not (low <= v < float("inf")):  # NaN fails this too
            raise argparse.ArgumentTypeError(f"expected a finite number >= {low:g}, got {s!r}")
        return v

    return parse


positive_int = int_at_least(1, "positive")
nonneg_int = int_at_least(0, "non-negative")


def add_threads_flag(p) -> None:
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads for the C kernels, numba and OpenBLAS (default: all cores)")


def apply_threads(args) -> None:
    if getattr(args, "threads", None):
        from .. import kernels
        kernels.set_num_threads(args.threads)


def add_debug_flag(p) -> None:
    # Also accepted after the subcommand; SUPPRESS keeps the top-level --debug when not given here.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on failure")


def usage_error(command: str, msg: str) -> int:
    print(f"goldbull {command}: error: {msg}", file=sys.stderr)
    return 2
