"""The ``goldbull`` command: it parses arguments and calls the library's recipes; each subcommand is a module.

    goldbull info | train | generate | eval | finetune | export | train-vision | predict

Exit codes: 0 success, 2 usage error, 1 failure with a one-line reason (the traceback with --debug).
"""
import argparse
import sys
import warnings

from . import eval as eval_cmd, export, finetune, info, text, vision

COMMANDS = (info, text, eval_cmd, finetune, export, vision)  # each module's register(sub) adds its subcommands


class CLIError(Exception):
    """A failure the command reports as one line (exit code 1)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="goldbull", description="Train and fine-tune models on the CPU.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    def one_line(message, category, filename, lineno, file=None, line=None):
        # the library's warnings (replaced characters, a non-finite checkpoint, ...) as the command's own lines
        print(f"goldbull {args.command}: warning: {message}", file=sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = one_line
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print(f"goldbull: {exc or 'interrupted'}", file=sys.stderr)  # a TrainingInterrupted names its checkpoint
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's job is to turn failures into one line
        if args.debug:
            raise
        # never an empty line: a bare MemoryError / AssertionError has no message, its type says what happened
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, MemoryError):
            msg = f"out of memory ({msg}): the model or data is larger than this machine can hold"
        print(f"goldbull {args.command}: error: {msg}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = previous
