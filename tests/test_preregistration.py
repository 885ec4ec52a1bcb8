"""Issue 27, item 3: the four new RLVR suites are pre-registered before their first run.

Each live card carries `preregistration` (timestamp, objective, rankability rule, design, commands); its
design is fixed in design.json beside its store, made for this very card (its protocol hash covers the
card's content, so editing a registered card's fields breaks the match); the export carries the block on."""

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness import suites
from harness.spec import RunResult
from harness.store import ResultStore
from harness.factory.sweep import load_design, plan
from harness.suites.signal import SNR_TARGET

ROOT = Path(__file__).resolve().parent.parent
NEW = {
    "minimodo-idf-live": ("idefics3", 5),
    "minimodo8-live": ("qwen2vl", 8),
    "minimodo8-h128-live": ("qwen2vl", 8),
    "minimodo8-idf-live": ("idefics3", 8),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_card_is_preregistered_with_a_fixed_design(name):
    s = suites.load(name)
    pre = s.card["preregistration"]
    when = datetime.fromisoformat(pre["preregistered"].replace("Z", "+00:00"))
    assert when.year >= 2026 and pre["objective"] == s.metric == "In_Score_p"
    assert f">= {SNR_TARGET:g}" in " ".join(pre["rankability_rule"].split())
    store = ROOT / "baselines" / "sweeps" / name
    mixtures, seeds, record = load_design(store / "design.json", s)  # raises if made for another card
    assert len(mixtures) >= 48 and list(seeds) == list(range(6)) and record["runs"] == len(mixtures) * 6
    labels = [m["label"] for m in record["mixtures"]]
    assert labels[0] == "uniform" and {lab.split("#")[0] for lab in labels if lab.startswith("dirichlet")} == {
        "dirichlet(1)",
        "dirichlet(0.3)",
        "dirichlet(3)",
        "dirichlet(10)",
    }
    assert len({m.key() for m in mixtures}) == len(mixtures)
    assert any(f"--design baselines/sweeps/{name}/design.json" in c for c in pre["commands"])
    # no run was recorded before the registration was committed: every stored run is of this protocol
    for r in ResultStore(store).results():
        assert r.spec["protocol"] == s.protocol
    from harness.runners.cpu import protocol_config

    cfg = protocol_config(s)
    family, n = NEW[name]
    assert cfg.base.family == family and len(cfg.train_domains) == n and cfg.eval_checkpoints == (0.25, 0.5)


def test_export_carries_the_preregistration_on(tmp_path):
    from harness.factory.export import export_suite

    card = yaml.safe_load((ROOT / "baselines" / "minimodo-idf-live" / "card.yaml").read_text())
    card["name"] = "fake-idf-live"
    (tmp_path / "fake-idf-live").mkdir()
    (tmp_path / "fake-idf-live" / "card.yaml").write_text(yaml.safe_dump(card))
    s = suites.load(tmp_path / "fake-idf-live")
    mixtures = load_design(
        ROOT / "baselines" / "sweeps" / "minimodo-idf-live" / "design.json", suites.load("minimodo-idf-live")
    )[0][:12]
    store = ResultStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    for spec in plan(s, mixtures, range(3)):  # planted scores: the export path only
        v = float(rng.uniform(0.2, 0.8))
        scores = {c: v for c in s.card["score_columns"]}
        store.put(
            RunResult(
                spec.key,
                spec.to_dict(),
                "ok",
                scores,
                s.metric,
                "trained",
                {"seconds": 60.0},
                provenance={"versions": {"torch": "2.13.0", "transformers": "5.17.0", "trl": "1.16.0"}},
            )
        )
    folder = export_suite(store, s, "fake-idf", tmp_path / "fake-idf")
    out = yaml.safe_load((folder / "card.yaml").read_text())
    assert out["preregistration"] == card["preregistration"] and out["metric"] == "In_Score_p"
