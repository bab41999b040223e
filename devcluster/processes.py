"""Local processes of the development cluster: ports, logs, process groups, liveness.

Every component runs in its own process group (``start_new_session``) so one ``killpg``
tears down it and its children; a parent-death signal covers a SIGKILLed test run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(data[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pid_is(pid: int, binary: str) -> bool:
    """Guard against pid reuse: is ``pid`` still running ``binary`` (or ``python -m devcluster.<binary>``)?"""
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return pid_alive(pid)
    if f"devcluster.{binary}" in argv:
        return True
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        return os.path.basename(exe.removesuffix(" (deleted)")) == binary
    except OSError:
        return bool(argv) and os.path.basename(argv[0]) == binary


def parent_death_signal() -> Any:
    """A preexec_fn that makes the child get SIGKILL when this process dies (Linux).

    Safety net for a SIGKILLed pytest: without it, leaked apiservers are a classic.
    Only used from the main thread: the kernel fires it when the forking *thread* exits.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG; SIGKILL: no graceful path without etcd
        if os.getppid() != parent:  # parent already gone
            os.kill(os.getpid(), signal.SIGTERM)

    return set_pdeathsig


def kill_process_group(pid: int, *, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not pid_alive(pid):
                return
            time.sleep(0.1)
