"""Regenerates constraints.txt, the one lock that make, CI and the image build install from.

    python containers/lock.py          (`make lock`)

Resolves the project with every extra, plus TensorFlow's CUDA wheels (the image's gpu variant)
and setuptools (to install the project offline in the image), with pip's resolver and the
current pins as preferences. Nothing is installed.
"""

import json
import subprocess
import sys
import tempfile

LOCK = "constraints.txt"
EXTRAS = ".[dev,bench]"
ALSO = ["tensorflow[and-cuda]", "setuptools"]
HEADER = ("# Exact pins for every environment: make install, CI and the container build "
          "(containers/trainer.Dockerfile).\n# Regenerate with: make lock\n")


def main() -> None:
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                        "--ignore-installed", "--report", report.name, "-c", LOCK, EXTRAS, *ALSO],
                       check=True)
        resolved = json.load(open(report.name))["install"]
    pins = sorted((item["metadata"]["name"], item["metadata"]["version"]) for item in resolved
                  if item["metadata"]["name"] != "admod")
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    with open(LOCK, "w") as f:
        f.write(HEADER + f"# python {version}\n")
        f.writelines(f"{name}=={pin}\n" for name, pin in sorted(pins, key=lambda p: p[0].lower()))
    print(f"wrote {LOCK}: {len(pins)} pins for Python {version}")


if __name__ == "__main__":
    main()
