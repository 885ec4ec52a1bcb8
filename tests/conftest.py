import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def cli(*args, check=True, timeout=300, env=None, codes=(0,)):
    """Run the real `modomodo` CLI in a subprocess; returns the CompletedProcess. With `check`, an exit status
    outside `codes` fails (a bench whose studies fail, by design, exits 1: pass codes=(1,))."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode not in codes:
        raise AssertionError(
            f"modomodo {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def run_cli():
    return cli


def write_synthetic_suite(folder: Path, kind="bowl", dim=4, noise=0.01, delay=0.0, name=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    card = {
        "name": name or folder.name,
        "version": "1",
        "kind": "synthetic",
        "metric": "score",
        "goal": "max",
        "datasets": [f"D{i}" for i in range(dim)],
        "function": {"kind": kind, "dim": dim, "seed": 7, "noise_sd": noise},
        "cost": {"simulated_delay_s": delay},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder


@pytest.fixture
def synthetic_suite(tmp_path):
    return write_synthetic_suite(tmp_path / "toy-suite")


_POOL_SUITES: dict = {}


def write_pool_suite(folder: Path, n_mix: int = 30, dim: int = 4, seeds: int = 3, noise: float = 0.01) -> Path:
    """A small recorded suite (tests/benchmarks/pool_table.py) imported once per test session and reused
    (suites are read-only to the harness)."""
    import tempfile

    from tests.benchmarks.pool_table import import_pool_suite

    key = (n_mix, dim, seeds, noise)
    if key not in _POOL_SUITES:
        root = Path(tempfile.mkdtemp(prefix="modomodo-pool-suite-"))
        _POOL_SUITES[key] = import_pool_suite(
            root / f"pool-{n_mix}x{dim}", n_mix, dim, seeds, noise, name=f"pool-{n_mix}x{dim}"
        )
    return _POOL_SUITES[key]
