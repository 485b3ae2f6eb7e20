"""Run a command with the network off and record every attempt to reach it.

Two layers: the command runs in a fresh network namespace without interfaces (``unshare -rn``)
when this machine allows it, and, always, under a ``sitecustomize`` that replaces the socket
functions which reach other hosts (name lookup, TCP/UDP connect) with ones that log the
attempt (with the stack) to a file and fail. A clean run leaves that file empty: not a
refused connection, no attempt at all.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

GUARD = '''
import os, socket, traceback

_LOG = os.environ["CXRBENCH_NET_LOG"]


def _record(what):
    with open(_LOG, "a") as fh:
        fh.write(f"--- {what}\\n" + "".join(traceback.format_stack(limit=40)))
    raise OSError(f"network disabled by the test ({what})")


def _blocked(name):
    def f(*args, **kwargs):
        _record(f"{name}{args[:2]!r}")
    return f


for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "create_connection"):
    setattr(socket, _name, _blocked(_name))

_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto


def _inet(sock):
    return sock.family in (socket.AF_INET, socket.AF_INET6)


def connect(self, address):
    return _record(f"connect{address!r}") if _inet(self) else _connect(self, address)


def connect_ex(self, address):
    return _record(f"connect_ex{address!r}") if _inet(self) else _connect_ex(self, address)


def sendto(self, *args):
    return _record(f"sendto{args[-1]!r}") if _inet(self) else _sendto(self, *args)


socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
'''


@functools.lru_cache(maxsize=1)
def unshare_works() -> bool:
    """Whether ``unshare -rn`` (a user + network namespace) can be created here."""
    exe = shutil.which("unshare")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_offline(args: list[str], work: Path, timeout: int = 900) -> tuple[subprocess.CompletedProcess, str, str]:
    """Run ``python ARGS`` (e.g. ``["-m", "cxrbench", "scene-graph", ...]``) offline, with HOME
    inside ``work`` and no ultralytics settings from the environment.

    Returns (the finished process, the network-attempt log, the isolation used)."""
    work.mkdir(parents=True, exist_ok=True)
    guard_dir = work / "netguard"
    guard_dir.mkdir(exist_ok=True)
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    log = work / "network-attempts.log"
    log.write_text("")
    home = work / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "ULTRALYTICS_", "XDG_"))}
    env.update({"PYTHONPATH": os.pathsep.join([str(guard_dir), str(Path(__file__).resolve().parents[2])]),
                "CXRBENCH_NET_LOG": str(log), "HOME": str(home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    cmd = [sys.executable, *args]
    mode = "socket guard"
    if unshare_works():
        cmd = ["unshare", "-rn", *cmd]
        mode = "unshare -rn + socket guard"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    return proc, log.read_text(), mode
