"""The leaderboard's online track (issue 15): reading online.csv / online_runs.csv, the paired differences against
the constant control, the online section and pages. Built from small hand-written results folders (the columns
`modomodo bench --track online` writes), so no training runs here."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from leaderboard.data import load_results
from leaderboard.results_folder import ResultsError
from leaderboard.online import paired_difference, verdict_line
from leaderboard.stats import compute
from tests.conftest import cli

LIVE = "toy-live"
ONLINE = f"{LIVE}:online"
DOMAINS = ["alpha", "beta"]
# Out_Score per (strategy, seed): dump is always exactly +0.1 over constant; seed 4 only dump ran (unpaired)
OUT = {"constant": [0.25, 0.5, 0.125, 0.375], "dump": [0.35, 0.6, 0.225, 0.475, 0.9], "odm": [0.25, 0.25, 0.5, 0.25]}
IN = {"constant": [0.5, 0.5, 0.5, 0.5], "dump": [0.5, 0.6, 0.4, 0.5, 0.5], "odm": [0.4, 0.6, 0.5, 0.5]}
STEPS = 3
SUMMARY_COLUMNS = [
    "suite",
    "strategy",
    "budget",
    "seed",
    "track",
    "score",
    "regret",
    "normalized_regret",
    "uniform_score",
    "best_known",
    "worst_known",
    "gain_over_uniform",
    "status",
    "runs_used",
    "cost_used",
    "recommended",
    "protocol",
]
MIXTURE = json.dumps({"alpha": 0.5, "beta": 0.5})


def _bench_json(folder: Path, suites: list[dict], strategies: list[str], budgets: list[int], seeds: list[int]) -> None:
    (folder / "bench.json").write_text(
        json.dumps(
            {
                "budgets": budgets,
                "created": "2026-12-01T00:00:00+00:00",
                "git_sha": "abc123",
                "runner": "cpu",
                "seeds": seeds,
                "versions": {"modomodo": "0.1.0"},
                "suites": suites,
                "strategies": [
                    {
                        "name": n,
                        "family": "reference" if n == "constant" else "online",
                        "description": n,
                        "citation": "",
                    }
                    for n in strategies
                ],
            }
        )
    )


def make_online(root: Path, out_scores=None, in_scores=None, failed=("odm", 3), name="online") -> Path:
    """An online results folder: summary.csv, online.csv (weights per step), online_runs.csv, bench.json."""
    out_scores, in_scores = out_scores or OUT, in_scores or IN
    folder = root / name
    folder.mkdir(parents=True)
    summary, steps, runs = [], [], []
    for strat, outs in out_scores.items():
        for seed, out in enumerate(outs):
            status = "failed" if (strat, seed) == failed else "ok"
            score = out if status == "ok" else np.nan
            summary.append(
                {
                    "suite": ONLINE,
                    "strategy": strat,
                    "budget": 1,
                    "seed": seed,
                    "track": "online",
                    "score": score,
                    "regret": 1 - score,
                    "normalized_regret": 1 - score,
                    "uniform_score": 0.3,
                    "best_known": 1.0,
                    "worst_known": 0.0,
                    "gain_over_uniform": score - 0.3,
                    "status": status,
                    "runs_used": 0,
                    "cost_used": 1.005,
                    "recommended": MIXTURE,
                    "protocol": "0123456789abcdef",
                }
            )
            runs.append(
                {
                    "suite": ONLINE,
                    "strategy": strat,
                    "seed": seed,
                    "status": status,
                    "score": score,
                    "cost_used": 1.0 + 0.001 * (seed + 1),
                    "t_online": 0.003 * STEPS,
                    "t_online_strategy": 0.001,
                    "t_train": 2.0,
                    "s_per_step": 0.5,
                    "reason": "" if status == "ok" else "crashed",
                    "In_Score": in_scores[strat][seed] if status == "ok" else np.nan,
                    "Out_Score": score,
                }
            )
            for step in range(1, STEPS + 1):
                a = 0.5 if strat == "constant" else 0.5 + 0.1 * step
                steps.append(
                    {
                        "suite": ONLINE,
                        "strategy": strat,
                        "seed": seed,
                        "step": step,
                        "w:alpha": a,
                        "w:beta": 1 - a,
                        "n:alpha": 2,
                        "n:beta": 2,
                    }
                )
    pd.DataFrame(summary, columns=SUMMARY_COLUMNS).to_csv(folder / "summary.csv", index=False)
    pd.DataFrame(steps).to_csv(folder / "online.csv", index=False)
    pd.DataFrame(runs).to_csv(folder / "online_runs.csv", index=False)
    _bench_json(
        folder,
        [
            {
                "name": ONLINE,
                "suite": LIVE,
                "track": "online",
                "can_rank": False,
                "kind": "live",
                "metric": "Out_Score",
                "goal": "max",
                "protocol": "0123456789abcdef",
                "version": "2",
                "best_known": 1.0,
                "worst_known": 0.0,
                "uniform_score": 0.3,
                "ranking_reason": "live suite: no measured noise model on its card",
            }
        ],
        list(out_scores),
        [1],
        sorted({i for v in out_scores.values() for i in range(len(v))}),
    )
    return folder


def make_offline(root: Path, recorded_from: str = LIVE) -> Path:
    """An offline (pool) results folder of a recorded suite whose card says it was recorded from `recorded_from`."""
    card_dir = root / "suites" / "rec-toy"
    card_dir.mkdir(parents=True)
    (card_dir / "card.yaml").write_text(
        f"name: rec-toy\nkind: replay\nmetric: Out_Score\ngoal: max\ndatasets: "
        f"[alpha, beta]\nprotocol:\n  recorded_from: {recorded_from}\n"
    )
    folder = root / "offline"
    folder.mkdir()
    rows = []
    for strat, base in (("uniform", 0.3), ("random", 0.4)):
        for budget in (4, 8):
            for seed in range(3):
                score = base + 0.01 * seed + (0.02 * budget if strat == "random" else 0.0)
                rows.append(
                    {
                        "suite": "rec-toy",
                        "strategy": strat,
                        "budget": budget,
                        "seed": seed,
                        "track": "pool",
                        "score": score,
                        "regret": 1 - score,
                        "normalized_regret": 1 - score,
                        "uniform_score": 0.3,
                        "best_known": 1.0,
                        "worst_known": 0.0,
                        "gain_over_uniform": score - 0.3,
                        "status": "ok",
                        "runs_used": 0,
                        "cost_used": budget,
                        "recommended": MIXTURE,
                        "protocol": "fedcba9876543210",
                    }
                )
    pd.DataFrame(rows, columns=SUMMARY_COLUMNS).to_csv(folder / "summary.csv", index=False)
    _bench_json(
        folder,
        [
            {
                "name": "rec-toy",
                "track": "pool",
                "can_rank": True,
                "ranking_reason": "test",
                "kind": "replay",
                "metric": "Out_Score",
                "goal": "max",
                "protocol": "fedcba9876543210",
                "version": "1",
                "best_known": 1.0,
                "worst_known": 0.0,
                "uniform_score": 0.3,
                "path": str(card_dir),
            }
        ],
        ["uniform", "random"],
        [4, 8],
        [0, 1, 2],
    )
    return folder


# -- reading ------------------------------------------------------------------------------------------------
def test_reader_exposes_the_online_tables(tmp_path):
    res = load_results([make_online(tmp_path)])
    assert res.online_suite_names == [ONLINE] and res.suite_names == []
    assert len(res.online_steps) == sum(len(v) for v in OUT.values()) * STEPS
    assert {"w:alpha", "w:beta", "n:alpha", "n:beta"} <= set(res.online_steps.columns)
    assert len(res.online_runs) == sum(len(v) for v in OUT.values())
    assert {"In_Score", "Out_Score", "t_online"} <= set(res.online_runs.columns)
    # the same folder twice: merged, one row per (suite, strategy, seed[, step]) as for summary.csv
    twice = load_results([tmp_path / "online", tmp_path / "online"])
    assert len(twice.online_steps) == len(res.online_steps) and len(twice.online_runs) == len(res.online_runs)


def test_reader_without_online_files_gives_empty_tables(tmp_path):
    res = load_results([make_offline(tmp_path)])
    assert res.online_steps.empty and res.online_runs.empty and res.online_suite_names == []
    assert res.suite_names == ["rec-toy"]
    assert compute(res).online.table.empty


@pytest.mark.parametrize("case", ["runs-missing-column", "steps-garbled-weight", "steps-no-weights", "runs-garbled"])
def test_reader_names_the_bad_file_and_column(case, tmp_path):
    folder = make_online(tmp_path)
    if case.startswith("runs"):
        path = folder / "online_runs.csv"
        df = pd.read_csv(path)
        if case == "runs-missing-column":
            df = df.drop(columns="cost_used")
        else:
            df["In_Score"] = df["In_Score"].astype(object)
            df.loc[2, "In_Score"] = "lots"
    else:
        path = folder / "online.csv"
        df = pd.read_csv(path)
        if case == "steps-garbled-weight":
            df["w:beta"] = df["w:beta"].astype(object)
            df.loc[5, "w:beta"] = "half"
        else:
            df = df.drop(columns=["w:alpha", "w:beta"])
    df.to_csv(path, index=False)
    expect = {
        "runs-missing-column": r"online_runs\.csv: lacks columns \['cost_used'\]",
        "runs-garbled": r"online_runs\.csv: column 'In_Score', line 4 .*'lots' is not a number",
        "steps-garbled-weight": r"online\.csv: column 'w:beta', line 7 .*'half' is not a number",
        "steps-no-weights": r"online\.csv: has no weight column",
    }[case]
    with pytest.raises(ResultsError, match=expect):
        load_results([folder])


# -- statistics -----------------------------------------------------------------------------------------------
def test_paired_difference_known_answer_and_unpaired_seed_left_out(tmp_path):
    st = compute(load_results([make_online(tmp_path)])).online
    p = st.paired.set_index(["strategy", "metric"])
    dump = p.loc[("dump", "Out_Score")]
    assert dump.n_pairs == 4  # seed 4: only dump ran it
    assert dump.diff_mean == pytest.approx(0.1) and dump.diff_lo == pytest.approx(0.1)
    assert dump.diff_hi == pytest.approx(0.1)
    assert dump.snr == np.inf and dump.verdict == "too few seeds"  # 4 pairs < MIN_PAIRS: no verdict at all
    odm = p.loc[("odm", "Out_Score")]
    assert odm.n_pairs == 3  # odm's seed 3 failed
    d = np.array([0.25 - 0.25, 0.25 - 0.5, 0.5 - 0.125])
    assert odm.diff_mean == pytest.approx(d.mean())
    assert odm.diff_se == pytest.approx(d.std(ddof=1) / np.sqrt(3))
    assert odm.snr == pytest.approx(abs(d.mean()) / (d.std(ddof=1) / np.sqrt(3)))
    ci = sps.ttest_1samp(d, 0.0).confidence_interval(0.95)  # the paired t-interval
    assert odm.diff_lo == pytest.approx(ci.low) and odm.diff_hi == pytest.approx(ci.high)
    assert odm.verdict == "too few seeds"
    assert set(st.paired["metric"]) == {"Out_Score", "In_Score"}
    assert st.metrics[ONLINE] == ["Out_Score", "In_Score"]
    assert st.verdicts[ONLINE][0] == (
        "no verdict on Out_Score: fewer than 6 paired seeds against the constant control (dump, odm)"
    )
    assert st.verdicts[ONLINE][2].startswith("4 paired comparisons on this suite, Holm-corrected together")
    assert "a true difference of 0.01 in Out_Score would need" in st.verdicts[ONLINE][2]
    t = st.table.set_index("strategy")
    assert t.loc["dump", "runs"] == 5 and t.loc["odm", "n_failed"] == 1
    assert t.loc["constant", "score_mean"] == pytest.approx(np.mean(OUT["constant"]))
    assert t.loc["constant", "overhead_mean"] == pytest.approx(0.0025)
    assert t.loc["constant", "ms_per_step"] == pytest.approx(3.0)  # 0.009 s over 3 steps
    assert t.loc["constant", "weight_shift"] == 0.0 and t.loc["dump", "weight_shift"] > 0  # the control never moves


def test_paired_difference_is_deterministic_and_a_worse_verdict():
    runs = pd.DataFrame(
        {
            "strategy": ["constant"] * 4 + ["x"] * 4,
            "seed": list(range(4)) * 2,
            "status": "ok",
            "score": [0.5, 0.6, 0.7, 0.8, 0.3, 0.35, 0.5, 0.55],
        }
    )
    a, b = paired_difference(runs, "x", "score", "s"), paired_difference(runs, "x", "score", "s")
    assert {k: v for k, v in a.items() if k != "diffs"} == {k: v for k, v in b.items() if k != "diffs"}
    assert a["diffs"].tolist() == pytest.approx([-0.2, -0.25, -0.2, -0.25])
    assert a["diff_hi"] < 0 and a["seeds"] == [0, 1, 2, 3]
    frame = pd.DataFrame([{"strategy": "x", "verdict": "worse"}])
    assert verdict_line(frame, "Out_Score") == (
        "no online strategy beats the constant control on Out_Score; x does "
        "worse (paired t-test, Holm-adjusted p < 0.05)"
    )


def test_online_verdicts_are_paired_t_tests_with_holm_over_the_suite(tmp_path):
    """8 paired seeds: dump clearly above the control, odm noise, aioli below; 3 strategies x 2 scores = 6
    comparisons, Holm-corrected together; the verdicts agree with scipy's paired t-test and Holm by hand."""
    rng = np.random.default_rng(8)
    const = rng.uniform(0.3, 0.5, 8)
    out = {
        "constant": const,
        "dump": const + 0.05 + rng.normal(0, 0.01, 8),
        "odm": const + rng.normal(0, 0.03, 8),
        "aioli": const - 0.04 + rng.normal(0, 0.01, 8),
    }
    inn = {k: 0.5 + rng.normal(0, 0.02, 8) for k in out}
    st = compute(
        load_results(
            [
                make_online(
                    tmp_path, {k: list(v) for k, v in out.items()}, {k: list(v) for k, v in inn.items()}, failed=None
                )
            ]
        )
    ).online
    p = st.paired.set_index(["strategy", "metric"])
    raw = {}
    for strat in ("aioli", "dump", "odm"):
        raw[(strat, "Out_Score")] = sps.ttest_rel(out[strat], out["constant"]).pvalue
        raw[(strat, "In_Score")] = sps.ttest_rel(inn[strat], inn["constant"]).pvalue
    order = sorted(raw, key=raw.get)
    holm, run = {}, 0.0
    for i, key in enumerate(order):
        run = max(run, min(1.0, (len(order) - i) * raw[key]))
        holm[key] = run
    for key in raw:
        assert p.loc[key, "p"] == pytest.approx(raw[key]) and p.loc[key, "p_holm"] == pytest.approx(holm[key])
        expect = "same" if holm[key] >= 0.05 else ("better" if p.loc[key, "diff_mean"] > 0 else "worse")
        assert p.loc[key, "verdict"] == expect
    assert p.loc[("dump", "Out_Score"), "verdict"] == "better" and p.loc[("aioli", "Out_Score"), "verdict"] == "worse"
    assert st.verdicts[ONLINE][0].startswith("dump beats the constant control on Out_Score")
    assert "aioli does worse" in st.verdicts[ONLINE][0]


def test_two_seeds_that_happen_to_agree_get_no_verdict(tmp_path):
    """The issue's case: a strategy benched on 2 seeds, +0.026 and +0.027 over the control, was said to beat it."""
    out = {"constant": [0.30, 0.40], "new": [0.326, 0.427]}
    st = compute(load_results([make_online(tmp_path, out, {k: [0.5, 0.5] for k in out}, failed=None)])).online
    row = st.paired.set_index(["strategy", "metric"]).loc[("new", "Out_Score")]
    assert row.verdict == "too few seeds" and "beats" not in st.verdicts[ONLINE][0]


# -- the site -------------------------------------------------------------------------------------------------
def _render(folders: list[Path], out: Path) -> Path:
    cli("leaderboard", "render", "--results", *folders, "--out", out)
    return out


def test_index_shows_the_online_section_apart_from_the_tracks(tmp_path):
    site = _render([make_online(tmp_path), make_offline(tmp_path)], tmp_path / "site")
    index = (site / "index.html").read_text()
    assert 'id="online-track"' in index and "Online track" in index
    assert "One training run per seed; not in the overall ranking (live suite)" in index
    assert "no verdict on Out_Score: fewer than 6 paired seeds" in index
    assert "no verdict on In_Score: fewer than 6 paired seeds" in index
    # after the offline track sections, and the online suite in none of them
    assert index.index('id="track-pool"') < index.index('id="online-track"')
    tracks = index[: index.index('id="online-track"')]
    assert ONLINE not in tracks and 'id="track-online"' not in index
    data = {p.name for p in (site / "data").iterdir()}
    assert {"online.csv.gz", "online_runs.csv.gz", "online_leaderboard.csv", "online_paired.csv"} <= data
    assert len(pd.read_csv(site / "data" / "online.csv.gz")) == sum(len(v) for v in OUT.values()) * STEPS
    assert "online_runs.csv.gz" in (site / "data.html").read_text()
    # the offline table holds only the offline suite
    assert set(pd.read_csv(site / "data" / "leaderboard.csv")["suite"]) == {"rec-toy"}


def test_online_suite_page_has_both_pictures_and_the_command(tmp_path):
    site = _render([make_online(tmp_path), make_offline(tmp_path)], tmp_path / "site")
    page = next(p for p in (site / "suites").glob("*.html") if "online" in p.name).read_text()
    for kind in ("online-weights", "online-compute"):
        src = re.search(rf'<img src="\.\./(plots/{kind}-[^"]+\.svg)"', page)
        assert src and (site / src.group(1)).is_file(), kind
    assert (
        f"modomodo bench --track online --suite {LIVE} --runner cpu --strategy constant,dump,odm --seeds 0-4 --out DIR"
    ) in page
    assert "rec-toy" in page and "recorded per-mixture mean of the recommended mixture" in page
    assert "over 3 study seeds" in page and "∞" in page  # dump's SNR: the same difference on every seed
    compute_svg = next((site / "plots").glob("online-compute-*.svg")).read_text()
    assert "random (offline)" in compute_svg and "dump (online)" in compute_svg
    assert "uniform mixture (offline)" in compute_svg
    weights_svg = next((site / "plots").glob("online-weights-*.svg")).read_text()
    assert "alpha" in weights_svg and "training step" in weights_svg


def test_online_points_alone_when_no_offline_suite_matches(tmp_path):
    site = _render([make_online(tmp_path), make_offline(tmp_path, recorded_from="another-live")], tmp_path / "site")
    page = next(p for p in (site / "suites").glob("*.html") if "online" in p.name).read_text()
    assert "the online points are drawn alone" in page
    assert "(offline)</text>" not in next((site / "plots").glob("online-compute-*.svg")).read_text().replace(
        "uniform mixture (offline)", ""
    )


def test_offline_only_results_have_no_online_section(tmp_path):
    site = _render([make_offline(tmp_path)], tmp_path / "site")
    index = (site / "index.html").read_text()
    assert "online-track" not in index and "Online track" not in index
    assert not list((site / "data").glob("online*")) and not list((site / "plots").glob("online-*"))
    assert "online" not in (site / "data.html").read_text()
    for page in (site / "strategies").glob("*.html"):
        assert 'id="online"' not in page.read_text()


def test_online_site_is_byte_identical_when_rendered_again(tmp_path):
    import hashlib

    folders = [make_online(tmp_path), make_offline(tmp_path)]
    a, b = _render(folders, tmp_path / "a"), _render(folders, tmp_path / "b")

    def digest(root):
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digest(a) == digest(b)
    board = json.loads((a / "data" / "leaderboard.json").read_text())
    assert board["online"]["verdicts"][ONLINE][0].startswith("no verdict on Out_Score")
    assert {r["suite"] for r in board["table"]} == {"rec-toy"}
