"""One run identity for the GPU protocol (harness/runners/gpu_identity.py): the protocol file's hash, GPU count
included, keys every run and study; it travels as an argument; `suite from-sweep` refuses a mixed store."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import pytest
import yaml
from click.testing import CliRunner

from harness import suites
from harness.fingerprint import study_key
from harness.cli import main
from harness.protocols.gpu import load_protocol, registered
from harness.runners.gpu import GpuRunner
from harness.runners.gpu_identity import bind_protocol, run_identity
from harness.spec import RunResult, RunSpec, canonical_json
from harness.store import ResultStore

PAPER_MIX = "COCO=0.2,LISA=0.2,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2"


def _variant(tmp_path, name, **slurm):
    data = yaml.safe_load(registered()["paper-qwen2vl-2b"].read_text())
    data["slurm"].update(slurm)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _key(suite, mix="SAT=1", seed=0):
    return RunSpec(suite.id, suite.protocol, suite.space.parse(mix), seed).key


def test_the_protocol_file_and_its_gpu_count_enter_the_run_key(tmp_path):
    paper = suites.load("paper-qwen2vl-2b")
    a = bind_protocol(paper, "gpu", registered()["paper-qwen2vl-2b"])
    same_content = bind_protocol(paper, "gpu", _variant(tmp_path, "copy"))
    seven_gpus = bind_protocol(paper, "gpu", _variant(tmp_path, "seven", gpus_per_node=7))
    other_model = bind_protocol(paper, "gpu", registered()["qwen25vl-3b"])
    # 4 GPUs (3 train) give 2 prompts per update, 7 GPUs (6 train) give 4: another experiment
    assert (a.gpu_protocol.prompts_per_update, seven_gpus.gpu_protocol.prompts_per_update) == (2, 4)
    assert _key(a) == _key(same_content)  # where the file lives does not matter, its content does
    assert len({_key(a), _key(seven_gpus), _key(other_model), _key(paper)}) == 4
    # the key is the sha256 of the spec's identity, with the protocol hash inside it (computed here by hand)
    ident = {
        "suite": paper.id,
        "protocol": f"{paper.protocol}+gpu:{a.gpu_protocol.hash}",
        "mixture": [[n, w] for n, w in paper.space.parse("SAT=1").key()],
        "seed": 0,
        "fidelity": 1.0,
    }
    assert _key(a) == hashlib.sha256(canonical_json(ident).encode()).hexdigest()


def test_other_runner_kinds_keep_their_keys():
    live = suites.load("minimodo-tiny-live")
    assert bind_protocol(live, "cpu") is live and bind_protocol(live, "replay") is live


def test_the_study_key_names_the_protocol(tmp_path):
    import strategies

    paper = suites.load("paper-qwen2vl-2b")
    keys = {
        study_key(
            bind_protocol(paper, "gpu", registered()[n]).judge(None),
            strategies.get("random"),
            runner="gpu",
            strategy="random",
            budget=4,
            seed=0,
        )
        for n in ("paper-qwen2vl-2b", "qwen25vl-3b")
    }
    assert len(keys) == 2


def test_dry_run_prints_the_run_key_and_passes_no_environment_variable(tmp_path):
    before = dict(os.environ)
    seven = _variant(tmp_path, "seven", gpus_per_node=7)
    out = CliRunner().invoke(
        main,
        [
            "run",
            "--suite",
            "paper-qwen2vl-2b",
            "--mixture",
            PAPER_MIX,
            "--runner",
            "gpu",
            "--dry-run",
            "--protocol-file",
            str(seven),
        ],
    )
    assert out.exit_code == 0, out.output
    paper = suites.load("paper-qwen2vl-2b")
    proto = load_protocol(seven)
    expected = RunSpec(paper.id, run_identity(paper.protocol, proto), paper.space.parse(PAPER_MIX), 0).key
    assert f"# run key {expected}" in out.output
    default = CliRunner().invoke(
        main, ["run", "--suite", "paper-qwen2vl-2b", "--mixture", PAPER_MIX, "--runner", "gpu", "--dry-run"]
    )
    assert expected not in default.output and "# run key " in default.output
    # the protocol travels as an argument: no variable names it (torch's import sets a few of its own)
    assert not {k: v for k, v in os.environ.items() if k not in before and ("seven" in v or "PROTOCOL" in k)}


def test_the_runner_refuses_a_spec_keyed_for_another_protocol():
    paper = suites.load("paper-qwen2vl-2b")
    runner = GpuRunner(bind_protocol(paper, "gpu", "qwen25vl-3b"))
    wrong = bind_protocol(paper, "gpu", "paper-qwen2vl-2b")
    with pytest.raises(ValueError, match="keyed for protocol"):
        runner.run(RunSpec(wrong.id, wrong.protocol, wrong.space.parse("SAT=1"), 0))


def _stored(store, suite, protocol, seed, mix="SAT=1"):
    spec = RunSpec(suite.id, protocol, suite.space.parse(mix), seed)
    score = 0.5 + 0.1 * seed + (0.2 if mix == "SAT=1" else 0.0)
    store.put(RunResult(spec.key, spec.to_dict(), "ok", {"Out_Score": score, "In_Score": 0.4}, "Out_Score", "trained"))


def test_from_sweep_refuses_a_store_that_mixes_protocols(tmp_path):
    tiny = suites.load("paper-protocol-tiny")
    a = bind_protocol(tiny, "gpu").protocol
    b = bind_protocol(tiny, "gpu", _tiny_variant(tmp_path)).protocol
    assert a != b
    store = ResultStore(tmp_path / "store")
    for seed in (0, 1):
        for mix in ("SAT=1", "LISA=1"):
            _stored(store, tiny, a, seed, mix)
    out = CliRunner().invoke(
        main, ["suite", "from-sweep", "--store", str(tmp_path / "store"), "--suite", "paper-protocol-tiny", "--check"]
    )
    assert out.exit_code == 0, out.output  # one protocol: accepted, its runs found
    assert "4 runs" in out.output
    _stored(store, tiny, b, 2)
    out = CliRunner().invoke(
        main, ["suite", "from-sweep", "--store", str(tmp_path / "store"), "--suite", "paper-protocol-tiny", "--check"]
    )
    assert out.exit_code == 2 and "mixes runs" in out.output and a in out.output and b in out.output


def _tiny_variant(tmp_path):
    data = yaml.safe_load(registered()["paper-protocol-tiny"].read_text())
    data["training"]["max_steps"] = 5
    path = tmp_path / "tiny5.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_pilot_job_binds_the_protocol_it_is_handed(tmp_path):
    """A job rebuilds the runner from the task's protocol_file argument (no environment variable)."""
    from harness.runners.slurm import PilotRunTask, run_pilot

    paper = suites.load("paper-qwen2vl-2b")
    bound = bind_protocol(paper, "gpu", "qwen25vl-3b")
    spec = RunSpec(bound.id, bound.protocol, bound.space.parse("SAT=1"), 0)
    store = ResultStore(tmp_path / "s")
    result = RunResult(spec.key, spec.to_dict(), "ok", {"Out_Score": 0.1}, "Out_Score", "trained")
    store.put(result)  # a requeued job finds its result under the key that names the protocol
    got = run_pilot(
        PilotRunTask("gpu", str(paper.path), spec.to_dict(), str(store.root), str(registered()["qwen25vl-3b"]))
    )
    assert got["key"] == spec.key
    assert json.loads(json.dumps(got))["scores"] == {"Out_Score": 0.1}
    assert dataclasses.is_dataclass(bound.gpu_protocol)
