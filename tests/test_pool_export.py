"""Exporting a sweep whose runs carry checkpoints (minimodo-pool-live): one row per (mixture, seed,
fidelity) in fidelities.csv and the signal block per objective per fidelity, on a small store of
fake but realistically shaped records (the cpu runner's score keys, three checkpoints per run)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import f_oneway, spearmanr
from click.testing import CliRunner

from harness import suites
from harness.cli import main
from harness.spec import RunResult, RunSpec, fidelity_key
from harness.store import ResultStore
from harness.factory.export import export_suite, fidelity_table, sweep_table, weight_column
from harness.factory.sweep import design, plan
from harness.suites.signal import fidelity_signal
from harness.suites.table import FIDELITY_COLUMN

ROOT = Path(__file__).resolve().parent.parent
BENCH_IN = ["grounding", "referring", "geometry", "spatial", "science"]
BENCH_OUT = ["counting", "chart", "novel_referring", "column"]
LEVELS = (0.25, 0.5, 1.0)


def _scores(rng, effect, f):
    """A realistic score dict at fidelity f: greedy and p_correct per benchmark, aggregates, format."""
    out = {}
    for i, b in enumerate(BENCH_IN + BENCH_OUT):
        base = 0.3 + 0.1 * (i % 3) + effect[i % len(effect)] * f
        out[b] = float(np.clip(base + rng.normal(0, 0.03), 0, 1))
        out[f"p_correct_{b}"] = float(np.clip(base - 0.05 + rng.normal(0, 0.02), 0, 1))
        out[f"format/{b}"] = 1.0
    for suffix, prefix in (("", ""), ("_p", "p_correct_")):
        out[f"In_Score{suffix}"] = float(np.mean([out[prefix + b] for b in BENCH_IN]))
        out[f"Out_Score{suffix}"] = float(np.mean([out[prefix + b] for b in BENCH_OUT]))
    return out


@pytest.fixture
def pool_store(tmp_path):
    card = yaml.safe_load((ROOT / "baselines" / "minimodo-pool-live" / "card.yaml").read_text())
    card["name"] = "fake-pool-live"
    (tmp_path / "fake-pool-live").mkdir()
    (tmp_path / "fake-pool-live" / "card.yaml").write_text(yaml.safe_dump(card))
    s = suites.load(tmp_path / "fake-pool-live")
    mixes = design(s.space, 14)
    store = ResultStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    effects = {m.key(): rng.normal(0, 0.08, size=5) for m in mixes}
    for spec in plan(s, mixes, range(4)):
        ck = {fidelity_key(f): _scores(rng, effects[spec.mixture.key()], f) for f in LEVELS}
        scores = {**ck["1.0"], "train/reward_first": 1.4, "train/reward_last": 1.7}
        store.put(
            RunResult(
                spec.key,
                spec.to_dict(),
                "ok",
                scores,
                s.metric,
                "trained",
                {"seconds": 80.0, "t_train": 50.0 + spec.seed, "t_eval": 9.0, "t_eval_checkpoints": 20.0},
                provenance={
                    "git_sha": "abc",
                    "versions": {"torch": "2.13.0", "transformers": "5.17.0", "trl": "1.16.0"},
                    "checkpoint_steps": {"0.25": 50, "0.5": 100, "1.0": 200},
                },
                checkpoints=ck,
            )
        )
    # a failed run and a run of another protocol are left out
    other = RunSpec("other@1", "0" * 16, mixes[0], 0)
    store.put(RunResult(other.key, other.to_dict(), "ok", {"Out_Score_p": 9.0}, "Out_Score_p"))
    return s, store, mixes


def test_fidelity_table_has_one_row_per_mixture_seed_and_fidelity(pool_store):
    s, store, mixes = pool_store
    long = fidelity_table(store, s)
    wcols = [weight_column(d) for d in s.space.datasets]
    assert len(long) == 14 * 4 * 3 and not long.duplicated(wcols + ["seed", FIDELITY_COLUMN]).any()
    assert sorted(long[FIDELITY_COLUMN].unique()) == list(LEVELS)
    assert not any(c.startswith("train/") for c in long.columns)
    full = long[long[FIDELITY_COLUMN] == 1.0].drop(columns=[FIDELITY_COLUMN]).reset_index(drop=True)
    wide = sweep_table(store, s)
    assert np.allclose(full["Out_Score_p"], wide["Out_Score_p"])  # fidelity 1.0 is the final scores


def test_export_writes_fidelities_csv_and_a_signal_block_per_objective_per_fidelity(pool_store, tmp_path):
    s, store, mixes = pool_store
    folder = export_suite(store, s, "fake-pool", tmp_path / "fake-pool")
    card = yaml.safe_load((folder / "card.yaml").read_text())
    runs, fid = pd.read_csv(folder / "runs.csv"), pd.read_csv(folder / "fidelities.csv")
    assert len(runs) == 56 and len(fid) == 168 and "fidelity" not in runs.columns  # runs.csv: the judge's table
    block = card["fidelities"]
    assert block["table"] == "fidelities.csv" and block["levels"] == list(LEVELS) and block["rows"] == 168
    assert block["sha256"] == hashlib.sha256((folder / "fidelities.csv").read_bytes()).hexdigest()
    wcols = [weight_column(d) for d in s.space.datasets]
    for f in ("0.25", "0.5", "1.0"):
        for m in ("Out_Score_p", "In_Score", "Out_Score", "In_Score_p"):
            sig = block["signal"][f][m]
            sub = fid[fid["fidelity"] == float(f)]
            ref = f_oneway(*[g[m].to_numpy(float) for _, g in sub.groupby(wcols)])  # independent of the judge
            assert (
                sig["snr_mean"] == pytest.approx(np.sqrt(max(ref.statistic - 1, 0)), abs=1e-3) and sig["mixtures"] == 14
            )
    assert block["signal"]["1.0"]["Out_Score_p"]["snr_mean"] == pytest.approx(card["signal"]["Out_Score_p"]["snr_mean"])
    full_means = fid[fid["fidelity"] == 1.0].groupby(wcols)["Out_Score_p"].mean()
    for f in ("0.25", "0.5"):
        rc = block["rank_correlation"][f]["Out_Score_p"]
        means = fid[fid["fidelity"] == float(f)].groupby(wcols)["Out_Score_p"].mean()
        assert rc["spearman_with_full"] == pytest.approx(
            spearmanr(means, full_means.loc[means.index]).statistic, abs=1e-4
        )
        assert rc["mixtures"] == 14
    # the price of a pilot, measured from the runs' cost fields: t_train 50 + seed (seeds 0-3), three evaluations
    # per run taking 9 s (final) + 20 s (the two checkpoints)
    assert card["cost_model"]["kind"] == "checkpoints"
    assert card["cost_model"]["train_seconds"] == pytest.approx(51.5)
    assert card["cost_model"]["eval_seconds"] == pytest.approx(29 / 3, abs=1e-3)
    assert "1.0" not in block["rank_correlation"]
    # the effects grow with the fidelity in the fake data: the quarter-length run still orders them alike
    assert block["rank_correlation"]["0.5"]["In_Score"]["spearman_with_full"] > 0.5
    rec = suites.load(folder)
    assert len(rec.recorded) == 14 and rec.oracle(mixes[0])[1] == "recorded"


def test_export_of_runs_without_checkpoints_is_unchanged(tmp_path):
    s = suites.load("synth-bowl-5")
    store = ResultStore(tmp_path / "store")
    from harness.factory.sweep import run_sweep

    run_sweep(s, "replay", plan(s, design(s.space, 6), range(3)), store, workers=1, progress=False)
    folder = export_suite(store, s, "bowl-rec", tmp_path / "bowl-rec")
    assert "fidelities" not in yaml.safe_load((folder / "card.yaml").read_text())
    assert not (folder / "fidelities.csv").exists()
    block = fidelity_signal(fidelity_table(store, s), [weight_column(d) for d in s.space.datasets], ["score"])
    assert block["levels"] == [1.0] and set(block["signal"]["1.0"]) == {"score"}


def test_from_sweep_check_prints_the_signal_by_fidelity(pool_store):
    s, store, _ = pool_store
    r = CliRunner().invoke(main, ["suite", "from-sweep", "--store", str(store.root), "--suite", str(s.path), "--check"])
    assert r.exit_code == 0, r.output
    assert "by fidelity" in r.output and "0.25" in r.output


def test_the_leaderboard_shows_the_signal_by_fidelity_of_a_multi_fidelity_suite(pool_store, tmp_path):
    """The suite page of an exported multi-fidelity pool carries the card's SNR at every fidelity and the rank
    correlation with full fidelity, objective first; a suite without fidelities has no such table."""
    import re

    from tests.conftest import cli

    s, store, _ = pool_store
    folder = export_suite(store, s, "fake-pool", tmp_path / "fake-pool", metric="In_Score_p")
    block = yaml.safe_load((folder / "card.yaml").read_text())["fidelities"]
    out = tmp_path / "bench"
    cli(
        "bench",
        "--track",
        "pool",
        "--suite",
        folder,
        "--suite",
        "minimodo-tiny",
        "--strategy",
        "random,successive-halving",
        "--budget",
        "4",
        "--seeds",
        "2",
        "--workers",
        "1",
        "--out",
        out,
    )
    cli("leaderboard", "render", "--results", out, "--out", tmp_path / "site")
    pages = {
        p.stem.rsplit("-", 1)[0]: p.read_text() for p in (tmp_path / "site" / "suites").glob("*.html")
    }  # name-hash
    page = pages["fake-pool"]
    table = page[page.index('id="table-fidelity-signal"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    cells = [
        [re.sub(r"<[^>]+>|\[.*?\]", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows
    ]
    assert [c[0].split()[0] for c in cells][0] == "In_Score_p" and "(objective)" in cells[0][0]
    assert sorted(c[0].split()[0] for c in cells) == sorted(block["signal"]["1.0"])
    for c in cells:
        m = c[0].split()[0]
        snr = [f"{block['signal'][f][m]['snr_mean']:.2f}" for f in ("0.25", "0.5", "1.0")]
        rho = [f"{block['rank_correlation'][f][m]['spearman_with_full']:.2f}" for f in ("0.25", "0.5")]
        assert c[1:] == snr + rho, (m, c)
    assert "table-fidelity-signal" not in pages["minimodo-tiny"]
