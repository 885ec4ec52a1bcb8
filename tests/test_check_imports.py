"""The import-structure ratchet (scripts/check_imports.py) on small graphs with a planted structure."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import grimp
import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("check_imports", ROOT / "scripts" / "check_imports.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def graph(modules, imports):
    g = grimp.ImportGraph()
    for m in modules:
        g.add_module(m)
    for a, b in imports:
        g.add_import(importer=a, imported=b)
    return g


MODULES = ["harness", "harness.low", "harness.mid", "harness.top", "harness.top.cmd", "strategies", "strategies.x"]


def test_a_planted_circle_is_found_whole_and_nothing_else():
    g = graph(
        MODULES,
        [
            ("harness.top.cmd", "harness.mid"),
            ("harness.mid", "harness.low"),
            ("harness.low", "harness.top.cmd"),
            ("strategies.x", "harness.low"),
        ],
    )
    assert check.circles(g) == [["harness.low", "harness.mid", "harness.top.cmd"]]


def test_the_one_import_against_a_layering_is_the_upward_arrow():
    # top -> mid -> low three times over, and one import from low back to top: that one is the arrow up
    down = [
        ("harness.top.cmd", "harness.mid"),
        ("harness.top", "harness.mid"),
        ("harness.mid", "harness.low"),
        ("harness.top", "harness.low"),
    ]
    g = graph(MODULES, [*down, ("harness.low", "harness.top.cmd")])
    assert check.upward_arrows(g) == ["harness.low -> harness.top.cmd"]
    assert check.upward_arrows(graph(MODULES, down)) == []


def test_rooms_are_harness_children_and_whole_other_packages():
    assert check.room("harness.sandbox.proxy") == "harness.sandbox"
    assert check.room("harness.mixture") == "harness.mixture"
    assert check.room("strategies.registry") == "strategies"
    assert check.room("tasks.lmms.model") == "tasks"
    # a floor named in FLOORS is a room of its own; the rest of its folder is one room
    assert check.room("harness.protocols.fields") == "harness.protocols.fields"
    assert check.room("harness.protocols.gpu") == "harness.protocols"


RATCHET = {"circles": [["a.x", "a.y", "a.z"]], "upward_arrows": ["a.x -> a.y"], "big_modules": {"a/big.py": 600}}


@pytest.mark.parametrize(
    "now, expected",
    [
        ({"circles": [["a.x", "a.y"]], "upward_arrows": [], "big_modules": {"a/big.py": 590}}, []),
        (
            {"circles": [["a.w", "a.x"]], "upward_arrows": [], "big_modules": {}},
            ["new import circle (2 modules): a.w, a.x"],
        ),
        (
            {"circles": [], "upward_arrows": ["a.x -> a.y", "b.p -> a.x"], "big_modules": {}},
            ["new upward import: b.p -> a.x"],
        ),
        (
            {"circles": [], "upward_arrows": [], "big_modules": {"a/big.py": 601, "a/new.py": 501}},
            [
                "a/big.py grew to 601 lines (the ratchet allows 600, at most 500 for a new module); split it",
                "a/new.py has 501 lines (more than 500); split it",
            ],
        ),
    ],
)
def test_the_ratchet_lets_things_shrink_and_names_each_thing_that_grows(now, expected):
    assert check.offenders(now, RATCHET) == expected


def test_the_committed_ratchet_holds_for_the_repository_and_a_tighter_one_fails(tmp_path):
    ok = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_imports.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # tighten the committed ratchet by one exception it still holds (an upward arrow, a circle, a big module's lines)
    tight = json.loads((ROOT / "scripts" / "import_ratchet.json").read_text())
    if tight["upward_arrows"]:
        expected = f"new upward import: {tight['upward_arrows'].pop()}"
    elif tight["circles"]:
        expected = f"new import circle ({len(tight['circles'][-1])} modules): {', '.join(tight['circles'].pop())}"
    elif tight["big_modules"]:
        path = sorted(tight["big_modules"])[-1]
        tight["big_modules"][path] -= 1
        expected = f"{path} grew to {tight['big_modules'][path] + 1} lines"
    else:  # the house holds no exception: the script must say so, and nothing is left to tighten
        assert "0 circles, 0 upward arrows, 0 modules over 500 lines" in ok.stdout, ok.stdout
        return
    (tmp_path / "r.json").write_text(json.dumps(tight))
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_imports.py"), "--ratchet", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert bad.returncode == 1 and expected in bad.stdout, bad.stdout + bad.stderr
