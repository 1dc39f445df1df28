"""What this container may use: its memory and CPU limits, as a pod sees them.

A pod's memory limit is its cgroup's, not the node's RAM: sizing a cache by the node's RAM gets
the container OOM-killed. Reads cgroup v2 (`memory.max`) and v1 (`memory.limit_in_bytes`).
Likewise its CPUs are its quota (`cpu.max`; v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`) and
the CPUs it may run on, not `os.cpu_count()`, the node's.
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


def cpu_limit(cgroup_root: str = CGROUP_ROOT) -> int:
    """CPUs this process may use, at least 1: the container's CPU quota (rounded up), the CPUs
    it is pinned to, or the machine's, whichever is fewest."""
    counts = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count() or 1]
    quota = _read_text(os.path.join(cgroup_root, "cpu.max"))
    if quota and quota.split()[0] != "max":  # v2: "<quota> <period>"
        counts.append(_ceil_ratio(quota.split()[0], quota.split()[1]))
    v1_quota = _read_text(os.path.join(cgroup_root, "cpu", "cpu.cfs_quota_us"))
    v1_period = _read_text(os.path.join(cgroup_root, "cpu", "cpu.cfs_period_us"))
    if v1_quota and v1_period and not v1_quota.startswith("-"):
        counts.append(_ceil_ratio(v1_quota, v1_period))
    return max(1, min(counts))


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _ceil_ratio(quota: str, period: str) -> int:
    return -(-int(quota) // int(period))
