"""Everything the harness writes to disk goes through here: content hashes, atomic writes,
the writability check, and the content-addressed cache of work shared across cells
(base-model rows, base answers, generated data).

Cache entries are JSON files under <HARNESS_CACHE>/<namespace>/<hash of key>.json, written
atomically, so concurrent or interrupted runs never see a half-written entry. A miss is
computed under an exclusive lock on <hash of key>.lock beside the entry (fcntl.flock): a
second process asking for the same key (`--jobs`, Ray tasks, runs sharing a cache) waits
for the first and reads its entry instead of computing it again. The OS releases the lock
of a process that dies (kill -9 included), so a dead holder never blocks anyone.

An entry records what computing it cost beside its value: {"key", "value", "cpu_s",
"wall_s"}. A cell that reuses an entry does not pay that cost, so the runner keeps a
`Ledger` of what each cell reused and records it (timings.cache_cpu_s): the cell's cost
with an empty cache is its own CPU seconds plus those. Entries written before the cost
was recorded hold only key and value; they stay valid, their cost is unknown (None).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent runs may compute twice
    fcntl = None

_MISSING = object()
REUSED: dict[str, int] = {}  # namespace -> entries this process read from the cache
_HELD: dict[str, int] = {}  # lock files this process holds -> depth (re-entrant)
_HELD_GUARD = threading.Lock()


class Ledger:
    """The cold cost of the cache entries reused since it began: what computing them would
    have added had the cache been empty. Each entry counts once, however often it is read,
    and not at all where it was computed under this ledger (that compute is paid already).
    A cost is (cpu_s, wall_s), each None where unknown (an entry from before costs were
    recorded); the total is then None too: a partial sum would pass for the whole."""

    def __init__(self):
        self.computed: set[str] = set()  # entries computed here: their cost is paid
        self.reused: dict[str, list] = {}  # entry -> [cpu_s, wall_s] when it was computed
        self.complete = True  # False: reuses before it (an old checkpoint) are unknown

    def hit(self, entry: str, cost: list) -> None:
        if entry not in self.computed:
            self.reused[entry] = cost

    def paid(self, entry: str) -> None:
        """`entry` was computed here: its cost is in the CPU time of whoever keeps this."""
        self.computed.add(entry)
        self.reused.pop(entry, None)

    def total(self) -> tuple[float | None, float | None]:
        """(cpu_s, wall_s) of the entries reused; each None where one is unknown."""
        def add(i: int) -> float | None:
            parts = [c[i] for c in self.reused.values()]
            return sum(parts, 0.0) if self.complete and None not in parts else None
        return add(0), add(1)

    def state(self) -> dict:
        """Plain values for a checkpoint (harness/checkpoint.py)."""
        return {"computed": sorted(self.computed), "reused": dict(self.reused),
                "complete": self.complete}

    def merge(self, state: dict | None) -> None:
        """Add a checkpoint's ledger (None: one from before ledgers, which makes the total
        unknown). An entry one run computed and the other reused was paid by the cell."""
        if not (isinstance(state, dict) and {"computed", "reused", "complete"} <= set(state)):
            self.complete = False
            return
        self.computed |= set(state["computed"])
        self.reused = {e: c for e, c in {**state["reused"], **self.reused}.items()
                       if e not in self.computed}
        self.complete = self.complete and state["complete"]


CELL = Ledger()  # this process's current cell's: harness/runner.py starts one per cell
_computing = threading.local()  # the ledgers of the computes running in this thread


def start_ledger() -> Ledger:
    """A fresh ledger for a cell (the runner's) as this process's CELL ledger."""
    global CELL
    CELL = Ledger()
    return CELL


def cache_dir() -> Path:
    """Root cache; override with HARNESS_CACHE (CI and tests point it at a temp dir). Where
    neither it nor a home folder is known (HOME unset, a user without a passwd entry, as
    in some containers), one line asks for HARNESS_CACHE."""
    root = os.environ.get("HARNESS_CACHE")
    if not root:
        try:
            root = Path.home() / ".cache" / "harness"
        except (RuntimeError, KeyError):
            from harness.errors import HarnessError

            raise HarnessError("no folder for the cache: HARNESS_CACHE is not set and this "
                               "user has no home folder (HOME is unset, no passwd entry)",
                               "set HARNESS_CACHE to a writable folder") from None
    return user_path(root)


def user_path(path) -> Path:
    """`path` with a leading `~` expanded; a `~` that cannot be (HOME unset and no passwd
    entry, as in some containers) is one line naming the path, not pathlib's RuntimeError."""
    try:
        return Path(path).expanduser()
    except (RuntimeError, KeyError):
        from harness.errors import HarnessError

        raise HarnessError(f"'{path}' starts with ~ but this user has no home folder (HOME "
                           "is unset, no passwd entry)", "give the path without ~") from None


def cache_line() -> str:
    """Which cache a run uses and what it holds already (the cache is shared by every
    checkout and venv of this user: a "first run" may reuse another's work)."""
    root = cache_dir()
    where = f"cache {root}" + (" (HARNESS_CACHE)" if os.environ.get("HARNESS_CACHE") else
                               " (shared by this user's checkouts; HARNESS_CACHE sets another)")
    found = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        if folder.name == "models":
            names = sorted(p.name for p in folder.iterdir() if p.is_dir())
            found += [f"models {', '.join(names)}"] if names else []
            continue
        n = sum(1 for p in folder.rglob("*") if p.is_file() and p.suffix != ".lock")
        found += [f"{folder.name} {n} files"] if n else []
    return where + (": reuses what matches of " + ", ".join(found) if found else
                    ": empty, everything is computed afresh")


MAX_NAME_BYTES = 100  # a suite's, stream's or method's name: it is part of a folder or file name


def check_folder_name(name: str, where: str, what: str) -> str:
    """A name that becomes part of a folder or file name (the output folder, cell folders,
    plot files): not empty, no control characters, at most MAX_NAME_BYTES bytes (a file
    name may have 255, and a cell's folder joins four names)."""
    from harness.errors import HarnessError

    def fail(problem: str, fix: str):
        raise HarnessError(f"{where}: {problem}", fix)

    if not name.strip():
        fail(f"{what} {name!r} is empty", f"give the {what} a name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        fail(f"{what} {name[:40]!r} holds a control character", "use printable text")
    if len(name.encode()) > MAX_NAME_BYTES:
        fail(f"{what} '{name[:40]}…' is {len(name.encode())} bytes long; it names folders, "
             f"which take at most {MAX_NAME_BYTES}", "shorten it")
    return name


def stable_hash(obj, n: int = 16) -> str:
    """Content hash of a JSON-serialisable object (sorted keys), hex, n chars."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file: the one way the harness reads a file it did not just
    write (results, claims, cache entries, suites). Anything else, a named pipe or a
    device, raises OSError instead of blocking or never ending: it is opened without
    blocking and checked before a byte is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"not a regular file ({file_kind(path)})", str(path))
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def file_kind(path: Path) -> str:
    """What is at `path`, in words, for a message about something that should be a regular
    file: "a regular file", "a folder", "a named pipe", "a special file" (a device, a
    socket), "a symbolic link that leads nowhere" (broken or looping), or "nothing"."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a symbolic link that leads nowhere" if os.path.islink(path) else "nothing"
    return ("a regular file" if stat.S_ISREG(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a named pipe" if stat.S_ISFIFO(mode) else "a special file")


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file + rename, so a reader never sees a half-written file; a write
    that fails (a full disk) leaves no temp file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with writing(path):
            tmp.write_text(text)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def full_disk(exc: BaseException | None) -> OSError | None:
    """The full-disk (or quota) OSError in `exc`'s chain, or None. A library that reports
    it only in its text (safetensors: "No space left on device (os error 28)") counts."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return exc
        if "No space left on device" in str(exc) or "os error 28" in str(exc):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Writing `path`: an error that names no file (a write() on a full disk names none,
    nor does torch's or safetensors' writer) is raised again as an OSError naming `path`,
    so that the cell's failure says which file, on which disk, could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except Exception as exc:
        full = full_disk(exc)
        if full is None:
            raise
        raise OSError(full.errno, full.strerror, str(path)) from exc


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def folder_problem(folder: Path) -> str | None:
    """Why `folder` can never be a folder, found without writing anything (a dry run asks
    too): a name longer than any file system takes, or a file where it or a folder above
    it would be."""
    folder = Path(folder)
    too_long = next((n for n in folder.parts if len(os.fsencode(n)) > 255), None)
    if too_long:  # no file system takes it (and the probe below would not see it)
        return f"the folder name '{too_long[:40]}…' is longer than 255 bytes"
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    if not existing.is_dir():  # nothing exists below a file, so it is the deepest
        kind = file_kind(existing).replace("a regular file", "a file")
        return f"{existing} is {kind}, not a folder"
    return None


def writable_problem(folder: Path) -> str | None:
    """Why files cannot be written under `folder`, or None. Checked before a run, so that
    an unwritable folder stops it before any work is lost. It creates nothing shared: it
    makes a folder of its own, named uniquely, in the deepest folder of the path that
    exists, writes a file there and removes both. So a failed start leaves nothing
    behind, and processes checking one folder at once (the workers of --jobs, a cluster's
    array job) cannot remove a folder another is probing."""
    problem = folder_problem(folder)
    if problem:
        return problem
    existing = next(p for p in [Path(folder), *Path(folder).parents] if p.exists())
    try:
        probe = Path(tempfile.mkdtemp(prefix=".harness-write-check-", dir=existing))
        try:
            (probe / "probe").write_text("ok")
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if absent; never deleted, so two
    processes always lock the same inode). Blocks while another process holds it; the OS
    releases it when its holder exits or dies. Re-entrant within this process (flock on a
    second descriptor of the same file would wait for ourselves)."""
    key = str(Path(path).absolute())
    with _HELD_GUARD:
        nested = key in _HELD
        _HELD[key] = _HELD.get(key, 0) + 1
    fd = None
    try:
        if not nested and fcntl is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock
        with _HELD_GUARD:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]


class Cache:
    def __init__(self, root: Path | None = None):
        self.root = root or cache_dir()

    def path(self, namespace: str, key: Any) -> Path:
        """Where `key`'s entry lives; model outputs computed at another precision than
        `auto` (harness/precision.py) are keyed apart."""
        from harness.precision import current

        if current() != "auto":
            key = [key, {"precision": current()}]
        return self.root / namespace / f"{stable_hash(key, 24)}.json"

    def get_or_compute(self, namespace: str, key: Any, compute: Callable[[], Any],
                       valid: Callable[[Any], bool] | None = None) -> Any:
        """Return the cached value for `key`, computing and storing it on a miss.

        An entry that cannot be read, is not {"value": ...}, or whose value fails `valid`
        (the caller's shape check) counts as a miss and is rebuilt: a damaged cache must
        never fail the cells that share it. A miss is computed under the key's lock: whoever
        waited for it reads the entry just written.

        A computed entry stores its cost: `cpu_s`, the CPU seconds of this whole process
        (time.process_time: every thread, user and system; another thread busy meanwhile
        would count too: in a cell the others, the claim's heartbeat, sleep) while
        `compute` ran, and `wall_s`, its wall-clock seconds, each plus the cost of the
        entries `compute` itself reused (what it would have cost with an empty cache). A
        hit adds the entry's cost to the CELL ledger, a miss marks it paid there.
        """
        path = self.path(namespace, key)
        entry = f"{namespace}/{path.name}"
        value, cost = self._read(path)
        if value is not _MISSING and (valid is None or valid(value)):
            return _reused(namespace, entry, cost, value)
        with file_lock(path.with_suffix(".lock")):
            value, cost = self._read(path)  # written while we waited for the lock?
            if value is not _MISSING and (valid is None or valid(value)):
                return _reused(namespace, entry, cost, value)
            inner = Ledger()  # what compute() reuses: part of this entry's cold cost
            stack = _computing.__dict__.setdefault("ledgers", [])
            stack.append(inner)
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                value = compute()
            finally:
                stack.pop()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            reused_cpu, reused_wall = inner.total()
            atomic_write_json(path, {
                "key": key, "value": value,
                "cpu_s": None if reused_cpu is None else round(cpu + reused_cpu, 3),
                "wall_s": None if reused_wall is None else round(wall + reused_wall, 3)})
        for ledger in [CELL, *stack]:
            ledger.paid(entry)
        return value

    @staticmethod
    def _read(path: Path) -> tuple[Any, list]:
        """(value, [cpu_s, wall_s]) of the entry at `path`; (_MISSING, ...) where there is
        none, or a damaged one (removed). A cost not recorded, or not a number, is None."""
        if not path.exists():
            return _MISSING, [None, None]
        try:
            entry = json.loads(read_regular(path).decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            entry = None
        if isinstance(entry, dict) and "value" in entry:
            return entry["value"], [_seconds(entry.get("cpu_s")), _seconds(entry.get("wall_s"))]
        with contextlib.suppress(OSError):
            path.unlink()  # a corrupt entry is recomputed, never trusted
        return _MISSING, [None, None]


def _reused(namespace: str, entry: str, cost: list, value: Any) -> Any:
    """Count a hit: in REUSED, and its cost in the cell's ledger and those of the computes
    running in this thread."""
    REUSED[namespace] = REUSED.get(namespace, 0) + 1
    for ledger in [CELL, *getattr(_computing, "ledgers", [])]:
        ledger.hit(entry, cost)
    return value


def _seconds(x) -> float | None:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < float("inf")
    return float(x) if ok else None
