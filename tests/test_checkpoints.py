"""Checkpoint evaluations (protocol `eval_checkpoints`, issue 16): a run's policy scored at 25% and 50%
of its steps beside the final evaluation, without changing what training does."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness import suites
from harness.spec import RunResult, RunSpec, fidelity_key
from harness.store import ResultStore

ROOT = Path(__file__).resolve().parent.parent
POOL = "minimodo-pool-live"


def test_pool_protocol_is_a_new_version_with_the_training_of_the_p_correct_protocol():
    pytest.importorskip("trl")
    from harness.runners.cpu import protocol_config

    pool, v3, v2 = (suites.load(n) for n in (POOL, "minimodo-tiny-p-live", "minimodo-tiny-live"))
    assert pool.card["protocol_version"] > v3.card["protocol_version"] > v2.card["protocol_version"]
    assert len({pool.protocol, v3.protocol, v2.protocol}) == 3  # no store mixes their runs
    assert len({pool.id, v3.id, v2.id}) == 3
    cfg, cfg3 = protocol_config(pool), protocol_config(v3)
    assert cfg.eval_checkpoints == (0.25, 0.5) and cfg.eval_p_correct and cfg.base.name == "tiny-h64-cur"
    assert cfg.checkpoint_steps() == {0.25: 50, 0.5: 100}
    # everything but the checkpoints is v3's protocol, so the final scores must reproduce v3's runs
    assert dataclasses.replace(cfg, eval_checkpoints=()) == cfg3
    assert cfg.fingerprint() != cfg3.fingerprint()
    assert cfg3.fingerprint() == "dae7a58b96b064b4"  # what v3's stored runs recorded: unchanged by the new field


def test_checkpoint_config_is_validated():
    pytest.importorskip("trl")
    from harness.training.config import ProtocolConfig

    for bad in ([0.5, 0.25], [0.0], [1.0], [0.5, 0.5]):
        with pytest.raises(ValueError, match="eval_checkpoints"):
            ProtocolConfig.from_dict({"preset": "smoke", "eval_checkpoints": bad})
    cfg = ProtocolConfig.from_dict({"preset": "smoke", "steps": 2, "eval_checkpoints": [0.25, 0.5]})
    assert cfg.checkpoint_steps() == {0.25: 1, 0.5: 1}


def test_checkpoint_evaluation_restores_rng_and_mode(monkeypatch):
    """Even an evaluation that draws random numbers (greedy decoding does not, but a future one
    might) leaves the training RNG streams and the model's mode as they were."""
    pytest.importorskip("trl")
    import torch

    from harness.training import run
    from harness.training.config import ProtocolConfig

    def noisy_eval(model, processor, cfg, source=None):
        model.eval()
        torch.rand(5), np.random.rand(5), random.random()
        return {"Out_Score": 0.5}, {"counting": 1.0}

    monkeypatch.setattr(run, "evaluate_model", noisy_eval)
    cfg = ProtocolConfig.from_dict({"preset": "smoke", "steps": 8, "eval_checkpoints": [0.25, 0.5]})
    ck = run.CheckpointEvaluation(cfg, processor=None, source=None)
    model = torch.nn.Linear(2, 2)
    model.train()
    state = type("State", (), {"global_step": 1})()
    for step in range(1, 9):
        state.global_step = step
        before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
        ck.callback.on_step_end(None, state, "control", model=model)
        assert torch.equal(torch.get_rng_state(), before[0])
        assert np.array_equal(np.random.get_state()[1], before[1]) and random.getstate() == before[2]
        assert model.training
    assert sorted(ck.results) == [0.25, 0.5]
    assert [ck.results[f]["step"] for f in (0.25, 0.5)] == [2, 4]


def test_run_result_checkpoints_are_additive_and_round_trip(tmp_path):
    s = suites.load("synth-bowl-5")
    spec = RunSpec(s.id, s.protocol, s.space.uniform(), 0)
    plain = RunResult(spec.key, spec.to_dict(), "ok", {"score": 0.5}, "score")
    assert "checkpoints" not in plain.to_dict()  # records without checkpoints are written as before
    assert RunResult.from_dict(plain.to_dict()) == plain
    assert plain.scores_at(1.0) == {"score": 0.5} and plain.scores_at(0.5) is None
    ck = {fidelity_key(0.25): {"score": 0.1}, fidelity_key(0.5): {"score": 0.3}, fidelity_key(1.0): {"score": 0.5}}
    assert list(ck) == ["0.25", "0.5", "1.0"]
    full = dataclasses.replace(plain, checkpoints=ck)
    store = ResultStore(tmp_path / "store")
    store.put(full)
    back = store.get(spec.key)
    assert back == full and back.scores_at(0.25) == {"score": 0.1} and back.scores_at(0.75) is None


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return os.environ.get("MODOMODO_CACHE") or str(tmp_path_factory.mktemp("modomodo-cache"))


def _smoke_suite(folder: Path, **overrides):
    card = yaml.safe_load((ROOT / "baselines" / POOL / "card.yaml").read_text())
    card["name"] = folder.name
    card["protocol_config"] = {"preset": "smoke", "steps": 8, "eval_p_correct": True, **overrides}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return suites.load(folder)


@pytest.mark.slow
def test_checkpoints_on_a_short_real_run_are_recorded_and_leave_training_unchanged(tmp_path, cache, monkeypatch):
    """A real 8-step GRPO run with checkpoints at steps 2 and 4, and the same run without: the final
    scores and the reward log are identical (the evaluations do not touch the training trajectory),
    and the RunResult holds three fidelities, each with greedy and p_correct scores."""
    pytest.importorskip("trl")
    from harness.runners.cpu import CpuRunner

    monkeypatch.setenv("MODOMODO_CACHE", cache)
    results = {}
    for label, extra in (("with", {"eval_checkpoints": [0.25, 0.5]}), ("without", {})):
        s = _smoke_suite(tmp_path / f"smoke-{label}", **extra)
        spec = RunSpec(s.id, s.protocol, s.space.mixture({"science": 0.5, "spatial": 0.5}), 3)
        results[label] = CpuRunner(s).run(spec)
        assert results[label].ok, results[label].reason
    w, wo = results["with"], results["without"]
    assert w.scores == wo.scores  # greedy, p_correct, format and train/ reward log: bit for bit
    assert wo.checkpoints == {} and "checkpoints" not in wo.to_dict()
    assert list(w.checkpoints) == ["0.25", "0.5", "1.0"]
    assert w.provenance["checkpoint_steps"] == {"0.25": 2, "0.5": 4, "1.0": 8}
    for f, sc in w.checkpoints.items():
        for k in ("In_Score", "Out_Score", "In_Score_p", "Out_Score_p", "p_correct_counting", "format/counting"):
            assert 0.0 <= sc[k] <= 1.0, (f, k)
        assert not any(k.startswith("train/") for k in sc)
    assert w.checkpoints["1.0"] == {k: v for k, v in w.scores.items() if not k.startswith("train/")}
    assert w.cost["t_eval_checkpoints"] > 0 and "t_eval_checkpoints" not in wo.cost
    assert RunResult.from_dict(w.to_dict()) == w


def test_stored_pool_runs_reproduce_the_stored_p_correct_runs_to_the_bit():
    """The pool design starts with minimodo-tiny-p's 24 mixtures, swept there at seeds 0-19 without
    checkpoints: every pool run of such a (mixture, seed) must give exactly those final scores (and
    reward log), or the checkpoint evaluations changed the training trajectory."""
    pool, v3 = suites.load(POOL), suites.load("minimodo-tiny-p-live")
    sweeps = suites.BASELINES_DIR / "sweeps"
    ref = {
        (r.spec["seed"], pool.space.mixture(r.spec["mixture"]).key()): r.scores
        for r in ResultStore(sweeps / "minimodo-tiny-p-live").results()
        if r.spec["protocol"] == v3.protocol
    }
    pairs = [
        (r, ref.get((r.spec["seed"], pool.space.mixture(r.spec["mixture"]).key())))
        for r in ResultStore(sweeps / POOL).results()
        if r.spec["protocol"] == pool.protocol
    ]
    pairs = [(r, sc) for r, sc in pairs if sc is not None]
    if not pairs:
        pytest.skip("no pool run shares a (mixture, seed) with minimodo-tiny-p-live yet")
    for r, scores in pairs:
        assert r.scores == scores, r.spec
        assert set(r.checkpoints) == {"0.25", "0.5", "1.0"} and "Out_Score_p" in r.checkpoints["0.25"]
