"""Ctrl-C during training: the first SIGINT asks the loop to stop after the current step and save a
checkpoint; a second one stops at once (KeyboardInterrupt wherever the program is).

    with graceful_interrupt() as interrupt:
        while not interrupt.requested: ...

Outside the main thread (where Python cannot install signal handlers) or when SIGINT is not handled
by Python's default handler (someone installed their own, or it is ignored), nothing is changed and
``requested`` stays False: the program's own handling wins.
"""
import contextlib
import signal
import sys
import threading


class Interrupt:
    """Whether a graceful stop was asked for (set by the first SIGINT)."""

    def __init__(self):
        self.requested = False


@contextlib.contextmanager
def graceful_interrupt(message: str = "interrupt: finishing this step and saving a checkpoint "
                                      "(press Ctrl-C again to stop at once)"):
    state = Interrupt()
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield state
        return

    def first(signum, frame):
        state.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second one raises KeyboardInterrupt
        print(f"goldbull: {message}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, first)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after saving a checkpoint (``checkpoint``, or None without a manager)."""

    def __init__(self, step, checkpoint):
        self.step, self.checkpoint = step, checkpoint
        where = f"; checkpoint saved: {checkpoint}" if checkpoint is not None else " (no output_dir: nothing saved)"
        super().__init__(f"interrupted after step {step}{where}")


__all__ = ["graceful_interrupt", "Interrupt", "TrainingInterrupted"]
