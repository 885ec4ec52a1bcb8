"""leaderboard/parallel.py: the pieces' results in their order, whichever process ran them; errors reach the caller."""

import os

import pytest

from leaderboard import parallel


def _pid_and_square(x):
    return os.getpid(), x * x


def test_results_come_back_in_order_from_worker_processes():
    pieces = [lambda x=x: _pid_and_square(x) for x in range(12)]
    out = parallel.run_all(pieces, n_workers=2)
    assert [sq for _, sq in out] == [x * x for x in range(12)]
    assert os.getpid() not in {pid for pid, _ in out}  # run in forked workers, not here
    assert parallel.run_all(pieces, n_workers=1) == [(os.getpid(), x * x) for x in range(12)]  # one process


def test_a_piece_sees_what_the_parent_built_and_a_nested_call_runs_in_its_worker():
    table = {"a": 1.5, "b": 2.5}  # built before the call, never pickled to the workers

    def nested():
        return parallel.run_all([lambda: os.getpid(), lambda: os.getpid()], n_workers=2)

    got = parallel.run_all([lambda: sum(table.values()), nested], n_workers=2)
    assert got[0] == 4.0
    assert len(set(got[1])) == 1 and got[1][0] != os.getpid()  # the inner pieces ran in the worker itself


def test_an_error_in_a_piece_is_raised_to_the_caller():
    def bad():
        raise ValueError("piece 2 is broken")

    with pytest.raises(ValueError, match="piece 2 is broken"):
        parallel.run_all([lambda: 1, bad, lambda: 3], n_workers=2)
    assert parallel._PIECES is None  # the next call starts clean


@pytest.mark.parametrize("text", ["0", "-1", "two"])
def test_a_bad_worker_count_is_refused_by_name(text, monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, text)
    with pytest.raises(ValueError, match=f"MODOMODO_RENDER_WORKERS={text!r}"):
        parallel.workers()


def test_the_worker_count_defaults_to_the_usable_cpus(monkeypatch):
    monkeypatch.delenv(parallel.WORKERS_ENV, raising=False)
    assert parallel.workers() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(parallel.WORKERS_ENV, "3")
    assert parallel.workers() == 3
