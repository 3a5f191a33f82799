"""CPU time per test file: each pytest worker counts its own processes in a cgroup (``scripts/test.sh`` turns it on).

On 2 cores the suite is CPU-bound, so a file's wall time says as much about what ran beside it as about the file
itself. Here each pytest-xdist worker (or the one pytest process) moves itself into a cgroup of its own. Every process
it starts lands there too, and stays counted after it is reparented: kernels, their Spark JVMs, MLflow servers,
Chromium. After each test the worker reads the cgroup's CPU time and adds the difference to that test's file, so a
module fixture counts for the file that uses it. The Spark class archive, when it is built in the background
(``tests/conftest.py``), counts for whatever file that worker runs meanwhile.

``COURSE_TEST_CPU=1`` turns it on. Without a writable cgroup (no root, no cgroup file system) the summary says so
in one line and nothing else changes. The run's cgroups are removed at the end.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

#: cgroup v1's CPU accounting controller (``cpuacct.usage``: nanoseconds) and the cgroup v2 tree (``cpu.stat``).
V1_ROOT = Path("/sys/fs/cgroup/cpuacct")
V2_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
GROUP = "coursekit-tests"
#: Set by the controller for its workers: where each writes its figures, and the run's name for their groups.
ENV_DIR, ENV_RUN = "COURSE_TEST_CPU_DIR", "COURSE_TEST_CPU_RUN"


def cgroup_root() -> Path | None:
    """The cgroup folder under which this run can make groups, or None."""
    if (V1_ROOT / "cpuacct.usage").is_file() and os.access(V1_ROOT, os.W_OK):
        return V1_ROOT
    for root in V2_ROOTS:
        if (root / "cgroup.controllers").is_file() and os.access(root, os.W_OK):
            return root
    return None


def cpu_seconds(group: Path) -> float:
    """CPU time used so far by every process that was ever in ``group`` (user and system)."""
    if (group / "cpuacct.usage").is_file():
        return int((group / "cpuacct.usage").read_text()) / 1e9
    for line in (group / "cpu.stat").read_text().splitlines():
        key, value = line.split()
        if key == "usage_usec":
            return int(value) / 1e6
    raise OSError(f"{group}: no CPU usage counter")


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot, from /proc/stat (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class WorkerUsage:
    """The hooks of one pytest process: it moves itself into ``group`` and adds up CPU time per test file."""

    def __init__(self, group: Path, out: Path) -> None:
        self.group = group
        self.out = out
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.last_cpu = cpu_seconds(group)
        self.last_time = time.monotonic()

    @classmethod
    def start(cls, root: Path, name: str, out: Path) -> WorkerUsage:
        """Make the group ``root/GROUP/name``, move this process into it and start counting."""
        group = root / GROUP / name
        group.mkdir(parents=True, exist_ok=True)
        (group / "cgroup.procs").write_text(str(os.getpid()))
        return cls(group, out)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        now_cpu, now = cpu_seconds(self.group), time.monotonic()
        path = nodeid.split("::", 1)[0]
        self.cpu[path] += now_cpu - self.last_cpu
        self.wall[path] += now - self.last_time
        self.last_cpu, self.last_time = now_cpu, now

    def pytest_sessionfinish(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        data = {"cpu": self.cpu, "wall": self.wall, "total": cpu_seconds(self.group)}
        (self.out / f"{self.group.name}.json").write_text(json.dumps(data))
        # Back to the parent group, so the controller can remove this one once its other processes have ended.
        (self.group.parent.parent / "cgroup.procs").write_text(str(os.getpid()))


def report(out: Path, root: Path | None, busy_at_start: float, started: float) -> list[str]:
    """The summary lines: CPU-s and worker-s per test file, longest first, and what the machine spent meanwhile."""
    if root is None:
        return ["CPU per test file: not measured (no writable cgroup: needs root and /sys/fs/cgroup)"]
    cpu: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = defaultdict(float)
    total = 0.0
    for part in sorted(out.glob("*.json")):
        data = json.loads(part.read_text())
        total += data["total"]
        for path, seconds in data["cpu"].items():
            cpu[path] += seconds
        for path, seconds in data["wall"].items():
            wall[path] += seconds
    if total == 0:
        return ["CPU per test file: not measured (no pytest process could join a cgroup; see the warnings)"]
    busy, elapsed = machine_busy_seconds() - busy_at_start, time.monotonic() - started
    lines = [f"{'CPU-s':>8} {'worker-s':>9}  test file (CPU of every process the file's tests started)"]
    lines += [f"{cpu[p]:8.1f} {wall[p]:9.1f}  {p}" for p in sorted(cpu, key=cpu.get, reverse=True) if cpu[p] >= 1]
    if small := [p for p in cpu if cpu[p] < 1]:
        lines.append(f"{sum(cpu[p] for p in small):8.1f} {sum(wall[p] for p in small):9.1f}  {len(small)} files under 1 CPU-s each")
    lines.append(f"{sum(cpu.values()):8.1f} {sum(wall.values()):9.1f}  all test files; the workers' groups: {total:.1f} CPU-s")
    lines.append(f"machine: {busy:.0f} CPU-s busy in {elapsed:.0f} s of pytest ({busy / elapsed:.2f} cores on average)")
    return lines


def remove_groups(root: Path, names: list[str], wait: float = 10.0) -> list[str]:
    """Remove the run's groups once their last processes have ended (up to ``wait`` seconds: kernels and JVMs a test
    stopped may still be exiting); returns a line for each group still holding a process, which is kept."""
    deadline = time.monotonic() + wait
    kept = []
    for name in names:
        group = root / GROUP / name
        while group.is_dir() and (group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            group.rmdir()
        except FileNotFoundError:
            pass
        except OSError as error:
            kept.append(f"cgroup {group} kept: {error} (processes: {(group / 'cgroup.procs').read_text().split()})")
    try:
        (root / GROUP).rmdir()
    except OSError:
        pass  # another run's groups are still there
    return kept


def remove_stale_groups(root: Path) -> None:
    """Remove empty groups that earlier runs left behind (a run that was killed, or a process that outlived it)."""
    for group in (root / GROUP).glob("*"):
        if group.is_dir() and not (group / "cgroup.procs").read_text().strip():
            try:
                group.rmdir()
            except OSError:
                pass


class Summary:
    """The controller's (or the only pytest process's) hook: the table at the end of the run."""

    def __init__(self, root: Path | None, out: Path, names: list[str]) -> None:
        self.root, self.out, self.names = root, out, names
        self.busy, self.started = machine_busy_seconds(), time.monotonic()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_sep("=", "CPU time per test file")
        for line in report(self.out, self.root, self.busy, self.started):
            terminalreporter.write_line(line)
        if self.root is not None:
            for line in remove_groups(self.root, self.names):
                terminalreporter.write_line(line)
        shutil.rmtree(self.out, ignore_errors=True)


def configure(config: pytest.Config, worker: str | None) -> None:
    """With ``COURSE_TEST_CPU=1``, count CPU per test file in this pytest process (``worker``: its xdist name)."""
    if os.environ.get("COURSE_TEST_CPU") != "1" or config.option.collectonly:
        return
    root = cgroup_root()
    if worker:
        if root is not None and os.environ.get(ENV_DIR):
            _count_here(config, root, f"{os.environ[ENV_RUN]}-{worker}", Path(os.environ[ENV_DIR]))
        return
    if root is not None:
        remove_stale_groups(root)
    run = str(os.getpid())
    out = Path(tempfile.mkdtemp(prefix="course-test-cpu-"))  # removed after the summary
    os.environ[ENV_DIR], os.environ[ENV_RUN] = str(out), run  # the workers start after this, with this environment
    workers = getattr(config.option, "numprocesses", None) or 0
    names = [f"{run}-gw{i}" for i in range(int(workers))] if workers else [f"{run}-main"]
    if root is not None and not workers:
        _count_here(config, root, names[0], out)
    config.pluginmanager.register(Summary(root, out, names), "cpu-usage-summary")


def _count_here(config: pytest.Config, root: Path, name: str, out: Path) -> None:
    try:
        usage = WorkerUsage.start(root, name, out)
    except OSError as error:  # a cgroup file system that refuses: measure nothing, change nothing else
        log.warning("CPU per test file not measured in %s: %s", name, error)
        return
    config.pluginmanager.register(usage, "cpu-usage")
