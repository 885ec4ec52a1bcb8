"""Where a result came from: package versions and the git commit, computed once per process."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        sha = out.stdout.strip()
        if out.returncode != 0 or not sha:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    names = ["modomodo", "numpy", "scipy", "scikit-learn", "pandas", "torch", "transformers", "trl", "vllm"]
    out = {"python": platform.python_version()}
    out.update({n: v for n in names if (v := package_version(n))})
    return out


def provenance(protocol: str) -> dict:
    return {"protocol": protocol, "git_sha": git_sha(), "versions": versions()}


def cpu_capability() -> str | None:
    """The SIMD kernel family torch dispatches to on this machine ("AVX2", "AVX512", "DEFAULT", ...):
    results reproduce bit for bit only between machines with the same one (and the same weights and
    versions); across capabilities only in distribution. None without torch."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # noqa: BLE001 - no torch, or a build without the call
        return None


@functools.lru_cache(maxsize=16)
def _weights_sha256(folder: str, stamp: tuple) -> str | None:
    import hashlib

    files = sorted(p for p in Path(folder).iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        return None
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def weights_sha256(folder: str | Path | None) -> str | None:
    """sha256 over a model folder's weight files (*.safetensors, *.bin, by name), or None. The base
    model's content hash (its cache key) names its recipe; this names the bytes the recipe produced
    here, which differ between machines whose warm-up ran on different CPU kernels."""
    if folder is None or not Path(folder).is_dir():
        return None
    stamp = tuple(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(Path(folder).iterdir()) if p.is_file()
    )
    return _weights_sha256(str(Path(folder).resolve()), stamp)


def machine_provenance(weights_folder: str | Path | None = None) -> dict:
    """What decides whether a run reproduces bit for bit elsewhere: the CPU capability torch used,
    its thread count, and the base model's weights hash."""
    out: dict = {"cpu_capability": cpu_capability(), "base_weights_sha256": weights_sha256(weights_folder)}
    try:
        import torch

        out["torch_threads"] = int(torch.get_num_threads())
    except Exception:  # noqa: BLE001
        pass
    return out
