"""Identities: what a study key and a run key name about code and about suite cards.

- Code. A built-in strategy is named by its own module and every project module it imports,
  transitively (strategies/*, harness/*, ...: any module found under the project root), read
  statically from the source (imports inside functions count too). Each module counts as its
  normalised syntax tree (docstrings stripped, no positions; comments never reach the tree), so
  `ruff format`, comments and docstrings re-key nothing, and an edit to one strategy re-keys only
  that strategy and the strategies that import it. A user's strategy file keeps its own sha256: it
  is exactly what the sandbox runs.
- Cards. A suite's identity (its `protocol`, in every run and study key) is the sha256 of the card's
  parsed content in canonical JSON, less its prose fields, plus the bytes of its data table
  (runs.csv) where it has one: a comment or a reworded description starts no new protocol; any
  field that can change a result does.

Every function takes plain inputs (a class, a parsed card, bytes), so the key builders of other
layers (the GPU protocol file's hash, the run key) compose with these without reaching into them.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.spec import canonical_json

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Modules that register and load strategies but take no part in what a strategy proposes: the name
# registry (and the package that re-exports it). Counting them would re-key every study when the
# loading code moves (issue 30 moves it), though no strategy decides anything differently.
PLUMBING = frozenset({"strategies", "strategies.registry"})
# Card fields that describe a suite for people and are never read by the judge or a runner.
PROSE_FIELDS = frozenset(
    {
        "description",
        "citation",
        "provenance",
        "licence",
        "license",
        "signal_notes",
        "seeds_note",
        "weights_note",
        "what_it_shows",
        "what_it_cannot_show",
        "how_to_build_your_own",
    }
)
DIGITS = 16  # hex digits of a fingerprint (as before: the keys of stored records are made of these)


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGITS]


# -- code -------------------------------------------------------------------------------------------
def _normal_form(node: Any) -> Any:
    """A syntax tree as plain lists, the same on every Python that parses the file alike: no positions, and
    fields that are None or empty left out (so a field a newer Python adds, such as type_params, is no change)."""
    if isinstance(node, ast.AST):
        fields = []
        for name in node._fields:
            value = _normal_form(getattr(node, name, None))
            if value is not None and value != []:
                fields.append([name, value])
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [_normal_form(n) for n in node]
    if isinstance(node, (str, int, float, complex, bytes, bool)) or node is Ellipsis:
        return [type(node).__name__, repr(node)]
    return node  # None


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_fingerprint(source: bytes | str) -> str:
    """The fingerprint of one Python source: its syntax tree without docstrings, comments or layout."""
    tree = _strip_docstrings(ast.parse(source))
    return _short(json.dumps(_normal_form(tree), separators=(",", ":")).encode())


class SourceTree:
    """The project's modules as `read(relative path) -> bytes | None` gives them (the working tree, a temp
    copy, a git commit), and the static import graph between them."""

    def __init__(self, read: Callable[[str], bytes | None]):
        self._read = functools.lru_cache(maxsize=None)(read)
        self._imports: dict[str, frozenset[str]] = {}
        self._prints: dict[str, str] = {}

    @classmethod
    def at(cls, root: str | Path) -> SourceTree:
        root = Path(root)

        def read(rel: str) -> bytes | None:
            p = root / rel
            return p.read_bytes() if p.is_file() else None

        return cls(read)

    def file_of(self, module: str) -> str | None:
        """The relative path of a project module (a .py file or a package's __init__.py), or None."""
        base = module.replace(".", "/")
        for rel in (f"{base}.py", f"{base}/__init__.py"):
            if self._read(rel) is not None:
                return rel
        return None

    def _is_package(self, module: str) -> bool:
        return (self.file_of(module) or "").endswith("/__init__.py")

    def imports(self, module: str) -> frozenset[str]:
        """The project modules `module` imports anywhere in its source (not the plumbing)."""
        if module not in self._imports:
            rel = self.file_of(module)
            found: set[str] = set()
            if rel is not None:
                package = module if self._is_package(module) else module.rpartition(".")[0]
                for node in ast.walk(ast.parse(self._read(rel))):
                    found.update(self._targets(node, package))
            self._imports[module] = frozenset(m for m in found if m not in PLUMBING and self.file_of(m))
        return self._imports[module]

    def _targets(self, node: ast.AST, package: str) -> Iterable[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if not isinstance(node, ast.ImportFrom):
            return []
        if node.level:
            parts = package.split(".") if package else []
            parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # `from pkg import name`: the submodule pkg.name where there is one, else pkg itself (name is defined there)
        return [f"{base}.{a.name}" if self.file_of(f"{base}.{a.name}") else base for a in node.names]

    def closure(self, module: str) -> list[str]:
        """`module` and every project module it imports, transitively, sorted."""
        seen, todo = {module}, [module]
        while todo:
            for m in self.imports(todo.pop()):
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return sorted(seen)

    def module_fingerprint(self, module: str) -> str:
        """The fingerprint of `module`'s own source."""
        if module not in self._prints:
            self._prints[module] = source_fingerprint(self._read(self.file_of(module)))
        return self._prints[module]

    def fingerprint(self, module: str) -> str:
        """The code identity of `module`: its closure's modules, each by name and normalised source."""
        if self.file_of(module) is None:
            raise ValueError(f"module {module!r} is not a project module (no {module.replace('.', '/')}.py)")
        parts = [[m, self.module_fingerprint(m)] for m in self.closure(module)]
        return _short(json.dumps(parts, separators=(",", ":")).encode())


@functools.lru_cache(maxsize=1)
def project_tree() -> SourceTree:
    return SourceTree.at(PROJECT_ROOT)


@functools.lru_cache(maxsize=256)
def code_fingerprint(cls: type) -> str:
    """What a study key and an online run key name about a strategy class's code (see the module docstring).

    A user's file strategy: the sha256 (16 hex) of its file. A built-in: its module's closure in the project.
    A class defined outside the project (a test's own module): that file's normalised source, plus the project
    modules it imports. Changes to other strategies' files never move it."""
    source = getattr(cls, "source", None)
    if getattr(source, "sha256", None):
        return source.sha256[:DIGITS]
    module = getattr(cls, "__module__", "")
    tree = project_tree()
    if module and module != "__main__" and tree.file_of(module) is not None:
        return tree.fingerprint(module)
    try:
        path = Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError):
        return _short(cls.__qualname__.encode())
    package = (
        ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts[:-1]) if path.is_relative_to(PROJECT_ROOT) else ""
    )
    own = path.read_bytes()
    deps = set()
    for node in ast.walk(ast.parse(own)):
        deps.update(tree._targets(node, package))
    deps = sorted({d for m in deps if m not in PLUMBING and tree.file_of(m) for d in tree.closure(m)})
    parts = [[str(path.name), source_fingerprint(own)]] + [[m, tree.module_fingerprint(m)] for m in deps]
    return _short(json.dumps(parts, separators=(",", ":")).encode())


# -- cards ------------------------------------------------------------------------------------------
def card_content(card: dict[str, Any]) -> str:
    """The meaningful part of a parsed card as canonical JSON: every field but the prose, keys sorted."""
    body = {k: v for k, v in card.items() if k not in PROSE_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def card_identity(card: dict[str, Any], *data: bytes) -> str:
    """A suite's protocol hash: its card's content (card_content) and the bytes of its data files, in order."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(card_content(card).encode()).digest())
    for blob in data:
        h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()[:DIGITS]


# -- keys -------------------------------------------------------------------------------------------
def study_key(suite, strategy_cls: type, *, runner: str, strategy: str, budget: int | float, seed: int) -> str:
    """The store key of a finished study: the suite (its id, protocol hash and track), the runner, the
    strategy's name and code fingerprint, the budget and the seed."""
    ident = [suite.id, suite.protocol, suite.track, runner, strategy, code_fingerprint(strategy_cls), budget, seed]
    return hashlib.sha256(canonical_json(ident).encode()).hexdigest()
