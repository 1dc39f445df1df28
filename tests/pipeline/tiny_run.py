"""A two-step pipeline that imports nothing of admod (fast), run through local_run.run_local as
`admod run` runs its pipeline, for the tests of the run's folder and of stopping a run.

    python -m tests.pipeline.tiny_run PIPELINE_ROOT MARKER_DIR SLEEP_S

Prints the run folder, or what admod prints when stopped (exit status 130).
"""

import os
import signal
import sys
import tempfile

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def first(marker_dir: str, sleep_s: float) -> str:
    import os
    import time

    print("first step started", flush=True)
    with open(os.path.join(marker_dir, f"first-{os.getpid()}"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(sleep_s)
    return "done"


@dsl.component(base_image="python:3.11")
def second(previous: str) -> str:
    print(f"second step after {previous}", flush=True)
    return previous


@dsl.pipeline(name="tiny")
def tiny(marker_dir: str, sleep_s: float):
    second(previous=first(marker_dir=marker_dir, sleep_s=sleep_s).output)


def main(pipeline_root: str, marker_dir: str, sleep_s: str) -> int:
    from admod.errors import RunStopped
    from admod.pipeline import local_run

    # Ctrl-C as a terminal's foreground command gets it. A suite started as a background job
    # (`make test &`, a CI runner) ignores SIGINT and passes that on to every process it starts,
    # in which Python then raises no KeyboardInterrupt: the run could never be stopped so.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    path = os.path.join(tempfile.mkdtemp(), "tiny.yaml")
    compiler.Compiler().compile(tiny, path)
    try:
        run_dir = local_run.run_local(path, {"marker_dir": marker_dir,
                                             "sleep_s": float(sleep_s)}, pipeline_root)
    except RunStopped as stopped:
        print(f"admod: {stopped}", file=sys.stderr)
        return 130
    print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
