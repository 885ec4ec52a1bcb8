"""The RegMix suites (issue 24): public runs, scored by RegMix's recorded loss at the scale each suite scores.

Every expected number here comes from the released CSV files in baselines/regmix/released/, read with the
standard library's csv module and matched to the suite's mixtures by nearest weights, never from the builder
or the loader; the two-scale pool's costs are checked against 6·N·D computed by hand."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

import strategies
from harness import suites
from harness.runners import make_runner
from harness.sandbox import submission
from harness.spec import Budget, CostModel, Observation, Proposal, pilot_cost, spent
from harness.studies.study import Study
from strategies.base import Strategy

ROOT = Path(__file__).resolve().parents[1]
RELEASED = ROOT / "baselines" / "regmix" / "released"
SUITES = {"regmix-1m": 1256, "regmix-60m": 256, "regmix-1b": 64, "regmix-1m-to-60m": 256}
COST = (6 * 1e6 * 1e9) / (6 * 60e6 * 1e9)  # a 1M run in 60M run-equivalents (6·N·D, the paper's N and D)
SMALL = round(COST, 6)  # its fidelity level (a label, 6 decimals)


def raw_rows(mixture_file: str, loss_file: str) -> tuple[np.ndarray, np.ndarray]:
    """(weights normalised to sum 1, Pile-CC loss) of a released file pair, joined on `index` by hand."""
    with open(RELEASED / mixture_file, newline="") as f:
        mix = list(csv.DictReader(f))
    with open(RELEASED / loss_file, newline="") as f:
        loss = {r["index"]: r for r in csv.DictReader(f)}
    cc = "Pile-CC" if "Pile-CC" in next(iter(loss.values())) else "metric/the_pile_pile_cc_val_loss"
    W, y = [], []
    for r in mix:
        w = np.array([float(v) for k, v in r.items() if k != "index"])
        W.append(w / w.sum())
        y.append(float(loss[r["index"]][cc]))
    return np.array(W), np.array(y)


def raw_domain_order(mixture_file: str) -> list[str]:
    with open(RELEASED / mixture_file, newline="") as f:
        header = next(csv.reader(f))[1:]
    sweep_to_id = {
        "ArXiv": "arxiv",
        "FreeLaw": "freelaw",
        "NIH ExPorter": "nih_exporter",
        "PubMed Central": "pubmed_central",
        "Wikipedia (en)": "wikipedia_en",
        "DM Mathematics": "dm_mathematics",
        "Github": "github",
        "PhilPapers": "philpapers",
        "Stack Exchange": "stackexchange",
        "Enron Emails": "enron_emails",
        "Gutenberg (PG-19)": "gutenberg_pg_19",
        "Pile-CC": "pile_cc",
        "Ubuntu IRC": "ubuntu_irc",
        "EuroParl": "europarl",
        "HackerNews": "hackernews",
        "PubMed Abstracts": "pubmed_abstracts",
        "USPTO Backgrounds": "uspto_backgrounds",
    }
    return [h.removeprefix("train_the_pile_") if h.startswith("train_the_pile_") else sweep_to_id[h] for h in header]


# the released files behind each suite's scored scale
SCORED = {
    "regmix-1m": [
        ("sweep1000_mixture_1m.csv", "sweep1000_pile_loss_1m.csv"),
        ("test_mixture_1m.csv", "test_pile_loss_1m.csv"),
    ],
    "regmix-60m": [("test_mixture_60m.csv", "test_pile_loss_60m.csv")],
    "regmix-1b": [("test_mixture_1B.csv", "test_pile_loss_1B.csv")],
    "regmix-1m-to-60m": [("test_mixture_60m.csv", "test_pile_loss_60m.csv")],
}


def raw_table(pairs) -> tuple[np.ndarray, np.ndarray, list[str]]:
    Ws, ys = [], []
    order = raw_domain_order(pairs[0][0])
    for mf, lf in pairs:
        W, y = raw_rows(mf, lf)
        o = raw_domain_order(mf)
        Ws.append(W[:, [o.index(d) for d in order]])
        ys.append(y)
    return np.vstack(Ws), np.concatenate(ys), order


def nearest(W: np.ndarray, w: np.ndarray) -> tuple[int, float]:
    d = np.abs(W - w).max(axis=1)
    i = int(np.argmin(d))
    return i, float(d[i])


@pytest.fixture(scope="module", params=sorted(SUITES))
def suite(request):
    return request.param, suites.load(request.param).judge("pool")


def test_registered_with_size_family_objective_and_licence(suite):
    name, s = suite
    folder = suites.registered()[name]
    card = yaml.safe_load((folder / "card.yaml").read_text())
    assert len(s.space.candidates) == SUITES[name]
    assert card["family"] == "lm-pretraining" and card["metric"] == "loss_pile_cc" and card["goal"] == "min"
    assert len(card["score_columns"]) == 13 and len(card["datasets"]) == 17
    assert "MIT License" in (folder / "LICENSE").read_text() and "Sea AI Lab" in (folder / "LICENSE").read_text()
    assert "2407.01492" in card["citation"] and card["licence"]["name"] == "MIT"


def test_every_candidate_scores_regmix_recorded_loss_at_the_suite_scale(suite):
    """For each pool candidate: the oracle's score is the Pile-CC loss of the released row with the same weights
    (max weight difference < 1e-5, the 6-decimal storage) at the scale the suite scores, and every released row
    is some candidate's (a bijection)."""
    name, s = suite
    W, y, order = raw_table(SCORED[name])
    assert len(W) == SUITES[name]
    perm = [order.index(d) for d in s.space.datasets]
    W = W[:, perm]
    matched = set()
    for m in s.space.candidate_mixtures():
        i, gap = nearest(W, s.space.to_vector(m))
        assert gap < 1e-5, (name, m, gap)
        score, source = s.oracle(m)
        assert source == "recorded" and score == pytest.approx(y[i], abs=1e-9), (name, m)
        matched.add(i)
    assert len(matched) == len(W)


def test_the_two_scale_pool_answers_1m_pilots_with_the_1m_loss():
    s = suites.load("regmix-1m-to-60m").judge("pool")
    W1, y1, order = raw_table([("test_mixture_1m.csv", "test_pile_loss_1m.csv")])
    W1 = W1[:, [order.index(d) for d in s.space.datasets]]
    assert s.space.fidelities == (SMALL, 1.0)
    for m in s.space.candidate_mixtures()[::17]:
        i, gap = nearest(W1, s.space.to_vector(m))
        assert gap < 1e-5
        assert s.suite.simulate_recorded(m, 0, SMALL)[s.metric] == pytest.approx(y1[i], abs=1e-9)


def test_the_1m_pool_holds_the_sweep_and_the_test_runs_once_each():
    """The sweep's first 512 rows are the training set (same weights, same losses); the test mixtures are not
    in the sweep: 1,000 + 256 distinct mixtures."""
    Ws, ys = raw_rows("sweep1000_mixture_1m.csv", "sweep1000_pile_loss_1m.csv")
    Wt, yt = raw_rows("train_mixture_1m.csv", "train_pile_loss_1m.csv")
    We, _ = raw_rows("test_mixture_1m.csv", "test_pile_loss_1m.csv")
    assert np.allclose(Ws[:512], Wt) and np.allclose(ys[:512], yt)
    keys = {tuple(np.round(w, 6)) for w in Ws}
    assert not keys & {tuple(np.round(w, 6)) for w in We} and len(keys) == 1000


def test_a_study_scores_its_recommendation_by_the_released_loss(suite):
    name, s = suite
    W, y, order = raw_table(SCORED[name])
    W = W[:, [order.index(d) for d in s.space.datasets]]
    out = Study(s, strategies.get("random"), Budget(6), 3, make_runner("replay", s)).run()
    assert out.status == "ok", out.reason
    i, gap = nearest(W, np.array([out.recommended[d] for d in s.space.datasets]))
    assert gap < 1e-5 and out.score == pytest.approx(y[i], abs=1e-9)
    # regret against the best released loss at that scale (minimised)
    assert out.regret == pytest.approx(out.score - y.min(), abs=1e-9)


# -- the scales cost model -----------------------------------------------------------------------------


def test_the_card_states_6ND_costs_and_the_ratio():
    card = yaml.safe_load((suites.registered()["regmix-1m-to-60m"] / "card.yaml").read_text())
    by_hand = (6 * 1e6 * 1e9) / (6 * 60e6 * 1e9)
    assert card["scales"]["cost_ratio_1m_per_60m"] == pytest.approx(by_hand)
    assert card["cost_model"]["kind"] == "scales"
    assert {float(k): v for k, v in card["cost_model"]["cost"].items()} == pytest.approx({SMALL: COST, 1.0: 1.0})
    assert "6" in card["cost_model"]["source"] and card["fidelities"]["levels"] == [SMALL, 1.0]


class Scripted(Strategy):
    name = "scripted-scales"
    plan: list = []

    def propose(self, history, budget):
        if len(history) >= len(self.plan) or budget.remaining(history) <= 0:
            return None
        i, f = self.plan[len(history)]
        m = self.space.candidate_mixtures()[i]
        return m if f == 1.0 else Proposal(m, f)

    def recommend(self, history):
        return self.space.candidate_mixtures()[self.plan[0][0]]


def test_a_60m_pilot_after_a_1m_pilot_is_a_separate_model_costing_a_full_run():
    s = suites.load("regmix-1m-to-60m").judge("pool")
    plan = [(7, SMALL), (7, 1.0), (9, SMALL)]
    out = Study(s, type("S", (Scripted,), {"plan": plan}), Budget(3), 0, make_runner("replay", s)).run()
    assert out.status == "ok", out.reason
    assert [t["cost"] for t in out.trajectory] == pytest.approx([COST, 1.0, COST])  # not 1 - COST: no continuation
    assert out.cost_used == pytest.approx(1 + 2 * COST)
    m = s.space.candidate_mixtures()[7]
    W60, y60, order = raw_table([("test_mixture_60m.csv", "test_pile_loss_60m.csv")])
    W1, y1, _ = raw_table([("test_mixture_1m.csv", "test_pile_loss_1m.csv")])
    perm = [order.index(d) for d in s.space.datasets]
    i, _ = nearest(W60[:, perm], s.space.to_vector(m))
    j, _ = nearest(W1[:, perm], s.space.to_vector(m))
    assert out.trajectory[0]["value"] == pytest.approx(y1[j]) and out.trajectory[1]["value"] == pytest.approx(y60[i])


def test_a_budget_of_one_60m_run_buys_60_1m_pilots_and_then_no_60m_run():
    s = suites.load("regmix-1m-to-60m").judge("pool")
    plan = [(k, SMALL) for k in range(60)] + [(0, 1.0)]
    out = Study(s, type("S", (Scripted,), {"plan": plan}), Budget(1.0), 0, make_runner("replay", s)).run()
    assert out.status == "ok" and out.runs_used == 60 and out.cost_used == 1.0
    assert {t["fidelity"] for t in out.trajectory} == {SMALL}  # nothing left for the 60M run


def test_pilot_cost_and_spent_under_scales_by_hand():
    from harness.mixture import Mixture

    cm = CostModel.from_card({"kind": "scales", "cost": {0.1: 0.02, "1.0": 1}}).check_levels((0.1, 1.0))
    a, b = Mixture({"x": 0.5, "y": 0.5}), Mixture({"x": 1.0, "y": 0.0})
    hist = [Observation(a, 1.0, {}, "ok", 0.1)]
    assert pilot_cost(hist, a, 1.0, cm) == (1.0, False)
    assert pilot_cost(hist, a, 1.0) == (0.9, True)  # the checkpoint rule, unchanged without a cost model
    hist += [Observation(a, 1.0, {}, "ok", 1.0), Observation(b, None, {}, "failed", 0.1)]
    assert spent(hist, cm) == pytest.approx(0.02 + 1.0 + 0.02)
    assert Budget(2, cost_model=cm).remaining(hist) == pytest.approx(2 - 1.04)
    assert Budget(2, cost_model=cm).affords(hist, b, 1.0) is False
    # a single-fidelity history under a model whose full run costs 1: one per run, as before
    assert Budget(3, cost_model=cm).remaining([Observation(a, 1.0, {}, "ok", 1.0)]) == 2


@pytest.mark.parametrize(
    "block, match",
    [
        ({"kind": "scales", "cost": {0.5: 0.1}}, "missing a cost for fidelity 1"),
        ({"kind": "scales", "cost": {0.5: "cheap", 1.0: 1}}, "numbers to numbers"),
        ({"kind": "scales", "cost": {0.5: -1, 1.0: 1}}, "positive number of run-equivalents"),
        ({"kind": "scales"}, "needs `cost"),
    ],
)
def test_a_bad_cost_model_is_named(block, match):
    with pytest.raises(ValueError, match=match):
        CostModel.from_card(block).check_levels((0.5, 1.0))
    assert CostModel.from_card(None) is None


@pytest.mark.parametrize("name", ["successive-halving", "hyperband", "bohb-gp"])
def test_multi_fidelity_strategies_use_both_scales_within_budget(name):
    s = suites.load("regmix-1m-to-60m").judge("pool")
    out = Study(s, strategies.get(name), Budget(4), 1, make_runner("replay", s)).run()
    assert out.status == "ok", out.reason
    fids = {t["fidelity"] for t in out.trajectory}
    assert fids == {SMALL, 1.0}, fids
    assert out.cost_used <= 4 + 1e-9
    costs = {t["fidelity"]: t["cost"] for t in out.trajectory}
    assert costs == pytest.approx({SMALL: COST, 1.0: 1.0})
    assert math.isfinite(out.score)


def test_a_strategy_file_in_its_own_process_sees_the_scale_costs(tmp_path):
    """The cost model crosses into a user's strategy process with the budget: 0.1 run-equivalents buy six 1M pilots
    at 1/60 (under the checkpoint rule the level 0.016667 would buy five)."""
    f = tmp_path / "small_only.py"
    f.write_text("""
from harness.spec import Proposal
from strategies.base import Strategy


class SmallOnly(Strategy):
    name = "small-only"

    def propose(self, history, budget):
        if budget.cost_model is None:
            raise RuntimeError("no cost model in the budget")
        small = self.space.fidelities[0]
        if budget.remaining(history) + 1e-9 < budget.cost_model.charge(None, small):
            return None
        return Proposal(self.space.candidate_mixtures()[len(history)], small)
""")
    name = submission.load_file(f)[0]
    s = suites.load("regmix-1m-to-60m").judge("pool")
    out = Study(s, strategies.get(name), Budget(0.1), 0, make_runner("replay", s)).run()
    assert out.status == "ok", out.reason
    assert out.runs_used == 6 and out.cost_used == pytest.approx(0.1)


def test_a_card_whose_cost_model_misses_a_level_is_refused_at_load(tmp_path):
    import shutil

    from harness.suites.errors import SuiteError

    dest = tmp_path / "two"
    shutil.copytree(suites.registered()["regmix-1m-to-60m"], dest)
    card = yaml.safe_load((dest / "card.yaml").read_text())
    card["cost_model"]["cost"] = {1.0: 1.0}
    (dest / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    with pytest.raises(SuiteError, match="is missing a cost for fidelity 0.016667"):
        suites.load(str(dest))
