"""One logging format for the command line and the components."""

import logging
import os


def setup() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", force=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
