"""Which code built a cached base model (or the GPU toy assets): the source part of their content hash.

A base's folder is `models/<name>-<hash>`, and the hash covers the config, the library versions and
the sha256 of each source file of the code that builds it, so an edit to that code rebuilds the base.
The recorded suites' runs name their base by that hash (`base_model: tiny-h64-cur@91579a0339b267a0`),
and a changed hash means a rebuilt base whose runs no longer match the recorded ones.

Code is sometimes reorganised without changing what it builds (issue 30 merged the three copies of the
warm-up loop and the cached build). Such a change is proven by building the bases with the old code
and with the new one and comparing them tensor by tensor (scripts/prove_base_identity.py); the
proven source set is then entered in PROVEN with the recorded digests it stands for, and keeps the
recorded hash. `recipe_sources(sources)` gives the digests to hash: the recorded ones when the
sources, read as code (their syntax tree: comments, docstrings and layout left out, so a formatter
pass keeps the proof), are a proven set; else the files' own sha256, exactly as before, so any edit
that is not proven moves the hash and rebuilds. The code key depends on the Python version's syntax
tree; on another version a proven set is not recognised and the bases are simply rebuilt.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# code key of a proven source set -> (the source files the recorded hash named, their sha256 then).
# Issue 30 (one warm-up loop, one cached build, one Qwen2-VL builder), proven against commit 413353d with
# scripts/prove_base_identity.py (one thread; torch 2.13 CPU): tiny-h64 (five-domain Qwen2-VL), tiny-idf64-cur
# (Idefics3), tiny-h64-8cur (eight-domain Qwen2-VL) and the paper-protocol-tiny assets built identical, every
# tensor and file, in the same cache folders.
_MODEL_PY = "629fbdf81d4ea22d0457fc2fa850258aeed7128fd58029ba6fc32d8205650cd2"
_BASES_PY = "5e55690ffc000f05d5f553b622f683069eea48e85a459ab7d9ef314576ba965b"
_MINIMODO = "090b2ee0d1b75d4f141d21c8c20e891259bfb40ed9e079bb3cf6bb495cf567d6"
_MINIMODO8 = "ea793dfaff988013a30b3bda998186e33a94834acb53a5a3427f81e12b577f46"
_PROMPTS = "487bd759fbd650b479a1355039718d4b6a6e1160ddb1c05440acc7707f55fd5d"
_FAMILY_QWEN2VL = "b91098932c88979304d60721bab80ece032ae5df853e12ae3b5bbf59342987cc"
_FAMILY_IDEFICS3 = "0e9257e4bd7bcdb629e23a72ee69153ede875159875396a449d2caedecb226f3"
_GPU_ASSETS = "ed8fdf5bf5f61180a7b2ca6fb3611101ea32357aa6d1515f565beb5c78c5a386"
_PAPER_TINY = "93a21a2dfec86d4761aea5bf3149a1d2bff8373aa57826e54ccb49a25af42f45"
_PAPER_DATASETS = "57d69d4bbb3e90c3ad3f36b98d9a10da3a7fa446fe5cd66cc6208b778628a96d"
_BASES_SOURCES = ("harness/training/bases.py", "tasks/minimodo.py", "tasks/minimodo8.py", "tasks/prompts.py")
PROVEN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # the five-domain Qwen2-VL bases (tiny-h64, tiny-h64-cur, tiny-h128-cur)
    "04f42c6f33af106c": (
        ("harness/training/model.py", "tasks/minimodo.py", "tasks/prompts.py"),
        (_MODEL_PY, _MINIMODO, _PROMPTS),
    ),
    # the Idefics3 bases (tiny-idf64-cur, tiny-idf64-8cur)
    "02cfdefa7e88d21e": (
        (*_BASES_SOURCES, "harness/training/family_idefics3.py"),
        (_BASES_PY, _MINIMODO, _MINIMODO8, _PROMPTS, _FAMILY_IDEFICS3),
    ),
    # the eight-domain Qwen2-VL bases (tiny-h64-8cur, tiny-h128-8cur)
    "3bd540b9e0536bde": (
        (*_BASES_SOURCES, "harness/training/family_qwen2vl.py"),
        (_BASES_PY, _MINIMODO, _MINIMODO8, _PROMPTS, _FAMILY_QWEN2VL),
    ),
    # the GPU toy protocol's assets (paper-protocol-tiny); the builder moved from harness/runners/gpu_assets.py to
    # harness/training/assets.py (issue 30: protocol.py names the builders, and runners sit above protocols),
    # proven against commit d923051 (same cache folder, every tensor and file identical)
    "55685abfe79250af": (
        (
            "harness/runners/gpu_assets.py",
            "tasks/paper_tiny.py",
            "tasks/minimodo.py",
            "tasks/prompts.py",
            "tasks/paper_datasets.py",
            "harness/training/model.py",
        ),
        (_GPU_ASSETS, _PAPER_TINY, _MINIMODO, _PROMPTS, _PAPER_DATASETS, _MODEL_PY),
    ),
}


def code_digest(path: str) -> str:
    """sha256 of a Python file read as code: its syntax tree without docstrings (comments and layout
    are not in the tree)."""
    tree = ast.parse((ROOT / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def code_key(sources: tuple[str, ...]) -> str:
    """The identity of a source set as code (names and syntax trees, in order)."""
    h = hashlib.sha256()
    for s in sources:
        h.update(f"{s}\0{code_digest(s)}\n".encode())
    return h.hexdigest()[:16]


def recipe_sources(sources: tuple[str, ...]) -> tuple[tuple[str, ...], list[bytes]]:
    """(source names, their sha256 digests) to hash for code that spans `sources`: the recorded ones when
    this set is proven to build what they built, else the files' own."""
    proven = PROVEN.get(code_key(sources))
    if proven is not None:
        names, digests = proven
        return names, [bytes.fromhex(d) for d in digests]
    return tuple(sources), [hashlib.sha256((ROOT / s).read_bytes()).digest() for s in sources]
