"""One logging format for the command line and the components."""

import contextlib
import logging
import os
import sys


FORMAT, DATE_FORMAT = "%(asctime)s %(name)s: %(message)s", "%H:%M:%S"


def setup() -> None:
    logging.basicConfig(level=logging.INFO, format=FORMAT, datefmt=DATE_FORMAT, force=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_stderr_silenced():
    """Meanwhile, what is written to file descriptor 2 is dropped: TensorFlow's C++ runtime
    writes its start-up chatter there (absl's "before InitializeLog" notice, CUDA probed on a
    machine without one, oneDNN notes), past Python's logging and TF_CPP_MIN_LOG_LEVEL. Only
    around loading: a failure comes back as a Python exception, said once it is over."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
