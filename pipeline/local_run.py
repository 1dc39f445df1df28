"""Running the compiled pipeline on this machine with kfp.local (pipeline/step_log.py reads what
it prints, pipeline/run_summary.py what it wrote).

Two runners: `subprocess` (each step a Python process on this machine, the default) and `docker`
(each step in a container of the pipeline's image, as on a cluster: the network off, the data
mounted read-only, the pipeline root and the registry writable, under a chosen user id).
"""

import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
import warnings

from admod import defaults, demo_data, interrupts, logs, parameters, storage
from admod.errors import AdmodError, RunFailed, RunStopped
from admod.pipeline import compiled, step_log

log = logging.getLogger(__name__)

# Every local run: this machine is not a GPU node, so GPU steps run on its CPU.
LOCAL_RUN = {"require_gpu": False}
# The local profile (without --full): smaller images, data, batches and epoch counts, so that a
# run takes minutes on two CPU cores, and random initialisation when the ImageNet weights cannot
# be had (the summary says so).
LOCAL_PROFILE = {"image_size": 64, "batch_size": 16, "head_epochs": 4, "fine_tune_epochs": 3,
                 "allow_random_init": True, "split_workers": 2}
LOCAL_DEMO_IMAGES = 500


def run_arguments(data_root: str, registry_root: str, given: dict, full: bool = False) -> dict:
    """A local run's pipeline arguments: every local run's settings, the local profile unless
    `full` (the method's values), the roots, then what the user `given` (-p)."""
    return {**LOCAL_RUN, **({} if full else LOCAL_PROFILE), "data_root": data_root,
            "registry_root": registry_root, **given}


def prepare(data: str | None, registry: str, given: dict, full: bool, pipeline_file: str | None,
            pipeline_root: str, image: str | None, scratch: str) -> tuple[str, dict, str]:
    """(pipeline file, arguments, data root) of a local run, every input checked before
    anything is written: `data` (None: the demo data, written when missing), the `registry`
    root, the parameters `given` (-p) over the profile (`full`: the method's values), and
    `pipeline_file` (None: compiled into `scratch` for `image`)."""
    data_root = data or defaults.LOCAL_DEMO_DATA
    data_root = data_root if storage.is_remote(data_root) else os.path.abspath(data_root)
    registry = registry if storage.is_remote(registry) else os.path.abspath(registry)
    arguments = run_arguments(data_root, registry, given, full)
    if pipeline_root and storage.is_inside(pipeline_root, data_root):
        raise AdmodError(f"--pipeline-root '{pipeline_root}' is inside the data root "
                         f"'{data_root}', which admod only reads: pass a folder outside it.")
    if pipeline_file is None:  # compiled on the fly: runs from any folder, no checkout needed
        pipeline_file = os.path.join(scratch, "pipeline.yaml")
        compiled.write_pipeline(pipeline_file, image)
    elif not os.path.exists(pipeline_file):
        raise AdmodError(f"Pipeline file '{pipeline_file}' does not exist: run 'admod compile' "
                         "first, or drop --pipeline-file to compile on the fly.")
    # Every parameter checked before anything is written (the demo data included).
    arguments = parameters.checked(arguments, compiled.declared_parameters(pipeline_file))
    if data is None and not os.path.isdir(data_root):
        demo_data.write_demo_data(data_root, count=LOCAL_DEMO_IMAGES, seed=0)
    if not storage.is_remote(data_root) and not os.path.isdir(data_root):
        raise AdmodError(f"Data folder '{data}' does not exist: pass --data with a folder "
                         "or gs:// or s3:// prefix holding allowed_ads/ and not_allowed_ads/.")
    return pipeline_file, arguments, data_root


def subprocess_runner():
    from kfp import local

    return local.SubprocessRunner(use_venv=False)


def docker_runner(data_root: str, registry_root: str, user: str):
    """kfp.local's DockerRunner for admod: no network, data_root read-only, registry_root
    writable (made if missing), every step as `user` ("UID:GID"). The pipeline root is mounted
    by kfp."""
    from docker.types import Mount
    from kfp import local

    if not storage.is_remote(registry_root):
        os.makedirs(registry_root, exist_ok=True)
    mounts = [Mount(target=registry_root, source=registry_root, type="bind")]
    if not storage.is_remote(data_root):
        mounts.append(Mount(target=data_root, source=data_root, type="bind", read_only=True))
    return local.DockerRunner(network_mode="none", mounts=mounts, user=user)


@contextlib.contextmanager
def _kfp_adjusted():
    """For the run only: kfp's container start replaced by run_container, and the warnings
    that do not apply locally (no container for the subprocess runner, no cloud resources)
    silenced; both as they were afterwards."""
    from kfp.local import docker_task_handler

    original = docker_task_handler.run_docker_container
    docker_task_handler.run_docker_container = run_container
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*non-Python base image.*")
            warnings.filterwarnings("ignore",
                                    message=".*have no effect in the current local runner.*")
            yield
    finally:
        docker_task_handler.run_docker_container = original


def run_container(client, image: str, command: list, volumes: dict, **run_args) -> int:
    """Runs one step's container to its end and returns its exit status.

    Replaces kfp's own `run_docker_container`, which starts containers with auto_remove and
    reports success when the container is gone before its status is read: a failed step
    passed. Here the container is kept until its status is read, then removed."""
    import docker

    try:
        container = client.containers.run(image=image, command=command, volumes=volumes,
                                          detach=True, **run_args)
    except docker.errors.ImageNotFound:
        raise AdmodError(f"Image '{image}' is not on this machine: build it with "
                         "'make image-local' or pass --image.") from None
    try:
        for chunk in container.logs(stream=True, follow=True):
            sys.stdout.write(chunk.decode(errors="replace"))
        return container.wait()["StatusCode"]
    finally:
        container.remove(force=True)


def run_local(pipeline_file: str, arguments: dict, pipeline_root: str, runner=None,
              echo=None, verbose: bool = False) -> str:
    """Runs `pipeline_file` under kfp.local with `runner` (default: subprocesses); returns
    the run's folder, a new one under `pipeline_root` that no other run shares. Each step's
    full log goes to <run>/<step>/log; `echo` (default stdout) gets one line per step start and
    end and per training epoch, or everything if `verbose`. Ctrl-C or SIGTERM stops the steps
    and raises RunStopped, the logs so far kept."""
    from kfp import components, local

    os.makedirs(pipeline_root, exist_ok=True)
    # A folder of its own, made atomically: runs started together never read each other's.
    run_root = tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=pipeline_root)
    # The pipeline root's own mode (mkdtemp makes 0700): steps in containers under another
    # user id write where the root lets them.
    os.chmod(run_root, os.stat(pipeline_root).st_mode & 0o7777)
    local.init(runner=runner or subprocess_runner(), pipeline_root=os.path.abspath(run_root),
               raise_on_error=True)
    steps = step_log.StepLog(echo or sys.stdout, run_root, verbose)
    try:
        with _kfp_adjusted(), contextlib.redirect_stdout(steps), _logging_to(steps), \
                interrupts.sigterm_as_interrupt(), _print_restored():
            pipeline = components.load_component_from_file(pipeline_file)
            pipeline(**arguments)
    except RuntimeError as error:
        reason = step_log.ANSI.sub("", str(error)).splitlines()[0]
        log_path = steps.save(_run_dir(run_root))
        steps.say_failure(log_path)
        raise RunFailed(f"The local run failed ({reason}): the failing step's log, "
                         f"{log_path}, says why.") from None
    except KeyboardInterrupt:
        _stop_descendants()
        run_dir = _run_dir(run_root)
        steps.save(run_dir)
        raise RunStopped(f"stopped during {steps.task}: kept {run_dir} with each step's log so "
                         "far (the registry changes only when push completes); the next run "
                         "starts clean in a folder of its own.") from None
    run_dir = _run_dir(run_root)
    steps.save(run_dir)
    return run_dir


@contextlib.contextmanager
def _print_restored():
    """kfp.local indents a task's prints by replacing builtins.print and putting back what it
    found; two tasks of a ParallelFor in threads can leave the indenting one in place, and every
    later print of the process indented. The print there was before the run comes back."""
    import builtins

    original = builtins.print
    try:
        yield
    finally:
        builtins.print = original


def _stop_descendants() -> None:
    """SIGTERM to every process this one started, directly or not (the step being run): a
    SIGTERM sent to admod alone would leave them running."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [os.getpid()]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    for pid in reversed(found):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


@contextlib.contextmanager
def _logging_to(stream):
    """The root logger writes to `stream` meanwhile: kfp.local's fan-out (ParallelFor) reports
    through it, not through stdout."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(logs.FORMAT, logs.DATE_FORMAT))
    saved, root.handlers = root.handlers, [handler]
    # INFO throughout: each task of a ParallelFor (a thread) sets INFO and puts back the level it
    # found when it ends, which drops a task still running's "finished" line if it was lower.
    saved_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers = saved
        root.setLevel(saved_level)


def _run_dir(run_root: str) -> str:
    """The run's folder in its own root: the one kfp.local made, or one for the logs of a run
    that ended before kfp.local made it."""
    made = sorted(os.listdir(run_root))
    return os.path.join(run_root, made[0] if made else "logs")
