"""Process control: a subreaper adopts detached processes, kills them, and reaps them."""

from __future__ import annotations

import subprocess
import sys

SUBREAPER = """
import os, sys, time
from coursekit.instructor.processes import become_subreaper, kill_descendants
import psutil
assert become_subreaper()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
    os._exit(0)
os.wait()
time.sleep(0.3)
orphans = psutil.Process().children()
print([p.ppid() for p in orphans] == [os.getpid()], len(kill_descendants(psutil.Process())), psutil.Process().children() and
      all(p.status() == psutil.STATUS_ZOMBIE for p in psutil.Process().children()))
"""


def test_a_subreaper_adopts_a_double_forked_orphan_and_kills_it() -> None:
    done = subprocess.run([sys.executable, "-c", SUBREAPER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "1", "True"]


REAPER = """
import os, time
import psutil
from coursekit.instructor.processes import OrphanReaper, become_subreaper
assert become_subreaper()
spared = os.fork()
if spared == 0:
    os._exit(0)  # stands for the kernel: its status is jupyter_client's to read
for _ in range(5):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os._exit(0)  # adopted by this process, then it ends
        time.sleep(0.2)
        os._exit(0)
time.sleep(1)
zombies = lambda: sorted(p.pid for p in psutil.Process().children() if p.status() == psutil.STATUS_ZOMBIE)
before = zombies()
print(len(before), OrphanReaper(lambda: None).reap(), OrphanReaper(lambda: spared).reap(), zombies() == [spared])
"""


def test_the_reaper_reads_the_status_of_adopted_orphans_but_not_the_kernels() -> None:
    done = subprocess.run([sys.executable, "-c", REAPER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["11", "0", "10", "True"]  # 5 intermediates, 5 adopted, 1 spared
