"""The sandbox child's deny-list names real modules and attributes, and covers every data entry point.

The child (harness/sandbox/child.py) replaces the entry points that load suites or runners with a
function that raises PermissionError, by module path and attribute name. A file move or a rename would
silently empty that guard; these tests fail instead. What must be covered is derived from the function
objects themselves: wherever `load`, `load_folder`, `registered` and `make_runner` are defined, and
wherever they are re-exported from.
"""

from __future__ import annotations

import importlib

import pytest

from harness.sandbox.child import DENIED

# the public ways a strategy could reach data or results: (package they are used from, attribute)
ENTRY_POINTS = [
    ("harness.suites", "load"),
    ("harness.suites", "load_folder"),
    ("harness.suites", "registered"),
    ("harness.runners", "make_runner"),
]


@pytest.mark.parametrize("module_name", sorted(DENIED))
def test_every_denied_module_exists_with_every_named_attribute(module_name):
    module = importlib.import_module(module_name)
    missing = [a for a in DENIED[module_name] if not callable(getattr(module, a, None))]
    assert not missing, f"{module_name} no longer defines {missing}: update DENIED in harness/sandbox/child.py"


@pytest.mark.parametrize("package, attr", ENTRY_POINTS)
def test_every_entry_point_is_denied_where_it_is_defined_and_where_it_is_exported(package, attr):
    fn = getattr(importlib.import_module(package), attr)
    for module_name in {package, fn.__module__}:
        assert attr in DENIED.get(module_name, ()), (
            f"{module_name}.{attr} reaches data but the sandbox child does "
            f"not deny it: add it to DENIED in harness/sandbox/child.py"
        )


def test_the_guard_replaces_the_entry_points_on_import():
    """In a fresh interpreter with the child's import hook, each entry point raises PermissionError."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import runpy\n"
        "child = runpy.run_path(%r, run_name='not_main')\n"
        "child['_deny_data_entry_points']()\n"
        "import importlib\n"
        "for mod, attrs in child['DENIED'].items():\n"
        "    m = importlib.import_module(mod)\n"
        "    for a in attrs:\n"
        "        try:\n"
        "            getattr(m, a)('x')\n"
        "        except PermissionError:\n"
        "            continue\n"
        "        raise SystemExit(f'{mod}.{a} was not denied')\n"
        "print('all denied')\n"
    ) % str(ROOT / "harness" / "sandbox" / "child.py")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and "all denied" in proc.stdout, proc.stderr[-2000:] + proc.stdout
