"""Reading what kfp.local prints during a run: sorted by step into each step's log, one line
echoed per step start and end (with its key figure) and per training epoch."""

import collections
import glob
import io
import json
import os
import re
import threading
import time

from admod.pipeline import task_names as names
from admod.results import PhaseSummary

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


def metadata(task: dict, output: str) -> dict:
    """The metadata of a task's output artifact, from its executor output."""
    return task["artifacts"][output]["artifacts"][0].get("metadata", {})


def _split_counts(m: dict) -> str:
    return ", ".join(f"{s} {sum(v for k, v in m.items() if k.startswith(s + '_'))}"
                     for s in ("train", "validation", "test", "excluded"))


def _best_epoch(m: dict) -> str:
    summary = PhaseSummary.from_json(m)
    return f"best val_loss {summary.best_val_loss:.4f} at epoch {summary.best_epoch}"


# Per task: the output whose metadata holds its key figure, and the figure in words.
KEY_FIGURES = {
    names.CHECK_IMAGES: (names.PART, lambda m: f"{int(m['checked'])} files checked"),
    names.MERGE_BUCKET: (names.MERGED,
                         lambda m: f"bucket {m['bucket']}: {int(m['kept'])} images kept"),
    names.SPLIT: (names.METRICS, _split_counts),
    names.TRAIN_HEAD: (names.MODEL, _best_epoch),
    names.FINE_TUNE: (names.MODEL, _best_epoch),
    names.EVALUATE: (names.METRICS, lambda m: f"roc_auc {m['roc_auc']:.4f}, "
                                              f"{'blessed' if m['blessed'] else 'not blessed'}"),
    names.PUSH: (names.PUBLISHED, lambda m: m["version"]),
}


def key_figure(pipeline_root: str, task: str, nth: int = 1) -> str:
    """', ' and the figure a person wants from the `nth` finished run of a task (a ParallelFor
    runs one task several times), read from its executor output, the nth written."""
    if task not in KEY_FIGURES:
        return ""
    pattern = os.path.join(pipeline_root, "*", "**", task, "executor_output.json")
    outputs = sorted(glob.glob(pattern, recursive=True), key=os.path.getmtime)
    if not outputs:
        return ""
    with open(outputs[min(nth, len(outputs)) - 1]) as f:
        output = json.load(f)
    name, words = KEY_FIGURES[task]
    try:
        return ", " + words(metadata(output, name))
    except (KeyError, TypeError):  # a task that failed before writing its figures
        return ""
