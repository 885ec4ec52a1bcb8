"""`modomodo suite import`: any results table becomes a replay suite; bad tables are named."""

import numpy as np
import pandas as pd
import pytest

from harness import suites
from harness.factory.importer import import_table
from harness.suites.table import TableError
from tests.conftest import cli

N_DATASETS, N_MIXTURES, N_SEEDS = 16, 60, 5


@pytest.fixture
def big_table(tmp_path):
    """300 rows: 60 mixtures × 5 seeds over 16 weight columns; score = a known quadratic + noise."""
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(N_DATASETS) * 0.7, size=N_MIXTURES)
    b = rng.normal(0.5, 0.05, N_DATASETS)
    true = W @ b - 0.3 * np.sum(W**2, axis=1)
    rows = []
    for i, w in enumerate(W):
        for seed in range(N_SEEDS):
            row = {f"w_ds{j}": w[j] for j in range(N_DATASETS)}
            row.update(seed=seed, acc=true[i] + rng.normal(0, 0.01), loss=1 - true[i], run_name=f"run{i}-{seed}")
            rows.append(row)
    path = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_import_big_table_with_seeds(big_table, tmp_path):
    weights = ",".join(f"w_ds{j}" for j in range(N_DATASETS))
    out = tmp_path / "suite"
    proc = cli(
        "suite",
        "import",
        big_table,
        "--name",
        "big",
        "--weights",
        weights,
        "--metric",
        "acc",
        "--goal",
        "max",
        "--seed-col",
        "seed",
        "--out",
        out,
    )
    assert "300 runs, 60 mixtures, 16 datasets" in proc.stdout
    s = suites.load(out)
    assert s.space.datasets == tuple(f"ds{j}" for j in range(N_DATASETS))
    assert set(s.score_columns) == {"acc", "loss"}, "non-numeric columns are dropped, seed is not a score"
    # Repeated seeds give the noise model: the pooled within-mixture sd is the simulated 0.01.
    assert s.card["oracle"]["noise_sd"]["acc"] == pytest.approx(0.01, rel=0.2)
    assert s.card["oracle"]["seeds_per_mixture"] == {"min": 5, "max": 5}
    assert s.card["oracle"]["surrogate_fit"]["loo_rmse"] < 0.02
    # Each pilot of a recorded mixture returns one recorded seed; the oracle is the seed mean.
    m = next(iter(s.recorded))
    draws = {s.simulate(m, seed)[0]["acc"] for seed in range(50)}
    assert draws == set(s.recorded[m][:, s.score_columns.index("acc")])
    assert s.oracle(m)[0] == pytest.approx(s.recorded[m][:, s.score_columns.index("acc")].mean())
    # It benches like any suite, by path.
    bench_out = tmp_path / "bench"
    cli(
        "bench",
        "--suite",
        out,
        "--strategy",
        "random,uniform",
        "--budget",
        "4",
        "--seeds",
        "2",
        "--out",
        bench_out,
        "--quiet",
    )
    summary = pd.read_csv(bench_out / "summary.csv")
    assert len(summary) == 4 and (summary["status"] == "ok").all() and (summary["suite"] == "big").all()


def _table(tmp_path, rows, name="t.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


GOOD = [
    {"w_a": 0.5, "w_b": 0.5, "score": 0.3},
    {"w_a": 1.0, "w_b": 0.0, "score": 0.2},
    {"w_a": 0.0, "w_b": 1.0, "score": 0.1},
]


@pytest.mark.parametrize(
    "mutate, kwargs, message",
    [
        (lambda r: r[1].update(w_a=-0.2, w_b=1.2), {}, r"column 'w_a', line 3 \(data row 2\): weight -0.2 is negative"),
        (
            lambda r: r[1].update(w_a=0.7),
            {},
            r"line 3 \(data row 2\): weights w_a=0.7, w_b=0 sum to 0.7, not 1 \(within 1e-06\); pass --normalize",
        ),
        (lambda r: r[0].update(score="abc"), {}, r"column 'score', line 2 \(data row 1\): value 'abc' is not a number"),
        (lambda r: r[2].update(w_b=None), {}, r"column 'w_b', line 4 \(data row 3\): weight is missing"),
        (lambda r: None, {"metric": "scroe"}, "column 'scroe' not in the table; did you mean 'score'"),
        (lambda r: None, {"weights": "w_a,w_c"}, "column 'w_c' not in the table"),
        (lambda r: None, {"goal": "up"}, "--goal is 'up'; valid: max, min"),
    ],
)
def test_malformed_tables_are_named(tmp_path, mutate, kwargs, message):
    rows = [dict(r) for r in GOOD]
    mutate(rows)
    args = {"name": "t", "weights": "w_a,w_b", "metric": "score", "goal": "max", "out": tmp_path / "out"} | kwargs
    with pytest.raises(TableError, match=message):
        import_table(_table(tmp_path, rows), **args)
    assert not (tmp_path / "out").exists(), "nothing is written for a bad table"


def test_normalize_rescales_percentages(tmp_path):
    rows = [
        {"w_a": 50, "w_b": 50, "score": 0.3},
        {"w_a": 100, "w_b": 0, "score": 0.2},
        {"w_a": 0, "w_b": 100, "score": 0.1},
    ]
    out = import_table(_table(tmp_path, rows), "pct", "w_a,w_b", "score", "max", tmp_path / "pct", normalize=True)
    s = suites.load(out)
    assert s.oracle(s.space.parse("a=0.5,b=0.5")) == (0.3, "recorded")


def test_existing_suite_is_never_clobbered_by_a_failed_import(tmp_path, run_cli):
    out = tmp_path / "keep"
    import_table(_table(tmp_path, GOOD), "keep", "w_a,w_b", "score", "max", out)
    before = (out / "runs.csv").read_bytes()
    proc = run_cli(
        "suite",
        "import",
        _table(tmp_path, GOOD),
        "--name",
        "keep",
        "--weights",
        "w_a,w_b",
        "--metric",
        "score",
        "--goal",
        "max",
        "--out",
        out,
        check=False,
    )
    assert proc.returncode == 2 and "exists and is not empty" in proc.stderr
    bad = [dict(r) for r in GOOD]
    bad[0]["w_a"] = float("nan")
    proc = run_cli(
        "suite",
        "import",
        _table(tmp_path, bad, "bad.csv"),
        "--name",
        "keep",
        "--weights",
        "w_a,w_b",
        "--metric",
        "score",
        "--goal",
        "max",
        "--out",
        out,
        "--overwrite",
        check=False,
    )
    assert proc.returncode == 2 and "line 2 (data row 1): weight is missing" in proc.stderr
    assert (out / "runs.csv").read_bytes() == before


def test_duplicate_seed_rows_are_rejected(tmp_path):
    rows = [dict(GOOD[0], seed=1), dict(GOOD[0], seed=1), dict(GOOD[1], seed=1)]
    with pytest.raises(TableError, match=r"line 3 \(data row 2\) repeats a mixture and seed"):
        import_table(_table(tmp_path, rows), "d", "w_a,w_b", "score", "max", tmp_path / "d", seed_col="seed")


def test_unreadable_file(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x00\n\x01")
    with pytest.raises(TableError):
        import_table(path, "b", "w_a,w_b", "score", "max", tmp_path / "b")
