import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def cli(*args, check=True, timeout=300, env=None):
    """Run the real `modomodo` CLI in a subprocess; returns the CompletedProcess."""
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"modomodo {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def run_cli():
    return cli


def write_synthetic_suite(folder: Path, kind="bowl", dim=4, noise=0.01, delay=0.0, name=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    card = {"name": name or folder.name, "version": "1", "kind": "synthetic", "metric": "score", "goal": "max",
            "datasets": [f"D{i}" for i in range(dim)],
            "function": {"kind": kind, "dim": dim, "seed": 7, "noise_sd": noise},
            "cost": {"simulated_delay_s": delay}}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder


@pytest.fixture
def synthetic_suite(tmp_path):
    return write_synthetic_suite(tmp_path / "toy-suite")
