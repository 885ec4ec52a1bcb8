"""Folders the project writes whole: built aside, moved into place atomically, cached under one root.

- `cache_dir()`: the project's cache (`$MODOMODO_CACHE`, else `~/.cache/modomodo`): base models
  (`models/`), the GPU toy protocol's assets (`assets/`), the live suites' oracle store.
- `built_aside(dest)`: a fresh hidden folder beside `dest` to build into; when the block ends without
  an error it replaces `dest` (the old one, if any, is moved aside first and then removed, so `dest`
  is missing only between two renames), and on an error it is removed, leaving `dest` as it was.
- `build_once(folder, marker, build)`: the cached-build pattern: `folder` is complete when it holds
  `marker`; otherwise one process (under a file lock beside it) builds it aside and moves it in, and
  the others wait and then find it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

CACHE_ENV = "MODOMODO_CACHE"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "modomodo")


def replace_folder(tmp: Path, dest: Path) -> None:
    """Move the finished folder `tmp` to `dest` (same file system), replacing what was there."""
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


@contextlib.contextmanager
def built_aside(dest: Path, prefix: str | None = None) -> Iterator[Path]:
    """Yield an empty folder beside `dest` (hidden: `prefix`, default `.NAME.`); move it to `dest` when the
    block succeeds, remove it when it fails."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=prefix or f".{dest.name}."))
    try:
        yield tmp
        replace_folder(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def build_once(folder: Path, marker: str, build: Callable[[Path], object]) -> Path:
    """`folder`, built by `build(tmp)` (which writes `marker` last) unless it is complete already."""
    if (folder / marker).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (folder / marker).is_file():  # another process may have built it while this one waited
                with built_aside(folder) as tmp:
                    build(tmp)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder
