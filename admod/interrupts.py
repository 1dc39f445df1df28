"""SIGTERM, what a pod's end or a service manager sends, handled as Ctrl-C: the command unwinds,
its temporary folders go and what it started is stopped. One context for every command."""

import contextlib
import signal


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """From now on in this process (a worker's initializer), SIGTERM raises KeyboardInterrupt, so
    its work unwinds (its temporary files go) as on Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Meanwhile, SIGTERM raises KeyboardInterrupt in the main thread; the handler there was
    before comes back afterwards."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
