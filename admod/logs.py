"""One logging format for the command line and the components."""

import logging
import os


FORMAT, DATE_FORMAT = "%(asctime)s %(name)s: %(message)s", "%H:%M:%S"


def setup() -> None:
    logging.basicConfig(level=logging.INFO, format=FORMAT, datefmt=DATE_FORMAT, force=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
