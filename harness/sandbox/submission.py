"""A strategy from a user's file (`--strategy-file`): its source, its stand-in in the registry, and loading it.

The file is never imported in the bench process or its workers: its source is read and hashed once
(`FileSource`), a sandboxed child (harness/sandbox/proxy.py) reports which Strategy classes it defines, and
each is registered as a `FileStrategy` stand-in that carries the name, description, citation, family and
the file's provenance (path, sha256). A stand-in is a description, not the strategy: it cannot be built
in this process; `harness.sandbox.isolation.make_strategy` starts it in its sandbox. A name that is already
taken (by a built-in or by another file) is refused, naming both sources.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.sandbox import policy
from harness.sandbox.policy import default_timeout
from harness.sandbox.protocol import StrategyError, StrategyTimeout
from harness.sandbox.proxy import describe_source
from strategies import registry
from strategies.base import Strategy, strategy_kind


class StrategyFileError(ValueError):
    """A strategy file that cannot be used: one line naming the file and what is wrong."""


@dataclass(frozen=True)
class FileSource:
    """A strategy file as read once by the bench: what is hashed is what runs in the sandbox."""

    path: str
    text: str
    sha256: str

    @property
    def filename(self) -> str:
        return Path(self.path).name

    @classmethod
    def read(cls, path: str | Path) -> FileSource:
        p = Path(path).resolve()
        if not p.is_file():
            raise FileNotFoundError(f"strategy file {str(path)!r} does not exist")
        data = p.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StrategyFileError(f"strategy file {str(path)!r} is not UTF-8 text: {e}") from None
        return cls(str(p), text, hashlib.sha256(data).hexdigest())


class FileStrategy(Strategy):
    """Stand-in for a strategy defined in a user's file: what the registry, the bench and the site need to
    know of it (name, description, family, kind, `source`). Its code runs only in its sandbox, so the class
    is never instantiated here: `harness.sandbox.isolation.make_strategy(cls, space, seed, params)` starts it
    there and returns the handle (harness.sandbox.proxy.SandboxedStrategy: propose, recommend, close)."""

    source: FileSource | None = None  # set on each stand-in
    source_class: str = ""  # the class's name in the file

    def __init__(self, space, seed: int = 0, **params):
        raise TypeError(
            f"{type(self).__qualname__} stands in for class {self.source_class} of a strategy file: its "
            f"code runs only in its sandbox; build it with harness.sandbox.isolation.make_strategy"
        )


def provenance(cls) -> dict[str, str]:
    """strategy_file, strategy_sha256 and sandboxed ("yes", "no"; "" for the project's own strategies run
    in-process) of a registered strategy, for summary.csv and bench.json."""
    src = getattr(cls, "source", None)
    if isinstance(src, FileSource):
        return {
            "strategy_file": src.filename,
            "strategy_sha256": src.sha256,
            "sandboxed": "yes" if policy.sandboxed() else "no",
        }
    if policy.default_mode() == "process":
        return {"strategy_file": "", "strategy_sha256": "", "sandboxed": "yes" if policy.sandboxed() else "no"}
    return {"strategy_file": "", "strategy_sha256": "", "sandboxed": ""}


def _valid_name(name: str) -> bool:
    """A name the command line can select (`--strategy a,b`) and one line can show; the site escapes it."""
    return 0 < len(name) <= 100 and name == name.strip() and "," not in name and name.isprintable()


def _stand_in(entry: dict[str, str], src: FileSource) -> type[FileStrategy]:
    name = entry["name"]
    if not _valid_name(name):
        raise StrategyFileError(
            f"strategy file {src.path!r}: class {entry['class']} has the name {name!r}; a name is "
            f"1 to 100 printable characters, without commas or surrounding spaces"
        )
    if "\n" in entry["description"]:
        entry = {**entry, "description": " ".join(entry["description"].split())}
    kind = entry.get("kind") or "offline"
    if kind not in ("offline", "online"):
        raise StrategyFileError(f"strategy file {src.path!r}: class {entry['class']} reports kind {kind!r}")
    attrs = {
        "name": name,
        "description": entry["description"],
        "citation": entry["citation"],
        "family": entry["family"] or "other",
        "kind": kind,
        "source": src,
        "source_class": entry["class"],
        "__doc__": f"{entry['class']} from {src.filename} (runs in its sandbox)",
        "__module__": __name__,
    }
    cls_name = "".join(c if c.isalnum() or c == "_" else "_" for c in entry["class"].split(".")[-1]) or "UserStrategy"
    return type(cls_name, (FileStrategy,), attrs)


def describe_file(path: str | Path, timeout_s: float | None | str = "default") -> list[type[FileStrategy]]:
    """The stand-ins for the Strategy classes a file defines (learned in a sandbox), without registering them."""
    src = FileSource.read(path)
    try:
        compile(src.text, src.path, "exec")  # a syntax error is reported without starting anything
    except SyntaxError as e:
        raise StrategyFileError(f"strategy file {str(path)!r}: SyntaxError: {e.msg} (line {e.lineno})") from None
    except ValueError as e:  # e.g. a NUL byte in the source
        raise StrategyFileError(f"strategy file {str(path)!r}: {e}") from None
    timeout = default_timeout() if timeout_s == "default" else timeout_s
    try:
        entries = describe_source(src.text, src.filename, timeout)
    except (StrategyError, StrategyTimeout) as e:
        raise StrategyFileError(f"strategy file {str(path)!r}: {e}") from None
    if not entries:
        raise StrategyFileError(f"strategy file {str(path)!r} defines no Strategy subclass")
    names_seen: dict[str, str] = {}
    for e in entries:
        if e["name"] in names_seen:
            raise StrategyFileError(
                f"strategy file {str(path)!r}: classes {names_seen[e['name']]} and {e['class']} "
                f"both use the name {e['name']!r}"
            )
        names_seen[e["name"]] = e["class"]
    return [_stand_in(e, src) for e in entries]


def register_file_strategies(stand_ins: list[type[FileStrategy]]) -> list[str]:
    """Register a file's stand-ins; a name taken by a built-in or another file is refused, naming both."""
    try:
        return registry.add_from_source(stand_ins)
    except registry.NameTaken as e:
        raise StrategyFileError(str(e)) from None


def load_file(path: str | Path) -> list[str]:
    """Register the Strategy subclasses a user's file defines, without importing it here.

    Classes decorated with @register keep their name; undecorated subclasses are registered under
    their `name` attribute or, failing that, their lower-cased class name. Returns the names added.
    Loading the same file again is harmless (unchanged: nothing to do; edited: its entries are refreshed)."""
    src = FileSource.read(path)
    known = [c for c in registry.from_sources() if c.source.path == src.path]
    if known and all(c.source.sha256 == src.sha256 for c in known):
        return [c.name for c in known]
    return register_file_strategies(describe_file(path))


def file_entries() -> list[dict[str, Any]]:
    """The registered file strategies as plain data (for worker processes: no second sandboxed import)."""
    return [
        {
            "name": c.name,
            "class": c.source_class,
            "description": c.description,
            "citation": c.citation,
            "family": c.family,
            "kind": strategy_kind(c),
            "path": c.source.path,
            "text": c.source.text,
            "sha256": c.source.sha256,
        }
        for c in registry.from_sources()
    ]


def register_entries(entries: list[dict[str, Any]]) -> None:
    for e in entries:
        src = FileSource(e["path"], e["text"], e["sha256"])
        register_file_strategies([_stand_in(e, src)])
