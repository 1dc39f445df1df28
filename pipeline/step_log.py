"""Reading what kfp.local prints during a run: sorted by step into each step's log, one line
echoed per step start and end (with its key figure; a fan-out's tasks in one pair of lines, their
figures summed), per training epoch, and when training falls back to random weights."""

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
# admod.model's warning when allow_random_init lets training go on without ImageNet's weights
RANDOM_INIT = re.compile(r"admod\.model: ImageNet weights could not be had .*: training ResNet50 "
                         r"from random initialisation")


class StepLog(io.TextIOBase):
    """What kfp.local prints, sorted by step: every line kept for <run>/<step>/log, one line
    echoed per step start and end (time taken, key figure) and per training epoch."""

    def __init__(self, echo, run_root: str, verbose: bool = False):
        super().__init__()
        self.echo, self.run_root, self.verbose = echo, run_root, verbose
        self.lines: dict[str, list[str]] = {}
        self.task, self.partial, self.started = "_pipeline", "", 0.0
        self.failed = None
        self.fan_out = None  # [task, started, ended, status] of the fan-out under way
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
            self._started(start.group(1))
        self.lines.setdefault(self.task, []).append(line)
        if epoch := EPOCH_LINE.search(line):
            self._say(f"    {self.task} {epoch.group(1)}")
        if RANDOM_INIT.search(line):
            self._say(f"    {self.task}: no ImageNet weights here: training from random "
                      "initialisation (allow_random_init=true); the figures will be far below "
                      "the recipe's")
        if end := TASK_END.search(line):
            self._ended(end.group(1), end.group(2))

    def _started(self, task: str) -> None:
        if self.fan_out and self.fan_out[0] != task:
            self._end_fan_out()
        if task in FAN_OUTS and self.fan_out:
            self.fan_out[1] += 1
        else:
            self.started = time.monotonic()
            if task in FAN_OUTS:  # said once, when its last task has ended
                self.fan_out = [task, 1, 0, "success"]
            else:
                self._say(f"{time.strftime('%H:%M:%S')} {task} ...")
        self.task = task

    def _ended(self, task: str, status: str) -> None:
        if status != "SUCCESS":
            self.failed = task
        if self.fan_out and self.fan_out[0] == task:
            self.fan_out[2] += 1
            if status != "SUCCESS":
                self.fan_out[3] = status.lower()
            return
        figure = "" if self.failed else figure_of(task, finished_outputs(self.run_root, task))
        self._say(f"{time.strftime('%H:%M:%S')} {task} {status.lower()} in "
                  f"{time.monotonic() - self.started:.0f} s{', ' + figure if figure else ''}")

    def _end_fan_out(self) -> None:
        """The fan-out's one closing line: its tasks, their status and summed figure."""
        task, _, ended, status = self.fan_out
        self.fan_out = None
        figure = "" if self.failed else figure_of(task, finished_outputs(self.run_root, task))
        self._say(f"{time.strftime('%H:%M:%S')} {task} ×{ended} {status} in "
                  f"{time.monotonic() - self.started:.0f} s{', ' + figure if figure else ''}")

    def save(self, run_dir: str) -> str:
        """Writes each step's lines to <run_dir>/<step>/log; returns the failed step's log path
        (or the last step's)."""
        if self.fan_out:
            self._end_fan_out()
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
    names.SPLIT: (names.METRICS, _split_counts),
    names.TRAIN_HEAD: (names.MODEL, _best_epoch),
    names.FINE_TUNE: (names.MODEL, _best_epoch),
    names.EVALUATE: (names.METRICS, lambda m: f"roc_auc {m['roc_auc']:.4f}, "
                                              f"{'blessed' if m['blessed'] else 'not blessed'}"),
    names.PUSH: (names.PUBLISHED, lambda m: m["version"]),
}
# A fan-out's tasks (a ParallelFor's): the output whose metadata holds a count, its key, words
FAN_OUTS = {
    names.CHECK_IMAGES: (names.PART, "checked", "files checked"),
    names.MERGE_BUCKET: (names.MERGED, "kept", "images kept"),
}


def finished_outputs(root: str, task: str) -> list[dict]:
    """The executor output of every finished run of `task` under `root` (a run's folder or the
    folder above it), oldest first."""
    pattern = os.path.join(root, "**", task, "executor_output.json")
    outputs = []
    for path in sorted(glob.glob(pattern, recursive=True), key=os.path.getmtime):
        with open(path) as f:
            outputs.append(json.load(f))
    return outputs


def figure_of(task: str, outputs: list[dict]) -> str:
    """The figure a person wants from a task's finished runs: a fan-out's count summed over its
    tasks, else the last run's key figure; '' for a task without one, or without its figures
    (it failed before writing them)."""
    try:
        if task in FAN_OUTS:
            output, key, words = FAN_OUTS[task]
            return f"{sum(int(metadata(o, output)[key]) for o in outputs)} {words}"
        if task in KEY_FIGURES and outputs:
            output, words = KEY_FIGURES[task]
            return words(metadata(outputs[-1], output))
    except (KeyError, TypeError, IndexError):
        pass
    return ""
