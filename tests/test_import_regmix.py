"""`suite import` on RegMix's files as released (issue 24, item 5): a mixture file and a result file joined on
their `index` column, weights rounded to 3 decimals (rows sum to 0.997-1.003), column names renamed. Expected
values are read from the raw files with the csv module, not through the importer."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from tests.conftest import ROOT, SHARED

CANDIDATES = [
    Path(os.environ.get("MODOMODO_REGMIX_DIR", "/nonexistent")),
    SHARED / "data" / "regmix",
    ROOT.parent.parent / "shared" / "data" / "regmix",
]
REGMIX = next((p for p in CANDIDATES if (p / "test_mixture_1B.csv").is_file()), None)
pytestmark = pytest.mark.skipif(REGMIX is None, reason="RegMix's released files not found (MODOMODO_REGMIX_DIR)")
PILE_CC = "metric/the_pile_pile_cc_val_loss"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _import(out: Path, *extra, mixtures="test_mixture_1B.csv", results="test_pile_loss_1B.csv"):
    return invoke(
        "suite",
        "import",
        REGMIX / mixtures,
        "--results",
        REGMIX / results,
        "--key",
        "index",
        "--weights",
        "train_the_pile_*",
        "--metric",
        "pile_cc",
        "--goal",
        "min",
        "--rename",
        f"{PILE_CC}=pile_cc",
        "--name",
        "regmix-1b-test",
        "--out",
        out,
        *extra,
    )


def test_the_1b_files_as_released_become_a_suite_scoring_regmix_losses(tmp_path):
    r = _import(tmp_path / "s", "--rounding", "0.001")
    assert r.exit_code == 0, r.output
    assert "64 runs, 64 mixtures, 17 datasets" in r.stdout
    from harness import suites

    s = suites.load(tmp_path / "s")
    assert s.space.datasets[:3] == ("arxiv", "freelaw", "nih_exporter") and "index" not in s.score_columns
    judge = s.judge("pool")
    mix, loss = _rows(REGMIX / "test_mixture_1B.csv"), {r["index"]: r for r in _rows(REGMIX / "test_pile_loss_1B.csv")}
    for row in mix[::9]:
        w = [float(row[f"train_the_pile_{d}"]) for d in s.space.datasets]
        m = judge.space.nearest_candidate([x / sum(w) for x in w])
        assert judge.oracle(m)[0] == pytest.approx(float(loss[row["index"]][PILE_CC]), abs=1e-12)
    best = min(float(r[PILE_CC]) for r in loss.values())
    assert s.best_known == pytest.approx(best, abs=1e-12)


def test_without_the_stated_rounding_the_sums_are_an_error_naming_it(tmp_path):
    r = _import(tmp_path / "s")
    assert r.exit_code == 2 and "not 1 (within 1e-06)" in r.stderr and "--rounding" in r.stderr
    r = _import(tmp_path / "s", "--rounding", "0.0001")  # 17 weights rounded to 1e-4 may be off by 0.00085
    assert r.exit_code == 2 and "within 0.00085" in r.stderr
    assert not (tmp_path / "s").exists()


def test_join_errors_name_the_key(tmp_path):
    lines = (REGMIX / "test_pile_loss_1B.csv").read_text().splitlines()
    short = tmp_path / "losses.csv"
    short.write_text("\n".join(lines[:-1]) + "\n")  # the last run has weights but no results
    last = lines[-1].split(",")[0]
    r = invoke(
        "suite",
        "import",
        REGMIX / "test_mixture_1B.csv",
        "--results",
        short,
        "--key",
        "index",
        "--weights",
        "train_the_pile_*",
        "--metric",
        PILE_CC,
        "--goal",
        "min",
        "--rounding",
        "0.001",
        "--name",
        "x",
        "--out",
        tmp_path / "s",
    )
    assert r.exit_code == 2 and f"key {int(last)!r}" in r.stderr and "not in the result file" in r.stderr
    dup = tmp_path / "dup.csv"
    dup.write_text("\n".join(lines + [lines[-1]]) + "\n")
    r = invoke(
        "suite",
        "import",
        REGMIX / "test_mixture_1B.csv",
        "--results",
        dup,
        "--key",
        "index",
        "--weights",
        "train_the_pile_*",
        "--metric",
        PILE_CC,
        "--goal",
        "min",
        "--rounding",
        "0.001",
        "--name",
        "x",
        "--out",
        tmp_path / "s",
    )
    assert r.exit_code == 2 and "appears twice in column 'index'" in r.stderr
    r = invoke(
        "suite",
        "import",
        REGMIX / "test_mixture_1B.csv",
        "--results",
        short,
        "--key",
        "idx",
        "--weights",
        "train_the_pile_*",
        "--metric",
        PILE_CC,
        "--goal",
        "min",
        "--name",
        "x",
        "--out",
        tmp_path / "s",
    )
    assert r.exit_code == 2 and "key column 'idx' not in the mixture file" in r.stderr and "'index'" in r.stderr
    r = invoke(
        "suite",
        "import",
        REGMIX / "test_mixture_1B.csv",
        "--results",
        REGMIX / "test_pile_loss_1B.csv",
        "--key",
        "index",
        "--weights",
        "train_the_pile_*",
        "--metric",
        PILE_CC,
        "--goal",
        "min",
        "--rename",
        "nope=x",
        "--name",
        "x",
        "--out",
        tmp_path / "s",
    )
    assert r.exit_code == 2 and "--rename: column 'nope' not in the table" in r.stderr


@pytest.mark.slow
def test_the_512_run_train_table_imports_and_benches_in_the_pool_track(tmp_path):
    """The issue's crash: RegMix's train table, benched with the model-based strategies in the pool track."""
    r = _import(
        tmp_path / "s", "--rounding", "0.001", mixtures="train_mixture_1m.csv", results="train_pile_loss_1m.csv"
    )
    assert r.exit_code == 0, r.output
    assert "512 runs, 512 mixtures, 17 datasets" in r.stdout
    r = invoke(
        "bench",
        "--suite",
        tmp_path / "s",
        "--track",
        "pool",
        "--strategy",
        "random,gp-bo,quadratic-bo,regmix",
        "--budget",
        "24",
        "--seeds",
        "6",
        "--out",
        tmp_path / "o",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
