"""The import graph of admod as installed (admod.pipeline and admod.components come from
pipeline/ and components/): the layers of .importlinter hold and no module of admod imports
another in a circle, function-level imports included (import-linter, on a copy laid out as the
installed package)."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def _installed_layout(root) -> str:
    src = root / "src"
    shutil.copytree(os.path.join(REPO, "admod"), src / "admod")
    for package in ("components", "pipeline"):
        shutil.copytree(os.path.join(REPO, package), src / "admod" / package)
    return str(src)


def _lint(src: str) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, os.path.join(REPO, ".importlinter"), "--no-cache"], cwd=src,
                          env={**os.environ, "PYTHONPATH": src}, capture_output=True, text=True,
                          timeout=300)


def test_the_layers_hold_and_there_is_no_import_circle(tmp_path):
    result = _lint(_installed_layout(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, planted, broken", [
    ("records.py", "\n\ndef _up():\n    from admod import steps\n", "admod.records -> admod.steps"),
    ("metric_names.py", "\n\ndef _up():\n    from admod import storage\n",
     "admod.metric_names -> admod.storage"),
    ("registry.py", "\n\ndef _circle():\n    from admod import model\n", "no import circle"),
])
def test_a_function_level_import_up_the_layers_or_in_a_circle_is_caught(tmp_path, module,
                                                                        planted, broken):
    src = _installed_layout(tmp_path)
    with open(os.path.join(src, "admod", module), "a") as f:
        f.write(planted)
    result = _lint(src)
    assert result.returncode != 0 and broken in result.stdout, result.stdout[-3000:]


def test_every_package_folder_is_installed():
    """A subpackage missing from pyproject.toml works in the editable install (the tests, make
    run) and is absent from the image's regular one: every folder with an __init__.py is listed."""
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        setup = tomllib.load(f)["tool"]["setuptools"]
    folders = {package: folder for package, folder in setup["package-dir"].items()}
    installed = {os.path.normpath(folders[p]) for p in setup["packages"]}
    for top in ("admod", "components", "pipeline"):
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            if "__init__.py" in files and "__pycache__" not in folder:
                assert os.path.relpath(folder, REPO) in installed, folder
