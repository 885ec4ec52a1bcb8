"""The judge (harness/suites) and the suite factory (harness/factory) are two rooms with arrows one way: no import
circle inside either, and the judge imports neither the factory nor the execution layer (runners, stores).

Imports are read from the source (ast), function-local ones included; an import under `if TYPE_CHECKING:` is
an annotation only and never runs, so it is not an arrow (grimp's exclude_type_checking_imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path, root: Path = ROOT) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports (a `from pkg import mod` names the submodule mod)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for b in ast.walk(tree)
        if isinstance(b, ast.If) and "TYPE_CHECKING" in ast.unparse(b.test)
        for n in ast.walk(b)
    }
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            }
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def graph(*packages: str, root: Path = ROOT) -> nx.DiGraph:
    files = [f for pkg in packages for f in sorted((root / pkg).glob("*.py"))]
    known = {module_name(f, root) for f in files}
    g = nx.DiGraph()
    for f in files:
        m = module_name(f, root)
        g.add_node(m)
        g.add_edges_from((m, n) for n in imports_of(f, known) if n in known and n != m)
    return g


def test_the_reader_finds_a_planted_circle(tmp_path):
    """The check itself: two modules importing each other (one function-locally) are a circle; one importing
    the other only under TYPE_CHECKING is not."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    g = graph("pkg", root=tmp_path)
    assert [sorted(c) for c in nx.simple_cycles(g)] == [["pkg.a", "pkg.b"]]
    assert not g.has_edge("pkg.c", "pkg.a")


def test_no_import_circle_in_the_judge_or_the_factory():
    g = graph("harness/suites", "harness/factory")
    assert len(g) >= 15  # both packages were read
    assert list(nx.simple_cycles(g)) == []


def test_the_judge_imports_neither_the_factory_nor_the_runners_nor_stores():
    files = sorted((ROOT / "harness" / "suites").glob("*.py"))
    upward = {
        (module_name(f), n)
        for f in files
        for n in imports_of(f, set())
        if n.startswith(("harness.factory", "harness.runners", "harness.store", "harness.bench", "harness.studies"))
    }
    assert upward == set()
