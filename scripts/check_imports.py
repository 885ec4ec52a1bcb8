"""The import structure's ratchet: circles between project modules, arrows that run back up, big modules.

    python scripts/check_imports.py            # check against scripts/import_ratchet.json (run by `make lint`)
    python scripts/check_imports.py --update   # write today's exceptions as the new ratchet

The graph is grimp's (https://grimp.readthedocs.io): every `import` of one project module by another,
function-local imports included (they hide circles, they do not remove them).

- A **circle** is a set of modules that reach one another by imports (a strongly connected component of
  the module graph with more than one module).
- An **arrow that runs back up** is an import grimp nominates as a cycle breaker between rooms (a room is
  a child of `harness`: harness/suites/, harness/mixture.py; or a whole other top-level package:
  strategies/, tasks/, leaderboard/; or one of the few modules named in FLOORS): the fewest imports whose
  removal would leave the rooms acyclic.
  They are the arrows against the grain of the layering.
- A **big module** is a project file over MAX_LINES lines.

The check fails when a circle appears that is not inside a circle of the ratchet, when an upward arrow
appears that the ratchet does not list, or when a module over MAX_LINES lines is new or has grown; it
prints each offender. Fewer exceptions than the ratchet pass (and the script says the ratchet can be
tightened with --update).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "strategies", "tasks", "leaderboard")
SIZE_FOLDERS = (*PACKAGES, "baselines", "scripts")  # every project Python file but the tests
MAX_LINES = 500
RATCHET = ROOT / "scripts" / "import_ratchet.json"


def _graph():
    sys.path.insert(0, str(ROOT))
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def circles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


ROOM_DEPTH = {"harness": 2}  # harness's children are rooms (harness.suites, harness.mixture); elsewhere the package
# Modules that are a room of their own inside a concept's folder, and why: a floor of the concept that sits
# below another room while the rest of the folder sits above it. Each is named here, never found by the script.
FLOORS = {
    # the field machinery every protocol shares: the CPU presets (harness/training/config.py) build on it,
    # while the GPU protocol files name the asset builders of harness/training/assets.py (training sits between)
    "harness.protocols.fields",
}


def room(module: str) -> str:
    """The room a module belongs to: a child of `harness` (harness.suites/, harness.mixture), or the whole
    top-level package for the others (strategies/, tasks/, leaderboard/): the concepts a reader looks for;
    a module named in FLOORS is a room of its own."""
    if module in FLOORS:
        return module
    parts = module.split(".")
    return ".".join(parts[: ROOM_DEPTH.get(parts[0], 1)])


def upward_arrows(graph) -> list[str]:
    """grimp's cycle breakers between the rooms: the fewest imports whose removal leaves the rooms acyclic.
    (Every room sits under one synthetic package, so arrows between the top-level packages count too.)"""
    rooms = sorted({room(m) for m in graph.modules})
    room_id = {r: f"project.r{i}" for i, r in enumerate(rooms)}
    name = {m: f"{room_id[room(m)]}.m{i}" for i, m in enumerate(sorted(graph.modules))}
    back = {v: k for k, v in name.items()}
    rooms_graph = grimp.ImportGraph()
    rooms_graph.add_module("project")
    for r in room_id.values():
        rooms_graph.add_module(r)
    for m in graph.modules:
        rooms_graph.add_module(name[m])
    for m in graph.modules:
        for imported in graph.find_modules_directly_imported_by(m):
            rooms_graph.add_import(importer=name[m], imported=name[imported])
    arrows = rooms_graph.nominate_cycle_breakers("project")
    return sorted(f"{back[importer]} -> {back[imported]}" for importer, imported in arrows)


def big_modules() -> dict[str, int]:
    out = {}
    for folder in SIZE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                out[path.relative_to(ROOT).as_posix()] = lines
    return out


def measure() -> dict:
    graph = _graph()
    return {"circles": circles(graph), "upward_arrows": upward_arrows(graph), "big_modules": big_modules()}


def offenders(now: dict, ratchet: dict) -> list[str]:
    out = []
    allowed_circles = [set(c) for c in ratchet.get("circles", [])]
    for c in now["circles"]:
        if not any(set(c) <= a for a in allowed_circles):
            out.append(f"new import circle ({len(c)} modules): {', '.join(c)}")
    if len(now["circles"]) > len(allowed_circles):
        out.append(f"{len(now['circles'])} import circles, the ratchet allows {len(allowed_circles)}")
    allowed_arrows = set(ratchet.get("upward_arrows", []))
    out += [f"new upward import: {a}" for a in now["upward_arrows"] if a not in allowed_arrows]
    allowed_big = ratchet.get("big_modules", {})
    for path, lines in now["big_modules"].items():
        if path not in allowed_big:
            out.append(f"{path} has {lines} lines (more than {MAX_LINES}); split it")
        elif lines > allowed_big[path]:
            out.append(
                f"{path} grew to {lines} lines (the ratchet allows {allowed_big[path]}, at most {MAX_LINES} "
                f"for a new module); split it"
            )
    return out


def summary(d: dict) -> str:
    return (
        f"{len(d['circles'])} circles, {len(d['upward_arrows'])} upward arrows, "
        f"{len(d['big_modules'])} modules over {MAX_LINES} lines"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help="write today's structure as the ratchet")
    ap.add_argument("--ratchet", type=Path, default=RATCHET)
    args = ap.parse_args(argv)
    now = measure()
    if args.update:
        args.ratchet.write_text(json.dumps(now, indent=1) + "\n")
        print(f"import structure: {summary(now)} (written to {args.ratchet.name})")
        return 0
    ratchet = json.loads(args.ratchet.read_text())
    bad = offenders(now, ratchet)
    print(f"import structure: {summary(now)}; the ratchet allows {summary(ratchet)}")
    for line in bad:
        print(f"  {line}")
    if bad:
        print("fix these, or (for a deliberate exception) run: python scripts/check_imports.py --update")
        return 1
    if summary(now) != summary(ratchet) or now != ratchet:
        print("  better than the ratchet: tighten it with python scripts/check_imports.py --update")
    return 0


if __name__ == "__main__":
    sys.exit(main())
