"""The suite's CPU count per test file (tests/cpu_usage.py), on a stand-in cgroup folder."""

from __future__ import annotations

import json
from pathlib import Path

import cpu_usage


def _fake_group(tmp_path: Path, usage_ns: int) -> Path:
    group = tmp_path / "cpuacct" / cpu_usage.GROUP / "run-gw0"
    group.mkdir(parents=True)
    (group / "cpuacct.usage").write_text(str(usage_ns))
    return group


def test_each_test_adds_the_cpu_used_since_the_previous_one_to_its_file(tmp_path: Path) -> None:
    group = _fake_group(tmp_path, 5_000_000_000)  # 5 s used before the first test
    usage = cpu_usage.WorkerUsage(group, tmp_path / "out")
    for nodeid, used_ns in [("tests/test_a.py::test_one", 7_500_000_000), ("tests/test_a.py::test_two", 8_000_000_000),
                            ("tests/test_b.py::test_three[x]", 20_000_000_000)]:
        (group / "cpuacct.usage").write_text(str(used_ns))
        usage.pytest_runtest_logfinish(nodeid)
    usage.pytest_sessionfinish()

    written = json.loads((tmp_path / "out" / "run-gw0.json").read_text())
    assert written["cpu"] == {"tests/test_a.py": 3.0, "tests/test_b.py": 12.0}
    assert written["total"] == 20.0
    assert (group.parent.parent / "cgroup.procs").read_text().isdigit()  # the process went back to the parent group

    lines = cpu_usage.report(tmp_path / "out", tmp_path / "cpuacct", cpu_usage.machine_busy_seconds(), 0.0)
    assert [line.split()[0] for line in lines[1:3]] == ["12.0", "3.0"]  # longest first
    assert lines[1].endswith("tests/test_b.py") and lines[2].endswith("tests/test_a.py")
    assert lines[3].split()[0] == "15.0" and lines[3].endswith("the workers' groups: 20.0 CPU-s")


def test_without_a_cgroup_or_a_measured_worker_the_summary_says_so_in_one_line(tmp_path: Path) -> None:
    assert cpu_usage.report(tmp_path, None, 0.0, 0.0) == [
        "CPU per test file: not measured (no writable cgroup: needs root and /sys/fs/cgroup)"]
    assert cpu_usage.report(tmp_path, tmp_path, 0.0, 0.0) == [
        "CPU per test file: not measured (no pytest process could join a cgroup; see the warnings)"]


def test_cgroup_v2_usage_is_read_from_cpu_stat(tmp_path: Path) -> None:
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    assert cpu_usage.cpu_seconds(tmp_path) == 2.5


def test_a_group_still_holding_a_process_is_kept_and_named(tmp_path: Path) -> None:
    group = tmp_path / cpu_usage.GROUP / "run-gw1"
    group.mkdir(parents=True)
    (group / "cgroup.procs").write_text("4242\n")
    kept = cpu_usage.remove_groups(tmp_path, ["run-gw1"], wait=0)
    assert len(kept) == 1 and str(group) in kept[0] and "['4242']" in kept[0]
    assert group.is_dir()
