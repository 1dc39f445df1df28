"""Installs the project's runtime dependencies into the image, exactly as pinned in the lock.

    python3 install_dependencies.py gpu|cpu

Runs in the image's dependency layer, before any source is copied, so a code change does not
reinstall TensorFlow. gpu adds TensorFlow's CUDA and cuDNN wheels (`tensorflow[and-cuda]`, the
versions pinned in constraints.txt); cpu leaves them out. A proxy's CA bundle or a pip
configuration comes in as build secrets (pip_cert, pip_conf), never as a file of the image.
"""

import os
import subprocess
import sys
import tomllib

SECRETS = {"pip_cert": "PIP_CERT", "pip_conf": "PIP_CONFIG_FILE"}
LOCK = "constraints.txt"


def lock_python() -> tuple[int, int]:
    """The Python version the lock was resolved for, from its '# python X.Y' line."""
    with open(LOCK) as f:
        for line in f:
            if line.startswith("# python "):
                major, minor = line.split()[2].split(".")[:2]
                return int(major), int(minor)
    sys.exit(f"{LOCK} has no '# python X.Y' line: regenerate it with 'make lock'.")


def requirements(variant: str) -> list[str]:
    with open("pyproject.toml", "rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    if variant == "gpu":
        dependencies = [("tensorflow[and-cuda]" if d == "tensorflow" else d) for d in dependencies]
    return ["setuptools", *dependencies]  # setuptools: to install the project without a download


def main(variant: str) -> None:
    if variant not in ("gpu", "cpu"):
        sys.exit(f"VARIANT='{variant}' is unknown: use gpu or cpu.")
    if sys.version_info[:2] != lock_python():
        sys.exit(f"The image's Python is {sys.version_info[0]}.{sys.version_info[1]} but "
                 f"{LOCK} was resolved for {'.'.join(map(str, lock_python()))}: use a base image "
                 "with that Python or regenerate the lock with it.")
    env = dict(os.environ)
    for secret, variable in SECRETS.items():
        if os.path.exists(f"/run/secrets/{secret}"):
            env[variable] = f"/run/secrets/{secret}"
    command = [sys.executable, "-m", "pip", "install", "--no-cache-dir",
               "-c", LOCK, *requirements(variant)]
    subprocess.run(command, env=env, check=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
