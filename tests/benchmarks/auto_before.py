"""Register `auto` as committed at a given git revision under another name (`auto-before`), so a benchmark
compares before and after in one process, on the same study seeds and the same random runs.

    python -m tests.benchmarks.auto_report --before 4011e7e --strategies random,auto,auto-before

The revision's strategies/auto.py, auto_models.py and seed_noise.py are read with `git show` and loaded as
one private package (their imports of each other point into it; everything else, e.g. bo_common, is the
working tree's), and the class registered as `auto` there is registered under `name` here.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import strategies.registry as registry

ROOT = Path(__file__).resolve().parents[2]
FROZEN = ("seed_noise", "auto_models", "auto")  # in import order


def register_before(rev: str, name: str = "auto-before") -> None:
    """Load `auto` at git revision `rev` and register it as `name`. A bad revision: ValueError naming it."""
    pkg = f"_auto_at_{rev.replace('-', '_')}"
    if name in registry.names():
        return
    package = types.ModuleType(pkg)
    package.__path__ = []
    sys.modules[pkg] = package
    for mod in FROZEN:
        try:
            src = subprocess.run(
                ["git", "show", f"{rev}:strategies/{mod}.py"], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        except subprocess.CalledProcessError as e:
            raise ValueError(f"cannot read strategies/{mod}.py at revision {rev!r}: {e.stderr.strip()}") from None
        for other in FROZEN:
            src = src.replace(f"from strategies.{other} import", f"from {pkg}.{other} import")
        src = src.replace('@register("auto")', f"@register({name!r})")
        module = types.ModuleType(f"{pkg}.{mod}")
        module.__file__ = f"<{rev}:strategies/{mod}.py>"
        sys.modules[module.__name__] = module
        exec(compile(src, module.__file__, "exec"), module.__dict__)
    if name not in registry.names():
        raise ValueError(f"revision {rev!r}: strategies/auto.py registers no `auto` class")
