"""The CPUs this process may use: its affinity mask, capped by its cgroups' CPU quotas.

A container on GKE with ``resources.limits.cpu: 2`` on a 16-core node has all 16 CPUs in its
affinity mask and in ``os.cpu_count()``; only the CFS quota of its cgroup (``cpu.max`` in cgroup
v2, ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us`` in v1) says it gets two. TensorFlow sizes its
pools from the affinity mask alone (``port::NumSchedulableCPUs``), and so does TF Serving; sized
for 16 CPUs on two, threads wait on each other and the event loop waits behind them. This
module counts both, as Go's runtime and the JVM do: the quota of the process's own cgroup and of
each ancestor up to its hierarchy's mount, rounded up, the smallest winning.

Hand-written because loky's ``cpu_count`` (joblib) reads only the quota files at fixed paths of
the cgroup root: it misses the process's own cgroup on a host that mounts v1 and v2 side by
side, and limits set on a parent cgroup.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class CgroupMount:
    """Where one cgroup hierarchy that controls CPU time is mounted, and which cgroup of that
    hierarchy the process is in (both as the mount shows them)."""

    version: int  # 1 or 2
    mount_root: str  # the hierarchy's path that is mounted (``/`` unless bind-mounted)
    mount_point: str
    cgroup: str  # the process's cgroup, from /proc/self/cgroup


def cpu_mounts(proc_cgroup: str, mountinfo: str) -> list[CgroupMount]:
    """The CPU-controlling cgroup hierarchies of a process, from its ``/proc/self/cgroup`` and
    ``/proc/self/mountinfo`` texts (``man 7 cgroups``, ``man 5 proc``)."""
    v1_path = v2_path = None
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    mounts = []
    for line in mountinfo.splitlines():
        fields, _, after = line.partition(" - ")
        parts, extra = fields.split(), after.split()
        if len(parts) < 5 or len(extra) < 3:
            continue
        root, point, fstype, options = parts[3], parts[4], extra[0], extra[2].split(",")
        if fstype == "cgroup2" and v2_path is not None:
            mounts.append(CgroupMount(2, root, point, v2_path))
        elif fstype == "cgroup" and "cpu" in options and v1_path is not None:
            mounts.append(CgroupMount(1, root, point, v1_path))
    return mounts


def quota_v2(cpu_max: str) -> float | None:
    """CPUs granted by a cgroup v2 ``cpu.max`` (``"$MAX $PERIOD"``); None for ``max``."""
    quota, _, period = cpu_max.strip().partition(" ")
    if quota == "max" or not quota:
        return None
    return int(quota) / int(period or 100_000)


def quota_v1(cfs_quota_us: str, cfs_period_us: str) -> float | None:
    """CPUs granted by cgroup v1's CFS quota and period; None for no quota (-1)."""
    quota, period = int(cfs_quota_us), int(cfs_period_us)
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(root: Path = Path("/")) -> float | None:
    """The smallest CPU quota over the process's cgroups and their ancestors, read from the
    files under ``root`` (the machine's ``/``); None when nothing limits it."""
    try:
        proc_cgroup = (root / "proc/self/cgroup").read_text()
        mountinfo = (root / "proc/self/mountinfo").read_text()
    except OSError:  # not Linux, or /proc not mounted: nothing to read a quota from
        return None
    limits = [
        limit
        for mount in cpu_mounts(proc_cgroup, mountinfo)
        for limit in _quotas_up_the_tree(root, mount)
    ]
    return min(limits, default=None)


def _quotas_up_the_tree(root: Path, mount: CgroupMount) -> list[float]:
    relative = PurePosixPath(mount.cgroup).relative_to(PurePosixPath("/"))
    mounted = PurePosixPath(mount.mount_root).relative_to(PurePosixPath("/"))
    if mounted.parts and relative.parts[: len(mounted.parts)] == mounted.parts:
        relative = PurePosixPath(*relative.parts[len(mounted.parts) :])
    elif mounted.parts:  # the process's cgroup is outside this mount: only its root is seen
        relative = PurePosixPath()
    limits = []
    base = root / mount.mount_point.lstrip("/")
    for depth in range(len(relative.parts), -1, -1):
        folder = base.joinpath(*relative.parts[:depth])
        try:
            if mount.version == 2:
                limit = quota_v2((folder / "cpu.max").read_text())
            else:
                limit = quota_v1(
                    (folder / "cpu.cfs_quota_us").read_text(),
                    (folder / "cpu.cfs_period_us").read_text(),
                )
        except (OSError, ValueError):  # no such cgroup here, or the root's files are absent
            continue
        if limit is not None:
            limits.append(limit)
    return limits


def cpus_allowed(affinity: int, quota: float | None) -> int:
    """The CPUs to size for: the affinity mask's count, capped by the quota rounded up."""
    if quota is None:
        return max(1, affinity)
    return max(1, min(affinity, math.ceil(quota)))


@functools.cache
def usable_cpus() -> int:
    """The CPUs this process may use, read once: its affinity mask and its cgroups' quotas."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpus_allowed(affinity or 1, cgroup_cpu_limit())
