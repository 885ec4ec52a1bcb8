"""Pilots cost what they cost (issue 28 item 4): the card's measured `cost_model`, charged by the judge.

Expected values are computed by hand from the formula on the card
((f - f0) * train_seconds + eval_seconds) / (train_seconds + eval_seconds), or from the stored runs'
own cost fields (for the shipped minimodo-pool card)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import strategies
from harness import suites
from harness.runners import make_runner
from harness.sandbox.protocol import plain_budget
from harness.spec import Budget, CostModel, Observation, pilot_cost, spent
from harness.studies.study import Study
from harness.suites.errors import SuiteError
from tests.benchmarks.fidelity_table import make_fidelity_suite
from tests.test_fidelity_replay import scripted

T, E = 30.0, 10.0  # a run trains 30 s and each evaluation takes 10 s: a new run to 0.25 costs (7.5 + 10) / 40


@pytest.fixture(scope="module")
def priced(tmp_path_factory):
    folder = make_fidelity_suite(tmp_path_factory.mktemp("priced"), n_mix=24, seeds=4, name="priced")
    card = yaml.safe_load((folder / "card.yaml").read_text())
    card["cost_model"] = {"kind": "checkpoints", "train_seconds": T, "eval_seconds": E, "source": "test: by hand"}
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return folder


def test_charges_by_hand():
    cm = CostModel("checkpoints", T, E)
    assert cm.charge(None, 0.25) == pytest.approx(17.5 / 40)
    assert cm.charge(0.25, 0.5) == pytest.approx(17.5 / 40)
    assert cm.charge(0.5, 1.0) == pytest.approx(25 / 40)
    assert cm.charge(None, 1.0) == 1.0  # a full run from scratch is the unit
    assert CostModel().charge(0.25, 1.0) == 0.75  # the fraction rule, the default
    sc = CostModel.from_card({"kind": "scales", "cost": {0.05: 0.02, 1.0: 1.0}})
    assert sc.charge(None, 0.05) == 0.02 and not sc.continues


def test_pilot_cost_and_budget_follow_the_model():
    cm = CostModel("checkpoints", T, E)
    space = suites.load("minimodo-pool").judge("pool").space
    m, n = space.candidate_mixtures()[:2]
    h = [Observation(m, 0.1, {}, "ok", 0.25), Observation(m, 0.2, {}, "ok", 0.5)]
    assert pilot_cost(h[:1], m, 0.5, cm) == (pytest.approx(17.5 / 40), True)
    assert pilot_cost(h, n, 0.25, cm) == (pytest.approx(17.5 / 40), False)
    assert spent(h, cm) == pytest.approx(35 / 40)
    b = Budget(2, cost_model=cm)
    assert b.remaining(h) == pytest.approx(2 - 35 / 40)
    assert not b.affords(h + [Observation(n, 0.1, {}, "ok", 1.0)], m, 1.0)  # 2 - 35/40 - 1 < 25/40
    # the price list crosses into a sandboxed strategy's process as plain data and comes back equal
    assert Budget(**{k: v for k, v in plain_budget(b).items()}).cost_model == cm
    assert json.loads(json.dumps(plain_budget(b)))["cost_model"]["kind"] == "checkpoints"


def test_bad_cost_models_are_refused_with_the_bad_value():
    with pytest.raises(ValueError, match="kind 'hourly'.*valid: fraction, checkpoints, scales"):
        CostModel.from_card({"kind": "hourly"})
    with pytest.raises(ValueError, match="train_seconds must be a non-negative number.*'fast'"):
        CostModel.from_card({"kind": "checkpoints", "train_seconds": "fast", "eval_seconds": 1})
    with pytest.raises(ValueError, match="kind scales needs"):
        CostModel.from_card({"kind": "scales"})


def test_the_study_charges_the_cards_measured_price(priced):
    judge = suites.load(priced).judge("pool")
    assert judge.cost_model == CostModel("checkpoints", T, E, source="test: by hand")
    plan = [(0, 0.25), (0, 0.5), (0, 1.0), (1, 1.0)]
    out = Study(judge, scripted(plan), Budget(3), 0, make_runner("replay", judge)).run()
    assert [t["cost"] for t in out.trajectory] == pytest.approx([17.5 / 40, 17.5 / 40, 25 / 40, 1.0])
    assert out.cost_used == pytest.approx(2.5)
    # a caller's own price list does not override the judge's
    cheap = Budget(3, cost_model=CostModel())
    assert Study(judge, scripted(plan), cheap, 0, make_runner("replay", judge)).run().cost_used == pytest.approx(2.5)


def test_successive_halving_stays_within_the_measured_budget(priced):
    """Under the measured price successive halving starts fewer configurations than under the fraction rule,
    and never spends more than its budget."""
    measured = suites.load(priced).judge("pool")
    shutil_folder = Path(str(priced) + "-fraction")
    if not shutil_folder.exists():
        shutil.copytree(priced, shutil_folder)
        card = yaml.safe_load((shutil_folder / "card.yaml").read_text())
        card.pop("cost_model")
        card["name"] = "priced-fraction"
        (shutil_folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    fraction = suites.load(shutil_folder).judge("pool")
    cls = strategies.get("successive-halving")
    started = {}
    for name, judge in (("measured", measured), ("fraction", fraction)):
        out = Study(judge, cls, Budget(8), 0, make_runner("replay", judge)).run()
        assert out.status == "ok" and out.cost_used <= 8 + 1e-9
        started[name] = sum(1 for t in out.trajectory if t["fidelity"] == 0.25)
    assert started["measured"] < started["fraction"]


def test_minimodo_pool_card_states_the_cost_measured_from_its_stored_runs():
    """The card's figures are the means of the 768 stored runs' cost fields, recomputed here from the JSON."""
    card = yaml.safe_load((suites.registered()["minimodo-pool"] / "card.yaml").read_text())
    block = card["cost_model"]
    assert block["kind"] == "checkpoints"
    train, evals, n_evals, runs = [], 0.0, 0, 0
    for path in sorted((suites.BASELINES_DIR / "sweeps" / "minimodo-pool-live" / "runs").glob("*/*.json")):
        r = json.loads(path.read_text())
        if r["status"] != "ok" or r["spec"].get("fidelity", 1.0) != 1.0:
            continue
        runs += 1
        train.append(r["cost"]["t_train"])
        evals += r["cost"]["t_eval"] + r["cost"]["t_eval_checkpoints"]
        n_evals += len(r["checkpoints"])  # 0.25, 0.5 and the final 1.0
    assert runs == 768
    assert block["train_seconds"] == pytest.approx(np.mean(train), abs=1e-3)
    assert block["eval_seconds"] == pytest.approx(evals / n_evals, abs=1e-3)
    judge = suites.load("minimodo-pool").judge("pool")
    quarter = judge.cost_model.charge(None, 0.25)
    assert quarter == pytest.approx(
        (0.25 * np.mean(train) + evals / n_evals) / (np.mean(train) + evals / n_evals), abs=1e-5
    )
    assert 0.37 < quarter < 0.40  # issue 28: "a 0.25 pilot really costs about 0.39 of a run"


def test_a_card_with_a_bad_cost_model_is_a_suite_error(priced, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(priced, bad)
    card = yaml.safe_load((bad / "card.yaml").read_text())
    card["cost_model"]["eval_seconds"] = -1
    (bad / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    with pytest.raises(SuiteError, match="eval_seconds must be a non-negative number.*-1"):
        suites.load(bad).judge("pool").cost_model


def test_a_sandboxed_strategy_is_charged_the_same_price(priced):
    """The cost model crosses into the strategy's own process: successive halving proposes the same pilots
    and spends the same run-equivalents isolated as in-process."""
    judge = suites.load(priced).judge("pool")
    cls = strategies.get("successive-halving")
    runs = [
        Study(judge, cls, Budget(6), 1, make_runner("replay", judge), isolation=iso).run()
        for iso in ("none", "process")
    ]
    assert all(o.status == "ok" for o in runs), [o.reason for o in runs]
    assert [t["run_key"] for t in runs[0].trajectory] == [t["run_key"] for t in runs[1].trajectory]
    assert runs[0].cost_used == runs[1].cost_used <= 6 + 1e-9
    assert any(t["cost"] == pytest.approx(17.5 / 40) for t in runs[1].trajectory)
