"""The ``goldbull`` command: train, generate, eval, info (more subcommands register themselves here).

Exit codes: 0 success, 2 usage error, 1 failure with a one-line reason (the traceback with --debug).
"""
import argparse
import platform
import sys


class CLIError(Exception):
    """A failure the command reports as one line (exit code 1)."""


def cmd_info(args) -> int:
    """Print versions, the C extension status, thread counts and each kernel's backend."""
    import numpy as np

    from . import __version__, kernels

    info = kernels.info()
    if args.json:
        import json

        print(json.dumps({"goldbull_np": __version__, "python": platform.python_version(),
                          "numpy": np.__version__, **info}, indent=2, default=str))
        return 0
    c = info["c_extension"]
    numba = info["numba"]
    threads = info["threads"]
    print(f"goldbull_np {__version__}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"numpy       {np.__version__}")
    print(f"numba       {numba['version'] or 'not installed'}")
    print(f"cffi        {info['cffi_version']}")
    print(f"C extension {'loaded' if c['loaded'] else 'NOT loaded: ' + str(c.get('reason'))}"
          + (f" (ISA tier {c['isa']}; this CPU: {c['cpu_isa']})" if c['loaded'] and 'isa' in c else ""))
    print(f"threads     cpus={threads['cpus']} openblas={threads['openblas']} openmp={threads['openmp']} "
          f"numba={threads['numba'] if threads['numba'] is not None else '(not loaded)'}")
    print(f"backend     GOLDBULL_BACKEND={info['selection']}")
    print("kernel                    float32    float64")
    for name, row in info["kernels"].items():
        print(f"  {name:<23} {row.get('float32') or '-':<10} {row.get('float64') or '-'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="goldbull", description="Train and fine-tune models on the CPU.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("info", help="versions, C extension, threads, kernel backends")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_info)
    _register_optional_commands(sub)
    return parser


def _register_optional_commands(sub) -> None:
    """Subcommands defined next to the code they drive (train/, text/) add themselves here."""
    from .text.finetune import register_cli as register_finetune
    from .train.commands import register as register_training

    register_training(sub)
    register_finetune(sub)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("goldbull: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's job is to turn failures into one line
        if args.debug:
            raise
        print(f"goldbull {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
