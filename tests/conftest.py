import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from admod.demo_data import write_demo_data  # noqa: E402


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A small demo data set (read-only to the tests that use it)."""
    root = tmp_path_factory.mktemp("demo")
    write_demo_data(str(root), count=60, seed=1, scale=0.5)
    return str(root)
