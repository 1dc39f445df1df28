"""What a step's process imports, asked of a fresh interpreter."""

import subprocess
import sys


def loaded_by(statement: str, modules: tuple[str, ...]) -> list[bool]:
    """Whether each of `modules` is imported after `statement` runs in a fresh interpreter."""
    code = f"import sys; {statement}; print(*[m in sys.modules for m in {modules!r}])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return [word == "True" for word in done.stdout.split()]
