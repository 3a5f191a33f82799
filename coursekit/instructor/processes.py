"""Process control for the grader's runner: keep detached processes in the tree, and kill a whole tree.

The runner makes itself a child subreaper (Linux ``prctl``), so a process the notebook detaches with a
double fork or ``setsid`` re-parents to the runner, not to init; it then reaps those adopted orphans
(:class:`OrphanReaper`) and, at the end, kills every descendant left (:func:`kill_descendants`).
:mod:`coursekit.instructor.sandbox` uses the same kill helpers from the grader's side.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

import psutil

log = logging.getLogger(__name__)

#: prctl(2) option: orphaned descendants re-parent to this process instead of init.
PR_SET_CHILD_SUBREAPER = 36
#: Rounds of kill-then-look-again before giving up on a tree that keeps forking.
KILL_ROUNDS = 20


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux ``prctl``); False where unavailable.

    A process whose parent exits re-parents to its nearest subreaper ancestor instead of init, so a
    double fork or ``setsid`` cannot leave the tree rooted here while this process runs.
    """
    if not sys.platform.startswith("linux"):
        log.warning("not Linux: processes the notebook detaches are only found by the sandbox sweep, and their memory is not counted")
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0
    except (OSError, AttributeError) as exc:
        log.warning("prctl is not available (%s): detached processes are only found by the sandbox sweep", exc)
        return False
    if failed:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER) failed: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def alive(proc: psutil.Process) -> bool:
    """True while ``proc`` runs (a zombie has exited: it only waits for its parent to read its status)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def describe(proc: psutil.Process) -> str:
    """``pid command line`` of a process, shortened, for the log."""
    try:
        command = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        command = "?"
    return f"{proc.pid} {command[:200]}"


def kill_processes(processes: list[psutil.Process], wait: float = 1.0) -> list[str]:
    """SIGKILL each process (psutil refuses a reused pid), then wait up to ``wait`` s until all are gone.

    Returns the killed processes, described for the log.
    """
    killed = []
    for proc in processes:
        text = describe(proc)
        try:
            proc.kill()
        except psutil.Error:
            continue
        killed.append(text)
    deadline = time.monotonic() + wait
    while any(alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.02)
    return killed


def kill_until_gone(find: Callable[[], list[psutil.Process]], rounds: int = KILL_ROUNDS) -> tuple[list[str], bool]:
    """SIGKILL whatever live process ``find()`` returns, and look again, until it returns none.

    A process may fork between the look and the kill; the next look finds the child. Returns what was
    killed (described) and whether nothing was left within ``rounds``.
    """
    killed: list[str] = []
    for _ in range(rounds):
        try:
            found = [p for p in find() if alive(p)]
        except psutil.Error:
            return killed, True
        if not found:
            return killed, True
        killed += kill_processes(found)
    return killed, False


def kill_descendants(root: psutil.Process, rounds: int = KILL_ROUNDS) -> list[str]:
    """SIGKILL every live descendant of ``root`` (not ``root``), looking again until none is left.

    While ``root`` is a running subreaper, a child forked meanwhile re-parents to it and the next round
    finds it. Returns what was killed.
    """
    killed, gone = kill_until_gone(lambda: root.children(recursive=True), rounds)
    if not gone:
        log.warning("the process tree of %d still grows after %d rounds of killing", root.pid, rounds)
    return killed


class OrphanReaper:
    """Reads the exit status of adopted processes that ended, so a subreaper's zombies do not pile up.

    A detached process that exits while the runner lives becomes the runner's zombie (it holds a
    pid until its status is read). Every ``interval`` seconds each zombie child is reaped, except the
    one ``spare()`` names (the kernel: jupyter_client reads its status); nothing is reaped while
    ``spare()`` is None (the kernel is not started yet).
    """

    def __init__(self, spare: Callable[[], int | None], interval: float = 1.0) -> None:
        self.spare = spare
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="orphan-reaper", daemon=True)

    def reap(self) -> int:
        """Reap the zombie children now; returns how many."""
        spared = self.spare()
        if spared is None:
            return 0
        reaped = 0
        for child in psutil.Process().children():
            try:
                if child.pid != spared and child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)
                    reaped += 1
            except (psutil.Error, ChildProcessError):
                pass
        return reaped

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.reap()

    def start(self) -> None:
        """Reap in a background thread until :meth:`stop`."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._thread.join(timeout=5)
