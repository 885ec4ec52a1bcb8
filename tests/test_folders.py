"""harness/folders.py: the cache root, folders built aside and moved in atomically, built once under a lock."""

import os
import threading

import pytest

from harness.folders import build_once, built_aside, cache_dir, replace_folder


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MODOMODO_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("MODOMODO_CACHE")
    assert cache_dir() == __import__("pathlib").Path.home() / ".cache" / "modomodo"


def test_built_aside_replaces_the_folder_and_leaves_nothing_beside_it(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with built_aside(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.") and not any(tmp.iterdir())
        (tmp / "new.txt").write_text("new")
        assert (dest / "old.txt").is_file()  # the old folder stays whole until the block succeeds
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_build_leaves_the_old_folder_as_it_was(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with built_aside(dest, prefix=".out.tmp-1-") as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert (dest / "old.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replace_folder_into_a_new_place(tmp_path):
    src = tmp_path / ".x"
    src.mkdir()
    (src / "a").write_text("a")
    replace_folder(src, tmp_path / "x")
    assert (tmp_path / "x" / "a").read_text() == "a" and not src.exists()


def test_build_once_builds_one_time_even_when_asked_concurrently(tmp_path):
    calls = []
    barrier = threading.Barrier(4)

    def build(tmp):
        calls.append(tmp)
        (tmp / "data").write_text(str(os.getpid()))
        (tmp / "done.json").write_text("{}")

    def ask():
        barrier.wait()
        build_once(tmp_path / "thing", "done.json", build)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and (tmp_path / "thing" / "done.json").is_file()
    assert build_once(tmp_path / "thing", "done.json", lambda tmp: calls.append(tmp)) == tmp_path / "thing"
    assert len(calls) == 1  # complete: found, not rebuilt
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [".thing.lock"]  # no build folder left behind
