"""Regenerates the locks, or checks them (`make lock`, `make lock-check` in CI).

    python containers/lock.py [--check]

- constraints.txt: exact pins for every environment (make install, CI), resolved with every
  extra plus TensorFlow's CUDA wheels and setuptools, the current pins as preferences.
- containers/requirements-{cpu,gpu}.lock: the image's runtime closure for each variant, each
  file by its sha256, for pip's hash-checking mode (`--require-hashes`): the image installs
  exactly the files reviewed here, not whatever the index serves under a pinned name. The
  hashes are of the files pip picks on this machine, so run it where the image's platform is
  (Linux x86_64, the lock's Python, glibc no newer than the base's Debian): it refuses
  elsewhere.
- the Dockerfile's base image, by digest (ARG BASE_IMAGE), re-read from its registry where it
  answers; where it does not (no registry here) the digest is kept, and said.

--check regenerates into memory and exits 1 naming each file that differs (drift: a
dependency or pin changed without `make lock`). Nothing is installed.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from install_dependencies import LOCK, image_lock, requirements  # noqa: E402

EXTRAS = ".[dev,bench]"
ALSO = ["tensorflow[and-cuda]", "setuptools"]
HEADER = ("# Exact pins for every environment: make install, CI and the container build "
          "(containers/trainer.Dockerfile).\n# Regenerate with: make lock\n")
IMAGE_HEADER = ("# The trainer image's {variant} dependencies, each file by its hash: installed "
                "with pip --require-hashes\n# (containers/install_dependencies.py). Regenerate "
                "with: make lock (containers/lock.py)\n")
DOCKERFILE = "containers/trainer.Dockerfile"
BASE_ARG = re.compile(r"^ARG BASE_IMAGE=(?P<reference>\S+)$", re.MULTILINE)
BASE_GLIBC = (2, 36)  # Debian bookworm's, the base's


def resolve(packages: list[str], constraints: str) -> list[dict]:
    """What pip would install for `packages` under `constraints`: its report's items."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                        "--ignore-installed", "--report", report.name, "-c", constraints,
                        *packages], check=True)
        return json.load(open(report.name))["install"]


def _python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def constraints_text() -> str:
    pins = sorted(((item["metadata"]["name"], item["metadata"]["version"])
                   for item in resolve([EXTRAS, *ALSO], LOCK)
                   if item["metadata"]["name"] != "admod"), key=lambda p: p[0].lower())
    return HEADER + f"# python {_python()}\n" + "".join(f"{n}=={v}\n" for n, v in pins)


def image_lock_text(variant: str) -> str:
    """The variant's closure, pinned to the constraints, each with the sha256 of its file."""
    lines = []
    for item in sorted(resolve(requirements(variant), LOCK),
                       key=lambda i: i["metadata"]["name"].lower()):
        digest = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        if not digest:
            sys.exit(f"The index gave no sha256 for {item['metadata']['name']}: hash-checking "
                     "needs one; use an index that serves hashes (PyPI does).")
        lines.append(f"{item['metadata']['name']}=={item['metadata']['version']} \\\n"
                     f"    --hash=sha256:{digest}\n")
    return IMAGE_HEADER.format(variant=variant) + f"# python {_python()}\n" + "".join(lines)


def dockerfile_text() -> str:
    """The Dockerfile with its base's digest re-read from the registry, or as it is."""
    text = open(DOCKERFILE).read()
    reference = BASE_ARG.search(text)["reference"]
    tag = reference.split("@")[0]
    try:
        from admod.pipeline import image_digest

        pinned = image_digest.resolve(tag)
    except Exception as error:  # noqa: BLE001 - no registry here: say so, keep the digest
        reason = re.search(r"\((.*?)\)", str(error))
        print(f"lock: the registry did not give the digest of {tag} "
              f"({reason[1] if reason else type(error).__name__}): kept "
              f"{reference.split('@')[-1]}", file=sys.stderr)
        return text
    return text.replace(reference, pinned)


def _refuse_another_platform() -> None:
    glibc = tuple(int(p) for p in platform.libc_ver()[1].split(".")[:2] if p.isdigit())
    if platform.machine() != "x86_64" or not glibc or glibc > BASE_GLIBC:
        sys.exit(f"lock: this machine ({platform.machine()}, glibc {platform.libc_ver()[1]}) "
                 f"is not the image's platform (x86_64, glibc <= "
                 f"{'.'.join(map(str, BASE_GLIBC))}): the hashes would be of other files. Run "
                 "it there, e.g. in the base image.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail on drift, write nothing")
    check = parser.parse_args().check
    _refuse_another_platform()
    wanted = {LOCK: constraints_text(), DOCKERFILE: dockerfile_text(),
              **{image_lock(v): image_lock_text(v) for v in ("cpu", "gpu")}}
    stale = [path for path, text in wanted.items()
             if not os.path.exists(path) or open(path).read() != text]
    if check:
        if stale:
            sys.exit(f"lock: {', '.join(stale)} differ from what pyproject.toml and the pins "
                     "resolve to: run `make lock` and commit the result.")
        print(f"lock: {', '.join(wanted)} are up to date")
        return
    for path in stale:
        with open(path, "w") as f:
            f.write(wanted[path])
    print(f"lock: wrote {', '.join(stale) or 'nothing (all up to date)'}")


if __name__ == "__main__":
    main()
