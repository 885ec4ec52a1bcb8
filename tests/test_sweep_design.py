"""Sweep designs over several Dirichlet concentrations, saved before any run (`modomodo sweep --draws`,
`--save-design`, `--design`), and the committed design of the pool sweep (issue 16)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from harness import suites
from harness.cli import main
from harness.suites.base import BASELINES_DIR
from harness.factory.sweep import design, design_record, load_design, parse_draws, plan, pool_design, save_design
from strategies.base import seed_designs

BOWL = "synth-bowl-5"
POOL_DESIGN = BASELINES_DIR / "sweeps" / "minimodo-pool-live" / "design.json"


def test_pool_design_labels_seed_designs_then_distinct_draws_per_concentration():
    s = suites.load(BOWL)
    d = pool_design(s.space, [(1.0, 13), (0.3, 20), (10.0, 20)])
    mixes, labels = [m for m, _ in d], [label for _, label in d]
    assert mixes[:11] == seed_designs(s.space)
    assert labels[0] == "uniform" and labels[1].startswith("leave-out:") and labels[10].startswith("single:")
    assert len({m.key() for m in mixes}) == len(mixes) == 64
    assert labels[11] == "dirichlet(1)#0" and labels[-1] == "dirichlet(10)#19"
    assert mixes[:24] == design(s.space, 24)  # alpha 1 first: the 24-mixture design of the other recorded suites
    vec = lambda tag: np.array([s.space.to_vector(m) for m, lab in d if lab.startswith(tag)])  # noqa: E731
    assert vec("dirichlet(0.3)").max(axis=1).mean() > vec("dirichlet(10)").max(axis=1).mean() + 0.2
    for v in vec("dirichlet"):
        assert abs(v.sum() - 1.0) < 1e-12 and np.allclose(v, np.round(v, 3))
    assert pool_design(s.space, [(1.0, 13), (0.3, 20), (10.0, 20)]) == d  # deterministic


def test_parse_draws():
    assert parse_draws("1:31, 0.3:18") == [(1.0, 31), (0.3, 18)]
    for bad in ("1", "x:3", "0:3", "1:0", ""):
        with pytest.raises(ValueError, match="draws"):
            parse_draws(bad)


def test_design_file_round_trip_is_fixed_and_checked_against_the_suite(tmp_path):
    s, other = suites.load(BOWL), suites.load("synth-corner-6")
    labelled = pool_design(s.space, [(0.5, 4)])
    path = save_design(tmp_path / "design.json", design_record(s, labelled, [0, 1], {"draws": [[0.5, 4]]}))
    mixes, seeds, record = load_design(path, s)
    assert mixes == [m for m, _ in labelled] and seeds == [0, 1] and record["runs"] == 30
    assert json.loads(path.read_text())["mixtures"][11]["label"] == "dirichlet(0.5)#0"
    save_design(path, design_record(s, labelled, [0, 1], {"draws": [[0.5, 4]]}))  # identical: kept
    with pytest.raises(ValueError, match="different design"):
        save_design(path, design_record(s, labelled, [0, 1, 2], {"draws": [[0.5, 4]]}))
    with pytest.raises(ValueError, match="not of"):
        load_design(path, other)


def test_sweep_cli_saves_a_design_then_runs_from_it(tmp_path):
    store, path = tmp_path / "store", tmp_path / "store" / "design.json"
    r = CliRunner().invoke(
        main,
        [
            "sweep",
            "--suite",
            BOWL,
            "--runner",
            "replay",
            "--draws",
            "1:2,0.3:2",
            "--seeds",
            "0-1",
            "--save-design",
            str(path),
            "--store",
            str(store),
            "--dry-run",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "15 mixtures x 2 seeds = 30 runs" in r.output and path.is_file()
    r = CliRunner().invoke(
        main, ["sweep", "--suite", BOWL, "--runner", "replay", "--design", str(path), "--store", str(store), "--quiet"]
    )
    assert r.exit_code == 0, r.output
    assert "ran 30" in r.output
    r = CliRunner().invoke(
        main,
        [
            "sweep",
            "--suite",
            BOWL,
            "--runner",
            "replay",
            "--design",
            str(path),
            "--seeds",
            "0-2",
            "--store",
            str(store),
            "--quiet",
        ],
    )
    assert r.exit_code == 0 and "ran 15" in r.output and "skipped 30" in r.output  # extending by a seed
    r = CliRunner().invoke(
        main, ["sweep", "--suite", "synth-corner-6", "--runner", "replay", "--design", str(path), "--store", str(store)]
    )
    assert r.exit_code == 2 and "not of" in r.output


def test_the_committed_pool_design_is_fixed_balanced_and_regenerates():
    pool = suites.load("minimodo-pool-live")
    mixes, seeds, record = load_design(POOL_DESIGN, pool)  # also checks the card's protocol hash
    assert len(mixes) >= 96 and len(seeds) >= 8 and record["order"] == "seed-major"
    again = pool_design(pool.space, record["recipe"]["draws"], record["recipe"]["seed"])
    assert [m for m, _ in again] == mixes and [lab for _, lab in again] == [m["label"] for m in record["mixtures"]]
    alphas = {lab.split("#")[0] for _, lab in again if lab.startswith("dirichlet")}
    assert {"dirichlet(0.3)", "dirichlet(10)"} <= alphas  # sparse and near-uniform mixtures both appear
    specs = plan(pool, mixes, seeds)
    assert [sp.seed for sp in specs[: len(mixes)]] == [seeds[0]] * len(mixes)  # seed-major
    assert mixes[:24] == design(pool.space, 24)  # shares the 24 mixtures of minimodo-tiny(-p)
