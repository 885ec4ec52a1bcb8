"""The commands the leaderboard site shows: how to re-run a suite's or a strategy's studies with
`modomodo bench`, and how to submit a strategy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from leaderboard.data import Results


def _seeds_arg(seeds: Any) -> str:
    """bench --seeds for a list of seeds: a count when they are 0..N-1, a range N-M, else a comma list."""
    if isinstance(seeds, int):
        return str(seeds)
    xs = sorted(int(x) for x in seeds or [])
    if not xs:
        return "1"
    if xs == list(range(len(xs))):
        return str(len(xs))
    if xs == list(range(xs[0], xs[-1] + 1)):
        return f"{xs[0]}-{xs[-1]}"
    return ",".join(str(x) for x in xs)


def suite_ref(entry: dict[str, Any]) -> str:
    """How `bench --suite` names a suite: its registered name, or its folder."""
    name = str(entry.get("suite") or entry.get("name") or "")
    try:
        from harness.suites.loading import registered

        if name in registered():
            return name
    except Exception:  # noqa: BLE001 - no registry here: the folder is as good a reference
        pass
    folder = Path(str(entry.get("path") or "")).name
    return f"path/to/{folder}" if folder else name


def shell_quote(arg: str) -> str:
    """One argument as a POSIX shell reads it back unchanged (a suite or file name may hold spaces or quotes)."""
    import shlex

    return shlex.quote(arg)


def bench_commands(results: Results, suite: str | None = None, strategy: str | None = None) -> list[str]:
    """The `modomodo bench` command(s) that regenerate the numbers of one suite or one strategy: one per results
    folder that holds them, from its bench.json (suites, strategies, budgets, seeds, track, runner)."""
    cmds = []
    for meta in results.benches:
        entries = [e for e in meta.get("suites", []) if suite is None or e.get("name") == suite]
        names = [str(e.get("name")) for e in meta.get("strategies", [])]
        if strategy is not None:
            names = [n for n in names if n == strategy]
        if not entries or not names:
            continue
        files = sorted({str(e["file"]) for e in meta.get("strategies", []) if e.get("name") in names and e.get("file")})
        tracks = sorted({str(e.get("track")) for e in entries if e.get("track")})
        parts = ["modomodo", "bench"]
        for e in entries:
            parts += ["--suite", shell_quote(suite_ref(e))]
        parts += ["--strategy", shell_quote(",".join(names))]
        for f in files:
            parts += ["--strategy-file", shell_quote(f)]
        parts += [
            "--budget",
            ",".join(str(b) for b in meta.get("budgets", [])),
            "--seeds",
            _seeds_arg(meta.get("seeds")),
        ]
        if len(tracks) == 1:
            parts += ["--track", tracks[0]]
        runner = str(meta.get("runner") or "replay")
        if runner != "replay":
            parts += ["--runner", runner]
        parts += ["--out", "results/"]
        cmds.append(" ".join(parts))
    return cmds


def folder_ref(folder) -> str:
    """A results folder as a command names it: relative to the working folder of the render when inside it
    (e.g. baselines/online, not `online`); else its name (a published page shows no local absolute path)."""
    import os

    path = Path(folder).resolve()
    rel = os.path.relpath(path)
    return path.name if rel.startswith("..") else Path(rel).as_posix()


def submit_commands(results: Results) -> dict[str, str]:
    """The commands that put a new strategy beside these results: the same suites, budgets and seeds."""
    entries, budgets, seeds = {}, set(), None
    for meta in results.benches:
        for e in meta.get("suites", []):
            if e.get("kind") == "live" or e.get("track") == "online":
                continue  # a live suite trains for real (hours): never in the command a submitter copies
            entries.setdefault(str(e.get("name")), e)
        budgets.update(int(b) for b in meta.get("budgets", []))
        seeds = seeds if seeds is not None else meta.get("seeds")
    suite_args = " ".join(f"--suite {shell_quote(suite_ref(e))}" for _, e in sorted(entries.items()))
    folders = " ".join(shell_quote(folder_ref(f)) for f in results.folders)
    return {
        "bench": f"modomodo bench {suite_args} --strategy mine,uniform --strategy-file my_strategy.py "
        f"--budget {','.join(str(b) for b in sorted(budgets))} --seeds {_seeds_arg(seeds)} --out results/mine",
        "render": f"modomodo leaderboard render --results {folders} results/mine --out site/",
    }
