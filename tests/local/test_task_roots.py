"""Archives unpacked once per machine (`local.task_roots`): shared, complete, read-only, and removed
only when unused and unheld."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest

from local import task_roots
from local.task_roots import unpacked


def archive(folder: Path, name: str, files: dict[str, bytes]) -> tuple[Path, str]:
    """A zip of `files` and its CodeSha256."""
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        for member, data in files.items():
            bundle.writestr(member, data)
    return path, base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def age(tree: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(tree, (then, then))


FILES = {"handlers/__init__.py": b"", "handlers/app.py": b"X = 1\n", "lib/deep/mod.py": b"Y = 2\n"}


def test_an_archive_is_unpacked_once_and_every_stack_gets_the_same_complete_read_only_tree(tmp_path: Path) -> None:
    path, sha = archive(tmp_path, "one", FILES)
    root = tmp_path / "roots"

    first = unpacked(path, sha, root)
    second = unpacked(path, sha, root)

    assert first.path == second.path == root / base64.b64decode(sha).hex()
    assert {p.relative_to(first.path).as_posix(): p.read_bytes() for p in first.path.rglob("*") if p.is_file()} == FILES
    inode = (first.path / "handlers" / "app.py").stat().st_ino
    assert (second.path / "handlers" / "app.py").stat().st_ino == inode  # not unpacked again
    assert {oct(p.stat().st_mode & 0o777) for p in first.path.rglob("*")} == {oct(0o444), oct(0o555)}
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no scratch left
    first.release()
    second.release()


def test_stacks_unpacking_the_same_archive_at_once_all_get_the_one_complete_tree(tmp_path: Path) -> None:
    files = {f"pkg/m{n}.py": os.urandom(2000) for n in range(300)}
    path, sha = archive(tmp_path, "big", files)
    root = tmp_path / "roots"
    got: list[task_roots.TaskRoot] = []
    threads = [threading.Thread(target=lambda: got.append(unpacked(path, sha, root))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({held.path for held in got}) == 1 and len(got) == 6
    tree = got[0].path
    assert {p.relative_to(tree).as_posix(): p.read_bytes() for p in tree.rglob("*") if p.is_file()} == files
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    for held in got:
        held.release()


def test_a_tree_unused_for_a_day_is_removed_unless_a_stack_holds_it(tmp_path: Path) -> None:
    root = tmp_path / "roots"
    old_path, old_sha = archive(tmp_path, "old", FILES)
    held_path, held_sha = archive(tmp_path, "held", {**FILES, "handlers/app.py": b"X = 2\n"})
    old = unpacked(old_path, old_sha, root)
    held = unpacked(held_path, held_sha, root)
    old.release()  # its stack stopped; `held`'s still runs
    for tree in (old.path, held.path):
        age(tree, task_roots.UNUSED_FOR_SECONDS + 60)

    new_path, new_sha = archive(tmp_path, "new", {**FILES, "handlers/app.py": b"X = 3\n"})
    new = unpacked(new_path, new_sha, root)  # unpacking another is when unused ones go

    assert not old.path.exists()
    assert (held.path / "handlers" / "app.py").read_bytes() == b"X = 2\n"
    assert new.path.is_dir()
    # Taken again after its removal, it is unpacked again.
    again = unpacked(old_path, old_sha, root)
    assert (again.path / "handlers" / "app.py").read_bytes() == b"X = 1\n"
    for tree in (held, new, again):
        tree.release()


def test_a_tree_used_within_the_day_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "roots"
    recent_path, recent_sha = archive(tmp_path, "recent", FILES)
    recent = unpacked(recent_path, recent_sha, root)
    recent.release()
    age(recent.path, task_roots.UNUSED_FOR_SECONDS - 3600)

    other_path, other_sha = archive(tmp_path, "other", {**FILES, "handlers/app.py": b"X = 9\n"})
    unpacked(other_path, other_sha, root).release()

    assert recent.path.is_dir()


def test_an_archive_that_does_not_unpack_leaves_nothing_and_holds_nothing(tmp_path: Path) -> None:
    root = tmp_path / "roots"
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    sha = base64.b64encode(hashlib.sha256(broken.read_bytes()).digest()).decode()

    with pytest.raises(zipfile.BadZipFile):
        unpacked(broken, sha, root)

    assert sorted(p.name for p in root.iterdir()) == [f"{base64.b64decode(sha).hex()}.lock"]
