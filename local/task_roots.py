"""Unpacked archives: Lambda's /var/task for one `CodeSha256`, shared by every local stack of the machine.

Lambda unpacks a function's archive into its task root, read-only. Local mode did so for every
function of every start-up, about 740 files an archive: a second or more of each `local up`, and of
each of the test suite's fifty starts. The files depend on the archive's bytes alone, so each archive
is unpacked once per machine, into `<root>/<sha256 in hex>`:

- made aside and renamed into place, so a stack never sees a half-unpacked tree, and two stacks
  unpacking the same archive at once both end with the one complete tree;
- used under a shared lock (`flock`) held for as long as any process may start there
  (`TaskRoot.release`); the lock is released by the kernel when the holder dies;
- removed when it has not been taken for `UNUSED_FOR_SECONDS` and nobody holds its lock (an
  exclusive lock that does not wait), whenever another archive is unpacked.

Files and folders are left read-only (0444, 0555), as Lambda's task root is: a function that writes
there fails with a permission error, as on AWS, unless it runs as root, which this cannot prevent.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from local.state import CACHE_ROOT

TASK_ROOTS = CACHE_ROOT / "task-roots"
# A tree not taken for this long, and held by no stack, is removed (each takes about 20 MB).
UNUSED_FOR_SECONDS = 24 * 3600


@dataclass
class TaskRoot:
    """An unpacked archive, held (its lock taken) until `release()`."""

    path: Path
    _lock: int | None = field(repr=False)

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # and with it the shared lock
            self._lock = None


def unpacked(archive: Path, sha256: str, root: Path = TASK_ROOTS) -> TaskRoot:
    """The task root of `archive`, whose `CodeSha256` (base64) is `sha256`: unpacked now unless it is already."""
    name = base64.b64decode(sha256).hex()
    root.mkdir(parents=True, exist_ok=True)
    lock = os.open(root / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)  # from here on, nobody removes it
        tree = root / name
        if not tree.is_dir():
            _unpack_into_place(archive, tree)
        os.utime(tree)  # taken now: what `_remove_unused` reads
    except BaseException:
        os.close(lock)
        raise
    _remove_unused(root, keep=name)
    return TaskRoot(tree, lock)


def _unpack_into_place(archive: Path, tree: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=f".{tree.name}-", dir=tree.parent))
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(scratch)
        _read_only(scratch)
        try:
            os.rename(scratch, tree)
        except OSError as error:  # another stack put the same tree in place first: it is the same
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    finally:
        if scratch.exists():
            _writable(scratch)
            shutil.rmtree(scratch, ignore_errors=True)


def _remove_unused(root: Path, *, keep: str) -> None:
    """Trees not taken for `UNUSED_FOR_SECONDS` whose lock nobody holds."""
    stale = time.time() - UNUSED_FOR_SECONDS
    for lock_file in root.glob("*.lock"):
        tree = lock_file.with_suffix("")
        if tree.name == keep or not tree.is_dir() or tree.stat().st_mtime > stale:
            continue
        with contextlib.suppress(OSError), _held_exclusively(lock_file) as free:
            if free:
                _writable(tree)
                shutil.rmtree(tree, ignore_errors=True)


@contextlib.contextmanager
def _held_exclusively(lock_file: Path):
    lock = os.open(lock_file, os.O_RDWR)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a stack holds it
            yield False
            return
        yield True
    finally:
        os.close(lock)


def _read_only(tree: Path) -> None:
    for folder, _, files in os.walk(tree):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)


def _writable(tree: Path) -> None:
    """Owner write back on every folder, so that the tree can be removed."""
    for folder, _, _ in os.walk(tree):
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o755)
