"""What this container may use: its memory limit, as a pod sees it.

A pod's memory limit is its cgroup's, not the node's RAM: sizing a cache by the node's RAM gets
the container OOM-killed. Reads cgroup v2 (`memory.max`) and v1 (`memory.limit_in_bytes`).
"""

import os

CGROUP_ROOT = "/sys/fs/cgroup"
_V1_UNLIMITED = 2**60  # v1 reports "no limit" as a huge number near 2**63


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _read_limit(path: str) -> int | None:
    try:
        with open(path) as f:
            value = f.read().strip()
    except OSError:
        return None
    if value == "max" or not value.isdigit() or int(value) >= _V1_UNLIMITED:
        return None
    return int(value)


def memory_limit(cgroup_root: str = CGROUP_ROOT) -> int:
    """Bytes this process may use: the container's cgroup limit, or the machine's RAM when
    there is none (or it is larger)."""
    limits = [_read_limit(os.path.join(cgroup_root, "memory.max")),
              _read_limit(os.path.join(cgroup_root, "memory", "memory.limit_in_bytes"))]
    return min([physical_memory()] + [limit for limit in limits if limit])
