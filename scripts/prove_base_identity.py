"""Prove that a change to the base builders builds the same bases, bit for bit, as an earlier commit.

    python scripts/prove_base_identity.py --keys      # each recipe's code key, and whether it is proven
    python scripts/prove_base_identity.py tiny-h64 tiny-idf64-cur --old HEAD~1 --work /tmp/proof
    .venv-gpu-cpu/bin/python scripts/prove_base_identity.py assets --old HEAD~1 --work /tmp/proof

Each NAME (a preset of harness.training.config.BASE_MODELS, or `assets` for the GPU toy protocol's
folder, which needs the GPU path's environment) is built twice, each in its own process with one
thread: by the code of `--old` (exported with `git archive`) into WORK/cache-old, and by this
working tree into WORK/cache-new (`$MODOMODO_CACHE`; the real cache is never written). Then it
compares the folder names (the content hash), every tensor of the safetensors files (exactly), and
every other file byte for byte, except the timings in base_info.json / assets.json. A folder already
built in WORK is reused. Exit status 1 when anything differs. Once proven, the new source set goes
into harness.training.build_identity.PROVEN (`--keys` prints its code key), so the bases keep their
hash. (The listing lives here, not in build_identity, which the builders import: listing the recipes
imports the builders, and build_identity importing them back was an import circle.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = """
import sys
name = sys.argv[1]
if name == "assets":
    try:
        from harness.training.assets import ensure_assets
    except ModuleNotFoundError:  # code from before issue 30 moved the builder out of harness/runners/
        from harness.runners.gpu_assets import ensure_assets
    print(ensure_assets("paper-protocol-tiny"))
else:
    from harness.training import bases
    from harness.training.config import BASE_MODELS
    print(bases.ensure_base(BASE_MODELS[name]))
"""
TIMINGS = {"build_s", "warmup_s", "model_s", "data_s"}


def build(code: Path, cache: Path, name: str) -> Path:
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "MODOMODO_CACHE": str(cache),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    out = subprocess.run([sys.executable, "-c", BUILD, name], cwd=code, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"building {name} with {code} failed:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def compare(old: Path, new: Path) -> list[str]:
    """The differences between two built folders (empty: identical)."""
    from safetensors.torch import load_file

    diffs = [] if old.name == new.name else [f"folder (content hash): {old.name} != {new.name}"]
    files = sorted(
        {p.relative_to(old) for p in old.rglob("*") if p.is_file()}
        | {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    )
    for rel in files:
        a, b = old / rel, new / rel
        if not (a.is_file() and b.is_file()):
            diffs.append(f"{rel}: only in {'old' if a.is_file() else 'new'}")
        elif rel.suffix == ".safetensors":
            ta, tb = load_file(str(a)), load_file(str(b))
            if ta.keys() != tb.keys():
                diffs.append(f"{rel}: tensor names differ")
            diffs += [
                f"{rel}: tensor {k} differs"
                for k in ta
                if k in tb
                and not (ta[k].dtype == tb[k].dtype and ta[k].shape == tb[k].shape and bool((ta[k] == tb[k]).all()))
            ]
        elif rel.name in ("base_info.json", "assets.json"):
            ja, jb = (json.loads(p.read_text()) for p in (a, b))
            for k in sorted((set(ja) | set(jb)) - TIMINGS):
                if ja.get(k) != jb.get(k):
                    diffs.append(f"{rel}: {k} {ja.get(k)!r} != {jb.get(k)!r}")
        elif a.read_bytes() != b.read_bytes() and not _same_modulo_folder(a, b, old, new):
            diffs.append(f"{rel}: bytes differ")
    return diffs


def _same_modulo_folder(a: Path, b: Path, old: Path, new: Path) -> bool:
    """Files that name their own folder (the assets' lmms-eval task YAMLs) compare with it written out."""
    try:
        return a.read_text().replace(str(old), "{folder}") == b.read_text().replace(str(new), "{folder}")
    except UnicodeDecodeError:
        return False


def code_keys() -> list[str]:
    """One line per recipe (a base's source set, or the GPU toy assets'): its code key, whether PROVEN
    holds it, and the presets built from it."""
    sys.path.insert(0, str(ROOT))
    from harness.training.assets import ASSET_SOURCES
    from harness.training.bases import recipe_sources_of
    from harness.training.build_identity import PROVEN, code_key
    from harness.training.config import BASE_MODELS

    seen: dict[tuple[str, ...], list[str]] = {}
    for name, cfg in BASE_MODELS.items():
        seen.setdefault(recipe_sources_of(cfg), []).append(name)
    seen.setdefault(ASSET_SOURCES, []).append("paper-protocol-tiny (assets)")
    lines = []
    for sources, names in seen.items():
        key = code_key(sources)
        lines.append(f"{key} {'proven' if key in PROVEN else 'not proven'}: {', '.join(names)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="presets of BASE_MODELS, or `assets`")
    p.add_argument("--keys", action="store_true", help="print each recipe's code key and whether it is proven")
    p.add_argument("--old", default="HEAD", help="the commit whose code built the recorded bases")
    p.add_argument("--work", help="a scratch folder (old code, both caches)")
    a = p.parse_args(argv)
    if a.keys:
        print("\n".join(code_keys()))
        return 0
    if not a.names:
        p.error("name the bases to prove (presets of BASE_MODELS, or `assets`), or pass --keys")
    if not a.work:
        p.error("--work (a scratch folder) is needed to prove")
    work = Path(a.work).resolve()
    real = (Path.home() / ".cache" / "modomodo").resolve()
    if work == real or real in work.parents:
        raise SystemExit(f"--work {work} is inside the real cache {real}: choose a scratch folder")
    old_code = work / f"code-{a.old.replace('/', '_')}"
    if not old_code.is_dir():
        old_code.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", a.old], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_code)], input=archive, check=True)
    failed = False
    for name in a.names:
        old, new = build(old_code, work / "cache-old", name), build(ROOT, work / "cache-new", name)
        diffs = compare(old, new)
        print(f"{name}: {'identical' if not diffs else 'DIFFERENT'} ({old.name} vs {new.name})")
        for d in diffs:
            print(f"  {d}")
        failed |= bool(diffs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
