"""The bases' content hash (harness/training/build_identity.py): the recorded bases keep theirs across the issue-30
merge of the builders, and any code change that is not proven moves it."""

import json
from pathlib import Path

import pytest

from harness.training import bases, build_identity
from harness.training.config import BASE_MODELS

ROOT = Path(__file__).resolve().parent.parent
# the cache folders the recorded runs' bases were built into (name-hash), before the builders were merged: the
# base_model label of the recorded runs names these hashes (e.g. the pool sweep's tiny-h64-cur@91579a0339b267a0)
RECORDED = {
    "tiny-h64": "a7badbd7c20b8142",
    "tiny-h64-cur": "91579a0339b267a0",
    "tiny-h128-cur": "a5d93331a504b12c",
    "tiny-idf64-cur": "d5f42eaec37541b2",
    "tiny-idf64-8cur": "e06537f0e8eb479a",
    "tiny-h64-8cur": "233aad47aa6fc76f",
    "tiny-h128-8cur": "74b2833d5bd662ce",
}


def _recorded_versions_here() -> bool:
    from harness.provenance import package_version

    runs = sorted((ROOT / "baselines" / "sweeps" / "minimodo-pool-live" / "runs").glob("*/*.json"))
    if not runs:
        return False
    prov = json.loads(runs[0].read_text())["provenance"]
    return all(str(package_version(p)) == prov["versions"][p] for p in ("torch", "transformers"))


@pytest.fixture
def recorded_versions():
    if not _recorded_versions_here():
        pytest.skip("package versions differ from the recorded ones (the hash covers them)")


def test_every_recorded_base_keeps_its_hash(recorded_versions, tmp_path, monkeypatch):
    monkeypatch.setenv("MODOMODO_CACHE", str(tmp_path))
    for name, recorded in RECORDED.items():
        assert bases.base_dir(BASE_MODELS[name]) == tmp_path / "models" / f"{name}-{recorded}", name


def test_an_unproven_change_to_the_builder_moves_the_hash(recorded_versions, monkeypatch):
    monkeypatch.setattr(build_identity, "PROVEN", {})
    for name, recorded in RECORDED.items():
        assert bases.base_hash(BASE_MODELS[name]) != recorded, name


def test_the_code_key_ignores_comments_docstrings_and_layout_but_not_code(tmp_path, monkeypatch):
    monkeypatch.setattr(build_identity, "ROOT", tmp_path)
    (tmp_path / "m.py").write_text('"""Doc."""\n\ndef f(x):\n    """Say."""\n    return x + 1  # one\n')
    key = build_identity.code_key(("m.py",))
    (tmp_path / "m.py").write_text('"""Other doc."""\n# a comment\ndef f(x):\n\n    return (x\n            + 1)\n')
    assert build_identity.code_key(("m.py",)) == key
    (tmp_path / "m.py").write_text("def f(x):\n    return x + 2\n")
    assert build_identity.code_key(("m.py",)) != key
    (tmp_path / "n.py").write_text("def f(x):\n    return x + 1\n")
    assert build_identity.code_key(("n.py",)) != key  # the file's name is part of the key


def test_a_proven_set_hashes_the_recorded_digests_and_an_unproven_one_its_own(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setattr(build_identity, "ROOT", tmp_path)
    (tmp_path / "m.py").write_text("X = 1\n")
    own = hashlib.sha256(b"X = 1\n").digest()
    assert build_identity.recipe_sources(("m.py",)) == (("m.py",), [own])
    monkeypatch.setattr(build_identity, "PROVEN", {build_identity.code_key(("m.py",)): (("old.py",), ("ab" * 32,))})
    assert build_identity.recipe_sources(("m.py",)) == (("old.py",), [bytes.fromhex("ab" * 32)])


def test_the_gpu_toy_assets_keep_their_folder(recorded_versions, tmp_path, monkeypatch):
    """The paper-protocol-tiny assets' folder as it was built before the builder moved from harness/runners/ to
    harness/training/assets.py (proven with scripts/prove_base_identity.py assets)."""
    from harness.training import assets

    monkeypatch.setenv("MODOMODO_CACHE", str(tmp_path))
    assert assets.assets_dir("paper-protocol-tiny") == tmp_path / "assets" / "paper-protocol-tiny-0191cb796eca78ec"
    monkeypatch.setattr(build_identity, "PROVEN", {})
    assert assets.assets_hash("paper-protocol-tiny") != "0191cb796eca78ec"  # unproven code moves it
