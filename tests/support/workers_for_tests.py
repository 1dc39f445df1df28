"""Functions that the split's worker processes run in tests (importable by a spawned process)."""

import os
import time


def sleep_a_minute(folder: str) -> None:
    """Marks its start, sleeps a minute (a partition that takes long), and marks how it ended."""
    open(os.path.join(folder, f"started-{os.getpid()}"), "w").close()
    try:
        time.sleep(60)
        open(os.path.join(folder, "finished"), "w").close()
    finally:
        open(os.path.join(folder, f"unwound-{os.getpid()}"), "w").close()
