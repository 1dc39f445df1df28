"""Installs the project's runtime dependencies into the image, exactly the files of the lock.

    python3 containers/install_dependencies.py gpu|cpu

Runs in the image's dependency layer, before any source is copied, so a code change does not
reinstall TensorFlow. It installs containers/requirements-<variant>.lock in pip's
hash-checking mode: every file must match its sha256 there, or the build fails (a file the
index serves under a pinned name but with other bytes is refused). gpu adds TensorFlow's CUDA
and cuDNN wheels (`tensorflow[and-cuda]`); cpu leaves them out. A proxy's CA bundle or a pip
configuration comes in as build secrets (pip_cert, pip_conf), never as a file of the image.
"""

import os
import subprocess
import sys
import tomllib

SECRETS = {"pip_cert": "PIP_CERT", "pip_conf": "PIP_CONFIG_FILE"}
LOCK = "constraints.txt"


def image_lock(variant: str) -> str:
    """The hashed lock of a variant, relative to the repository root (and to the image's
    working folder, which holds containers/ the same way)."""
    return f"containers/requirements-{variant}.lock"


def lock_python(path: str = LOCK) -> tuple[int, int]:
    """The Python version a lock was resolved for, from its '# python X.Y' line."""
    with open(path) as f:
        for line in f:
            if line.startswith("# python "):
                major, minor = line.split()[2].split(".")[:2]
                return int(major), int(minor)
    sys.exit(f"{path} has no '# python X.Y' line: regenerate it with 'make lock'.")


def requirements(variant: str) -> list[str]:
    with open("pyproject.toml", "rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    if variant == "gpu":
        dependencies = [("tensorflow[and-cuda]" if d == "tensorflow" else d) for d in dependencies]
    return ["setuptools", *dependencies]  # setuptools: to install the project without a download


def main(variant: str) -> None:
    if variant not in ("gpu", "cpu"):
        sys.exit(f"VARIANT='{variant}' is unknown: use gpu or cpu.")
    lock = image_lock(variant)
    if sys.version_info[:2] != lock_python(lock):
        sys.exit(f"The image's Python is {sys.version_info[0]}.{sys.version_info[1]} but "
                 f"{lock} was resolved for {'.'.join(map(str, lock_python(lock)))}: use a base "
                 "image with that Python or regenerate the lock with it.")
    env = dict(os.environ)
    for secret, variable in SECRETS.items():
        if os.path.exists(f"/run/secrets/{secret}"):
            env[variable] = f"/run/secrets/{secret}"
    command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--require-hashes",
               "--no-deps", "-r", lock]
    sys.exit(subprocess.run(command, env=env).returncode)


if __name__ == "__main__":
    main(*sys.argv[1:])
