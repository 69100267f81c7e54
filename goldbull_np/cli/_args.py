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
    """Set the kernels' thread count from ``--threads``, bounded by the CPUs this process may use (more
    threads than cores only contend): a larger request is lowered, and the command says so."""
    n = getattr(args, "threads", None)
    if not n:
        return
    cpus = available_cpus()
    if n > cpus:
        print(f"goldbull: --threads {n} is more than the {cpus} CPU(s) available; using {cpus}", file=sys.stderr)
        n = cpus
        args.threads = n
    from .. import kernels
    kernels.set_num_threads(n)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    import os
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def add_debug_flag(p) -> None:
    # Also accepted after the subcommand; SUPPRESS keeps the top-level --debug when not given here.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on failure")


def usage_error(command: str, msg: str) -> int:
    print(f"goldbull {command}: error: {msg}", file=sys.stderr)
    return 2
