"""Every process ``make demo`` starts, and stopping all of them, every time.

``airflow standalone`` starts the scheduler, the DAG processor, the API server and the triggerer,
which start LocalExecutor workers, log servers and task supervisors; task processes put themselves
in process groups of their own, and a component whose parent dies is re-parented. So the demo
(1) becomes the child subreaper of everything below it (Linux: orphans are re-parented to the demo,
not to init, and stay its descendants), (2) starts ``airflow standalone`` in a session of its own,
so a Ctrl-C in the terminal reaches only the demo, which then stops the rest in order, and (3) on
shutdown sends SIGTERM to every descendant and its process group (the API server and standalone
last), waits up to ``grace`` seconds, and SIGKILLs whatever is left.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

import psutil

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process (Linux >= 3.4); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def start_in_own_session(args: list[str], **popen) -> subprocess.Popen:
    """A child in a session (and process group) of its own: a terminal's Ctrl-C does not reach it."""
    return subprocess.Popen(args, start_new_session=True, **popen)


class Descendants:
    """Every process below this one, including orphans re-parented away (tracked once seen)."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.known: dict[int, psutil.Process] = {}

    def alive(self) -> list[psutil.Process]:
        _reap_children()
        try:
            for process in self.me.children(recursive=True):
                self.known.setdefault(process.pid, process)
        except psutil.Error:
            pass
        living = []
        for pid, process in list(self.known.items()):
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    living.append(process)
                    for child in process.children(recursive=True):
                        self.known.setdefault(child.pid, child)
                    continue
            except psutil.Error:
                pass
            del self.known[pid]
        return living

    def signal_all(self, signum: int, spare: set[int] = frozenset()) -> None:
        """``signum`` to every living descendant but ``spare`` (pids), and to each of their process
        groups that holds none of ``spare`` (never to our own group)."""
        spared_groups = {os.getpgrp()}
        for pid in spare:
            try:
                spared_groups.add(os.getpgid(pid))
            except ProcessLookupError:
                pass
        groups = set()
        for process in self.alive():
            if process.pid in spare:
                continue
            try:
                groups.add(os.getpgid(process.pid))
                process.send_signal(signum)
            except (psutil.Error, ProcessLookupError, PermissionError):
                pass
        for group in groups - spared_groups:
            try:
                os.killpg(group, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def stop(self, grace: float, hurry=lambda: False, say=print, last=lambda process: False) -> float:
        """SIGTERM everything, SIGKILL what is left after ``grace`` seconds (or at once when
        ``hurry()`` turns true, a second Ctrl-C); returns the seconds it took. Processes for which
        ``last(process)`` holds (and theirs) get their SIGTERM only once the others are gone: the
        API server, which running tasks report their end to, and ``airflow standalone``, which
        relays its components' last words to the terminal."""
        started = time.monotonic()
        deadline = started + grace

        def spared() -> set[int]:
            pids = set()
            for process in self.alive():
                try:
                    if last(process):
                        pids.add(process.pid)
                        pids.update(child.pid for child in process.children(recursive=True))
                except psutil.Error:
                    pass
            return pids

        spare = spared()
        self.signal_all(signal.SIGTERM, spare)
        while any(process.pid not in spare for process in self.alive()):
            if time.monotonic() > deadline or hurry():
                break
            time.sleep(0.2)
            spare = spared() | spare
        self.signal_all(signal.SIGTERM)
        while self.alive():
            if time.monotonic() > deadline or hurry():
                left = ", ".join(sorted({_name(p) for p in self.alive()}))
                say(f"  still running after {time.monotonic() - started:.0f} s, killed: {left}")
                self.signal_all(signal.SIGKILL)
                break
            time.sleep(0.2)
        kill_deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < kill_deadline:
            self.signal_all(signal.SIGKILL)
            time.sleep(0.1)
        return time.monotonic() - started


def _reap_children() -> None:
    """Collect exited children (orphans re-parented to a subreaper become its zombies)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _name(process: psutil.Process) -> str:
    try:
        words = process.cmdline()
    except psutil.Error:
        return str(process.pid)
    words = [word for word in words if not word.endswith(("python", "python3", "python3.11"))]
    return " ".join(os.path.basename(word) for word in words[:2]) or str(process.pid)
