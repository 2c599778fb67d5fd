"""Cell claims: several `harness run` processes (or machines on shared storage) pointed at one
output folder split its grid instead of each running all of it.

A process claims a cell by creating `cells/<id>/claim.json` exclusively (O_CREAT | O_EXCL,
atomic on local and NFS v3+ file systems) and keeps it fresh with a heartbeat (the file's
mtime, touched every HEARTBEAT_S). A claim is dead when its process is gone (same host) or
its heartbeat is older than STALE_S (any host): the next run takes it over, so a killed
process (kill -9 included) never blocks a cell for long. The claim is removed when the cell
ends, complete or failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from harness.storage import read_regular

CLAIM = "claim.json"
HEARTBEAT_S = 30.0
STALE_S = 600.0
WRITE_S = 5.0  # a claim is whole this long after it is created


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder(folder: Path, now: float | None = None) -> dict | None:
    """The live claim on a cell folder (its JSON), or None when unclaimed or dead. Dead: its
    process is gone (same host), or its heartbeat is more than STALE_S from now, past or
    future (a clock cannot hold a cell forever), or it is not a whole claim (empty, not
    JSON, no token) once WRITE_S has passed since it was created (a disk that filled while
    it was written must not block the cell), or it is not a regular file at all."""
    path = folder / CLAIM
    try:
        found = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):  # a named pipe or a folder is no claim: taken over
        return None
    age = (now or time.time()) - found.st_mtime
    try:
        info = json.loads(read_regular(path))
    except (OSError, ValueError):
        info = {}
    info = info if isinstance(info, dict) else {}
    if abs(age) >= STALE_S or not info.get("token") and age > WRITE_S:
        return None
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        if info["pid"] != os.getpid() and not _alive(info["pid"]):
            return None
    return info


class Claim:
    """A held claim: a heartbeat thread keeps it fresh until release()."""

    def __init__(self, path: Path, token: str):
        self.path, self.token = path, token
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError, ValueError):
            if json.loads(read_regular(self.path)).get("token") == self.token:
                self.path.unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire(folder: Path, **extra) -> Claim | None:
    """Claim the cell folder, taking over a dead claim; None while another process holds it.
    `extra` goes into claim.json too (the run and worker of `--jobs`, the executor)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM
    token = uuid.uuid4().hex
    info = {"host": socket.gethostname(), "pid": os.getpid(), "token": token,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if holder(folder) is not None:
                return None
            if not _take_over(path, folder / f".dead-claim-{token}"):
                return None
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        return Claim(path, token)
    return None


def clear_stopped(folder: Path, run: str) -> bool:
    """Remove the claim a stopped worker of `run` (a `--jobs` run id) left on `folder`: a
    worker interrupted between creating its claim and holding it, or killed after
    STOP_WAIT_S, cannot remove its own. Only a whole claim of that run that `holder` counts
    as dead is removed; True if one was."""
    path = folder / CLAIM
    try:
        info = json.loads(read_regular(path))
    except (OSError, ValueError):
        return False
    if not (isinstance(info, dict) and info.get("run") == run and holder(folder) is None):
        return False
    with contextlib.suppress(OSError):
        path.unlink()
        return True
    return False


def _token(path: Path):
    try:
        return json.loads(read_regular(path)).get("token")
    except (OSError, ValueError, AttributeError):
        return None


def _take_over(path: Path, aside: Path) -> bool:
    """Remove a dead claim. Moving it aside is atomic; if what was moved is not the dead
    claim (another process replaced it in between), it is put back and the take-over
    abandoned."""
    dead = _token(path)
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return True  # someone else removed it: try to create ours
    if _token(aside) != dead:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
        aside.unlink()
        return False
    aside.unlink()
    return True


def describe(info: dict) -> str:
    """`pid 123 on host since ...` (and the worker of a `--jobs` run)."""
    worker = f" (worker {info['worker']})" if info.get("worker") else ""
    return f"pid {info.get('pid')} on {info.get('host')}{worker} since {info.get('since')}"
