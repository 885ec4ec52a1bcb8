"""The field machinery both kinds of protocol share (harness/protocols/fields.py): strict coercion with
one-line errors, fingerprints that leave labels and neutral fields out, and describe."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from harness.protocols.gpu import GpuProtocol, JobResources, load_protocol, registered
from harness.protocols.fields import ProtocolError, build, describe, fingerprint, result_fields, setting
from harness.training.config import PRESETS, ProtocolConfig


@dataclasses.dataclass(frozen=True)
class Inner:
    rate: float = setting(0.5, "a rate")
    name: str = setting("x", "a label", label=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outer:
    steps: int = setting(3, "steps")
    inner: Inner = setting(Inner(), "nested")
    sets: tuple = setting(("a",), "names")
    later: bool = setting(False, "added later", neutral=False)
    needed: str = setting(help="required")


def test_build_coerces_strictly_and_names_the_key():
    built = build(Outer, {"steps": 4, "inner": {"rate": 2}, "sets": ["a", "b"], "needed": "y"})
    assert built == Outer(steps=4, inner=Inner(rate=2.0), sets=("a", "b"), needed="y")
    assert isinstance(built.inner.rate, float)  # YAML's 2 where a float goes
    cases = [
        ({"steps": "4", "needed": "y"}, "steps must be an integer, got '4'"),
        ({"steps": True, "needed": "y"}, "steps must be an integer, got True"),
        ({"inner": {"rate": "0.1"}, "needed": "y"}, "inner.rate must be a number, got '0.1'"),
        ({"inner": {"rat": 1}, "needed": "y"}, "unknown setting inner.rat; did you mean 'rate'?"),
        ({"sets": "a", "needed": "y"}, "sets must be a list"),
        ({}, "missing setting(s): needed: required"),
    ]
    for data, message in cases:
        with pytest.raises(ProtocolError) as e:
            build(Outer, data)
        assert message in str(e.value), (data, str(e.value))


def test_build_over_a_start_overrides_only_what_is_given():
    start = Outer(steps=9, needed="n")
    assert build(Outer, {"inner": {"rate": 1}}, start=start) == Outer(steps=9, inner=Inner(rate=1.0), needed="n")


def test_fingerprint_leaves_labels_and_neutral_values_out():
    a = Outer(needed="y")
    assert result_fields(a) == {"steps": 3, "inner": {"rate": 0.5}, "sets": ("a",), "needed": "y"}
    assert result_fields(dataclasses.replace(a, later=True))["later"] is True
    assert result_fields(a, labels=True)["inner"] == {"rate": 0.5, "name": "x"}
    # independent of the code under test: the JSON written out by hand
    by_hand = '{"inner":{"rate":0.5},"needed":"y","sets":["a"],"steps":3}'
    assert fingerprint(result_fields(a)) == hashlib.sha256(by_hand.encode()).hexdigest()[:16]
    spaced = '{"inner": {"rate": 0.5}, "needed": "y", "sets": ["a"], "steps": 3}'
    assert fingerprint(result_fields(a), compact=False) == hashlib.sha256(spaced.encode()).hexdigest()[:16]


def test_describe_lists_every_setting_with_its_default():
    lines = describe(Outer)
    assert "steps: steps (default 3)" in lines and "  rate: a rate (default 0.5)" in lines
    assert "needed: required (default 'required')" in lines
    assert "inner.rate: a rate (default 0.5)" in describe(Outer, dotted=True)


def test_cpu_preset_fingerprint_is_json_of_its_result_fields():
    """The CPU presets hash as every recorded run's config_fingerprint was made (tests/test_hardening.py checks
    the stored ones): labels in, json's default separators."""
    cfg = PRESETS["tiny"]
    text = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
    d = json.loads(text)
    for f in ("eval_p_correct", "eval_checkpoints"):  # neutral fields at their neutral value
        d.pop(f)
    d["base"].pop("family"), d["base"].pop("task_set")
    assert d["reward_rule"] == "format_kept"
    d.pop("reward_rule")
    assert cfg.fingerprint() == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def test_cpu_card_values_are_coerced_strictly():
    assert ProtocolConfig.from_dict({"preset": "tiny", "beta": 0.15}).beta == 0.15
    assert ProtocolConfig.from_dict({"preset": "tiny", "eval_checkpoints": [0.5]}).eval_checkpoints == (0.5,)
    for bad, message in [
        ({"preset": "tiny", "beta": "0.15"}, "beta must be a number"),
        ({"preset": "tinny"}, "unknown protocol preset 'tinny'"),
        ({"base": {"hiden": 64}}, "unknown setting base.hiden; did you mean 'hidden'?"),
        ({"eval_checkpoints": [1.5]}, "eval_checkpoints must be distinct increasing fractions"),
    ]:
        with pytest.raises(ProtocolError, match=message):
            ProtocolConfig.from_dict(bad)


def test_gpu_hash_ignores_labels_and_counts_the_gpus():
    p = load_protocol("paper-qwen2vl-2b")
    relabelled = dataclasses.replace(
        p,
        name="other",
        description="d",
        citation="c",
        source="/elsewhere.yaml",
        memory=dataclasses.replace(p.memory, gpu_memory_gb=40.0),
        slurm=dataclasses.replace(p.slurm, partition="gpu", timeout_min=5),
        evaluation=dataclasses.replace(p.evaluation, batch_size=2),
        generation=dataclasses.replace(p.generation, vllm_server_port=1234),
    )
    assert relabelled.hash == p.hash
    assert dataclasses.replace(p, training=dataclasses.replace(p.training, beta=0.05)).hash != p.hash
    more = dataclasses.replace(p, slurm=dataclasses.replace(p.slurm, gpus_per_node=p.slurm.gpus_per_node + 3))
    assert more.training_processes == p.training_processes + 3 and more.hash != p.hash


def test_job_resources_belong_to_the_protocol():
    assert GpuProtocol.__dataclass_fields__["slurm"].type in ("JobResources", JobResources)
    with pytest.raises(ProtocolError, match="slurm.nodes must be an integer >= 1, got 0"):
        JobResources(nodes=0)
    for name in registered():
        assert isinstance(load_protocol(name).slurm, JobResources)
