"""Running the compiled pipeline on this machine with kfp.local, and summarising the run.

Two runners: `subprocess` (each step a Python process on this machine, the default) and `docker`
(each step in a container of the pipeline's image, as on a cluster: the network off, the data
mounted read-only, the pipeline root and the registry writable, under a chosen user id).
"""

import collections
import contextlib
import glob
import io
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
import warnings

from admod import logs, storage
from admod.errors import AdmodError, RunFailed
from admod.metric_names import HEADLINE, threshold_text

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


def subprocess_runner():
    from kfp import local

    return local.SubprocessRunner(use_venv=False)


def docker_runner(data_root: str, registry_root: str, user: str):
    """kfp.local's DockerRunner for admod: no network, data_root read-only, registry_root
    writable, every step as `user` ("UID:GID"). The pipeline root is mounted by kfp."""
    from docker.types import Mount
    from kfp import local

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


class RunStopped(Exception):
    """The run was interrupted (Ctrl-C, SIGTERM); the message says what was kept."""


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
    steps = StepLog(echo or sys.stdout, run_root, verbose)
    try:
        with _kfp_adjusted(), contextlib.redirect_stdout(steps), _logging_to(steps), \
                _sigterm_interrupts(), _print_restored():
            pipeline = components.load_component_from_file(pipeline_file)
            pipeline(**arguments)
    except RuntimeError as error:
        reason = ANSI.sub("", str(error)).splitlines()[0]
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


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (what a pod or a service manager sends) stops the run as Ctrl-C does."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


ANSI = re.compile(r"\x1b\[[0-9;]*m")
TASK_START = re.compile(r"Executing task '([\w-]+)'")
TASK_END = re.compile(r"Task '([\w-]+)' finished with status (\w+)")
# admod.training.EpochLog's line (its logger's name, then the word it starts with)
EPOCH_LINE = re.compile(r"admod\.training: (epoch \d+/\d+: .*)$")


class StepLog(io.TextIOBase):
    """What kfp.local prints, sorted by step: every line kept for <run>/<step>/log, one line
    echoed per step start and end (time taken, key figure) and per training epoch."""

    def __init__(self, echo, pipeline_root: str, verbose: bool = False):
        super().__init__()
        self.echo, self.pipeline_root, self.verbose = echo, pipeline_root, verbose
        self.lines: dict[str, list[str]] = {}
        self.task, self.partial, self.started = "_pipeline", "", 0.0
        self.failed = None
        self.finished = collections.Counter()  # per task name: a ParallelFor's runs share it
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        # The tasks of a ParallelFor run in threads (kfp.local): one writer at a time, or two
        # would each append to the same partial line and one of them be lost.
        with self._lock:
            if self.verbose:
                self.echo.write(text)
            *complete, self.partial = (self.partial + text).split("\n")
            for line in complete:
                self._read(ANSI.sub("", line))
        return len(text)

    def _say(self, line: str) -> None:
        if not self.verbose:
            self.echo.write(line + "\n")
            self.echo.flush()

    def _read(self, line: str) -> None:
        if start := TASK_START.search(line):
            self.task, self.started = start.group(1), time.monotonic()
            self._say(f"{time.strftime('%H:%M:%S')} {self.task} ...")
        self.lines.setdefault(self.task, []).append(line)
        if epoch := EPOCH_LINE.search(line):
            self._say(f"    {self.task} {epoch.group(1)}")
        if end := TASK_END.search(line):
            took = time.monotonic() - self.started
            if end.group(2) != "SUCCESS":
                self.failed = end.group(1)
            self.finished[end.group(1)] += 1
            figure = (key_figure(self.pipeline_root, end.group(1), self.finished[end.group(1)])
                      if not self.failed else "")
            self._say(f"{time.strftime('%H:%M:%S')} {end.group(1)} {end.group(2).lower()} in "
                      f"{took:.0f} s{figure}")

    def save(self, run_dir: str) -> str:
        """Writes each step's lines to <run_dir>/<step>/log; returns the failed step's log path
        (or the last step's)."""
        path = ""
        for task, lines in self.lines.items():
            path = os.path.join(run_dir, task, "log")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            if task == self.failed:
                return path
        return path

    def say_failure(self, log_path: str, count: int = 30) -> None:
        task = self.failed or self.task
        self._say(f"{task} failed; its last {count} lines ({log_path}):")
        for line in self.lines.get(task, [])[-count:]:
            self._say("  | " + line)


def key_figure(pipeline_root: str, task: str, nth: int = 1) -> str:
    """', ' and the figure a person wants from the `nth` finished run of a step (a ParallelFor
    runs one step several times), read from its executor output, the nth written."""
    pattern = os.path.join(pipeline_root, "*", "**", task, "executor_output.json")
    outputs = sorted(glob.glob(pattern, recursive=True), key=os.path.getmtime)
    if not outputs:
        return ""
    with open(outputs[min(nth, len(outputs)) - 1]) as f:
        output = json.load(f)
    try:
        if task == "check-images":
            return f", {int(_metadata(output, 'part')['checked'])} files checked"
        if task == "merge-bucket":
            m = _metadata(output, "merged")
            return f", bucket {m['bucket']}: {int(m['kept'])} images kept"
        if task == "split":
            m = _metadata(output, "metrics")
            return ", " + ", ".join(f"{s} {sum(v for k, v in m.items() if k.startswith(s + '_'))}"
                                    for s in ("train", "validation", "test", "excluded"))
        if task in ("train-head", "fine-tune"):
            m = _metadata(output, "model")
            return f", best val_loss {m['best_val_loss']:.4f} at epoch {int(m['best_epoch'])}"
        if task == "evaluate":
            m = _metadata(output, "metrics")
            return f", roc_auc {m['roc_auc']:.4f}, {'blessed' if m['blessed'] else 'not blessed'}"
        if task == "push":
            return f", {_metadata(output, 'published')['version']}"
    except (KeyError, TypeError):
        pass
    return ""


def read_run(run_dir: str) -> dict:
    """Each task's executor output (artifact metadata and parameter outputs), by task name."""
    tasks = {}
    for path in glob.glob(os.path.join(run_dir, "*", "executor_output.json")):
        with open(path) as f:
            tasks[os.path.basename(os.path.dirname(path))] = json.load(f)
    return tasks


def _metadata(task: dict, output: str) -> dict:
    return task["artifacts"][output]["artifacts"][0].get("metadata", {})


def summary(run_dir: str) -> str:
    """What a person wants to read after a run."""
    from admod import reports  # matplotlib and pandas: only once a run has ended

    tasks = read_run(run_dir)
    lines = ["", f"=== admod local run: {run_dir} ===", ""]
    if "split" in tasks:
        with open(os.path.join(run_dir, "split", "report")) as f:
            lines += ["Split report (split/report):", _without_group_lists(f.read()), ""]
    for task_name, title in (("train-head", "Head phase"), ("fine-tune", "Fine-tune phase")):
        if task_name in tasks:
            m = _metadata(tasks[task_name], "model")
            lines.append(f"{title}: {int(m['epochs_run'])} epochs "
                         f"(last epoch {int(m['last_epoch'])}),"
                         f" best val loss {m['best_val_loss']:.4f} / accuracy "
                         f"{m['best_val_accuracy']:.4f} at epoch {int(m['best_epoch'])}"
                         f" [weights: {m['weights_source']}]")
            if m.get("weights_kept") == "head":  # the exception worth a line
                lines.append(f"  {reports.weights_kept(m).capitalize()}.")
    if "evaluate" in tasks:
        evaluation = _evaluation(run_dir)
        scores = evaluation["scores"]
        lines += ["", f"Metrics on {evaluation['split']} at the operating threshold "
                      f"{threshold_text(scores['threshold'])} ({evaluation['threshold_rule']}):"]
        lines.append("  " + reports.headline_with_intervals(evaluation, HEADLINE)
                     + f" ({evaluation.get('interval_level', 0.95):.0%} intervals)")
        if evaluation.get("optimistic"):
            lines.append("  " + evaluation["optimistic"])
        from admod.evaluation import format_confusion_matrix
        at_half = evaluation["scores_at_0_5"]
        lines.append("  at 0.5: " + ", ".join(f"{k} {at_half[k]:.4f}" for k in HEADLINE))
        calibration = evaluation["calibration"]
        lines.append(f"  Calibration {calibration['method']}: ECE {scores['ece']:.4f} "
                     f"(raw score {calibration['ece_raw']:.4f}) on images it was not fitted on")
        if calibration["refused"]:
            lines.append(f"  Calibration refused: {calibration['refused']}")
        lines += ["  Confusion matrix at the operating threshold (rows: actual):"]
        matrix = format_confusion_matrix(scores["confusion_matrix"])
        lines += ["  " + row for row in matrix.splitlines()]
        verdict = "BLESSED" if evaluation["blessed"] else "NOT BLESSED"
        lines += ["", f"Decision: {verdict}: " + "; ".join(evaluation["reasons"])]
    if "push" in tasks:
        published = tasks["push"]["artifacts"]["published"]["artifacts"][0]
        lines.append(f"Pushed model: {published['metadata']['registry_uri']}")
    elif "evaluate" in tasks and not _evaluation(run_dir)["blessed"]:
        lines.append("Push did not run: the model was not blessed; the registry is unchanged.")
    lines += ["", f"Every step's artifacts: {run_dir}/<step>/<output>; its full log: <step>/log",
              "  split/report (Markdown), split/manifest (CSV), train-head/report and "
              "fine-tune/report (HTML curves), evaluate/report (HTML)", ""]
    return "\n".join(lines)


def _without_group_lists(report: str) -> str:
    """The split report without its list of near-copy groups (the report file has it), nor an
    exclusions section that says none."""
    lines, in_groups = [], False
    report = report.replace("## Exclusions\n\nNone.\n\n", "")
    for line in report.rstrip().splitlines():
        if line.startswith("## "):
            in_groups = line.startswith("## Near-copies")
            lines.append(line + (" (listed in split/report)" if in_groups else ""))
        elif not (in_groups and line.startswith("- ")) and (line.strip() or lines[-1].strip()):
            lines.append(line)
    return "\n".join(lines)


def _evaluation(run_dir: str) -> dict:
    return storage.read_json(os.path.join(run_dir, "evaluate", "metrics"))
