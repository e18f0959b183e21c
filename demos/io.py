"""Atomic file writes (a reader sees the old file or the new one, never half of one) and output locks.

Every stage writes its artifacts (configs, checkpoints, reports) through these helpers, and holds its output
directory's lock while it does.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def die_with_parent() -> None:
    """In a worker process: end quietly when the process that started it dies (Linux; elsewhere a no-op).

    Without it a killed ``hrlbc`` leaves its pool workers running until they try to send a result, and each
    then prints a BrokenPipe traceback. SIGINT is left to the parent, which says what was kept.
    """
    import ctypes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the call
        os._exit(0)


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type name when it has none): for one-line errors."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class OutputBusyError(ValueError):
    """Another live process is writing the same output."""


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock (``.<name>.lock`` beside it) while writing it; refuse if another process holds it.

    An OS file lock (flock): it dies with its process, so a killed run's lock is simply taken over. Once held,
    any temporary file a killed writer left in ``out`` is stale and is removed.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out.parent / f".{out.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise OutputBusyError(f"{out} is being written by another hrlbc process (pid {holder}); wait for it to end, "
                              "or give another out=") from None  # fmt: skip
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        if out.is_dir():
            for tmp in out.rglob(".*.tmp"):  # atomic_write's temporary files of a killed writer
                tmp.unlink(missing_ok=True)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def file_hash(path: str | Path) -> str | None:
    """The first 16 hex digits of a file's SHA-256 (None if it is not a file): which file a result came from."""
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else None
