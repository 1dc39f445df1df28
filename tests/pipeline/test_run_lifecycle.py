"""A local run's life: a folder of its own (two runs at once never mix), and Ctrl-C or SIGTERM
ending it in one line that says what was kept, the step it ran stopped with it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from admod.pipeline import local_run, run_summary


def _start(pipeline_root, markers, sleep_s):
    return subprocess.Popen([sys.executable, "-m", "tests.pipeline.tiny_run", str(pipeline_root),
                             str(markers), str(sleep_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_marker(markers, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [f for f in os.listdir(markers) if f.startswith("first-")]
        if found:
            return int((markers / found[0]).read_text())
        time.sleep(0.2)
    raise AssertionError("the first step never started")


def test_two_runs_at_once_each_get_their_own_folder_and_logs(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    runs = [_start(tmp_path / "runs", markers, 3) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [o[1][-2000:] for o in outputs]
    folders = [out.strip().splitlines()[-1] for out, _ in outputs]
    assert len(set(folders)) == 2
    for folder in folders:
        assert os.path.commonpath([folder, str(tmp_path / "runs")]) == str(tmp_path / "runs")
        tasks = run_summary.read_run(folder)
        assert set(tasks) == {"first", "second"}  # its own two steps, no one else's
        logs = {step: open(os.path.join(folder, step, "log")).read() for step in tasks}
        assert "first step started" in logs["first"]
        assert logs["second"].count("second step after done") == 1


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_ends_in_one_line_keeps_its_logs_and_stops_its_step(tmp_path, sent):
    markers = tmp_path / "markers"
    markers.mkdir()
    run = _start(tmp_path / "runs", markers, 120)
    step_pid = _wait_for_marker(markers)
    run.send_signal(sent)  # Ctrl-C reaches admod; a pod's SIGTERM too, and only admod
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("admod: ")]
    assert "stopped during first" in line and "next run starts clean" in line
    kept = line.split("kept ", 1)[1].split(" with ", 1)[0]
    assert os.path.isfile(os.path.join(kept, "first", "log"))
    assert "first step started" in open(os.path.join(kept, "first", "log")).read()
    for _ in range(50):  # the step's process is gone too
        if not os.path.exists(f"/proc/{step_pid}") or _zombie(step_pid):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the step (pid {step_pid}) still runs")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_print_left_indented_by_parallel_tasks_is_put_back(tmp_path, monkeypatch):
    """kfp.local's indented_print replaces builtins.print per task and restores what it found;
    two ParallelFor tasks overlapping in threads can leave an indenting print in place (every
    later line of `admod run` then began with four spaces). The run puts the real one back."""
    import builtins
    import contextlib

    from kfp import compiler
    from kfp.local import logging_utils

    from tests.pipeline.tiny_run import tiny

    @contextlib.contextmanager
    def left_in_place(num_spaces=4):  # what the overlap amounts to: never restored
        found = builtins.print
        builtins.print = lambda *a, **k: (found(" " * num_spaces, end=""), found(*a, **k))[1]
        yield

    monkeypatch.setattr(logging_utils, "indented_print", left_in_place)
    original = builtins.print
    compiler.Compiler().compile(tiny, str(tmp_path / "tiny.yaml"))
    local_run.run_local(str(tmp_path / "tiny.yaml"), {"marker_dir": str(tmp_path),
                                                      "sleep_s": 0.0}, str(tmp_path / "runs"))
    assert builtins.print is original
