"""The server counts the CPUs it may use from its affinity mask and its cgroups' CPU quotas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from timonel.server.cpus import cgroup_cpu_limit, cpus_allowed, quota_v1, quota_v2

V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
#: a host that mounts v1 controllers and v2 side by side (this machine's layout)
HYBRID_MOUNTS = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def machine(root: Path, cgroup: str, mountinfo: str, files: dict[str, str]) -> Path:
    """A fake ``/`` holding /proc/self/{cgroup,mountinfo} and the cgroup files given."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(cgroup)
    (root / "proc/self/mountinfo").write_text(mountinfo)
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [("max 100000\n", None), ("200000 100000\n", 2.0), ("150000 100000", 1.5), ("50000", 0.5)],
)
def test_cgroup_v2_cpu_max_reads_as_cpus(cpu_max: str, cpus: float | None) -> None:
    assert quota_v2(cpu_max) == cpus


@pytest.mark.parametrize(
    ("quota", "period", "cpus"), [("-1", "100000", None), ("250000\n", "100000\n", 2.5)]
)
def test_cgroup_v1_cfs_quota_reads_as_cpus(quota: str, period: str, cpus: float | None) -> None:
    assert quota_v1(quota, period) == cpus


@pytest.mark.parametrize(
    ("affinity", "quota", "cpus"),
    [(16, None, 16), (16, 2.0, 2), (16, 1.5, 2), (16, 0.2, 1), (2, 8.0, 2), (0, None, 1)],
)
def test_the_quota_rounded_up_caps_the_affinity_mask(
    affinity: int, quota: float | None, cpus: int
) -> None:
    assert cpus_allowed(affinity, quota) == cpus


@pytest.mark.parametrize(
    ("cgroup", "mounts", "files", "limit"),
    [
        pytest.param(
            "0::/\n",
            V2_MOUNT,
            {"sys/fs/cgroup/cpu.max": "200000 100000\n"},
            2.0,
            id="a GKE container with limits.cpu 2: its own cgroup namespace, the limit at the root",
        ),
        pytest.param(
            "0::/kubepods/pod1/ctr\n",
            V2_MOUNT,
            {
                "sys/fs/cgroup/kubepods/cpu.max": "max 100000\n",
                "sys/fs/cgroup/kubepods/pod1/cpu.max": "100000 100000\n",
                "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "400000 100000\n",
            },
            1.0,
            id="a parent cgroup's smaller quota wins",
        ),
        pytest.param(
            "4:memory:/job\n3:cpu,cpuacct:/job\n0::/job\n",
            HYBRID_MOUNTS,
            {
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
                "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us": "300000\n",
                "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us": "100000\n",
            },
            3.0,
            id="a hybrid host: the v1 cpu controller of the process's own cgroup",
        ),
    ],
)
def test_the_quota_is_read_from_the_processs_cgroups(
    tmp_path: Path, cgroup: str, mounts: str, files: dict[str, str], limit: float
) -> None:
    assert cgroup_cpu_limit(machine(tmp_path, cgroup, mounts, files)) == limit


def test_no_quota_and_no_proc_mean_no_limit(tmp_path: Path) -> None:
    unlimited = machine(
        tmp_path / "unlimited", "0::/\n", V2_MOUNT, {"sys/fs/cgroup/cpu.max": "max 100000\n"}
    )
    assert cgroup_cpu_limit(unlimited) is None
    assert cgroup_cpu_limit(tmp_path / "no-proc") is None


def test_a_process_counts_the_cpus_of_its_affinity_mask() -> None:
    """``taskset -c 0`` leaves the process one CPU, whatever the machine has."""
    out = subprocess.run(
        [
            "taskset", "-c", "0", sys.executable, "-c",
            "from timonel.server.cpus import usable_cpus; print(usable_cpus())",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "1"
