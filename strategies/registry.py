"""Strategy registry: `@register("name")`, lookup with "did you mean", and loading a user's file.

Built-in strategies are imported lazily (module path per name), so listing them or running one
does not import the others' dependencies.

A user's file (`--strategy-file`) is never imported here: its source is read and hashed, a
sandboxed child (harness/sandbox.py) reports which Strategy classes it defines, and each is
registered as a `FileStrategy` stand-in that carries the name, description, citation, family and
the file's provenance (path, sha256). Building a stand-in starts the strategy in its sandbox.
A name that is already taken (by a built-in or by another file) is refused, naming both sources.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.mixture import did_you_mean
from strategies.base import Strategy, StrategyBase, strategy_kind

# name -> "module:Class" for the strategies shipped with modomodo (imported on first use).
BUILTIN: dict[str, str] = {
    "uniform": "strategies.uniform:Uniform",
    "random": "strategies.random_search:RandomSearch",
    "seed": "strategies.seed:SeedDesigns",
    "quadratic": "strategies.quadratic:Quadratic",
    "linear": "strategies.linear:Linear",
    "ain": "strategies.alpha:Ain",
    "aout": "strategies.alpha:Aout",
    "abal": "strategies.alpha:Abal",
    "coli": "strategies.coli:Coli",
    "norm": "strategies.norm:Norm",
    "gp-bo": "strategies.gp_bo:GPBO",
    "quadratic-bo": "strategies.quadratic_bo:QuadraticBO",
    "regmix": "strategies.regmix:RegMix",
    "regmix-linear": "strategies.regmix:RegMixLinear",
    "mixing-law": "strategies.mixing_law:MixingLaw",
    "cma-es": "strategies.cma_es:CMAES",
    "auto": "strategies.auto:Auto",
    "successive-halving": "strategies.multi_fidelity:SuccessiveHalving",
    "hyperband": "strategies.multi_fidelity:Hyperband",
    "bohb-gp": "strategies.multi_fidelity:BOHBGP",
    # online strategies (strategies/online.py): weights that change during one run; the online track only
    "constant": "strategies.constant:Constant",
    "dump": "strategies.dump:DUMP",
    "odm": "strategies.odm:ODM",
    "odm-exp3": "strategies.odm:ODMExp3",
    "aioli": "strategies.aioli:Aioli",
}

_REGISTRY: dict[str, type[Strategy]] = {}


class UnknownStrategy(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return self.args[0]


def register(name: str):
    """Class decorator: make a Strategy (or OnlineStrategy) subclass available under `name`."""

    def deco(cls: type[Strategy]) -> type[Strategy]:
        if not (inspect.isclass(cls) and issubclass(cls, StrategyBase)):
            raise TypeError(f"@register({name!r}) must decorate a Strategy or OnlineStrategy subclass, got {cls!r}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"strategy name {name!r} is already registered by {source_of(existing)}")
        if isinstance(existing, type) and issubclass(existing, FileStrategy):
            raise ValueError(f"strategy name {name!r} is already registered by {source_of(existing)}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def names(kind: str | None = None) -> list[str]:
    """Every registered strategy's name; with `kind` ("offline" or "online"), those of that kind only."""
    every = sorted(set(BUILTIN) | set(_REGISTRY))
    return every if kind is None else [n for n in every if strategy_kind(get(n)) == kind]


def builtin_names(kind: str | None = None) -> list[str]:
    """The strategies shipped with modomodo (of `kind`, if given)."""
    return sorted(n for n in BUILTIN if kind is None or strategy_kind(get(n)) == kind)


def get(name: str) -> type[Strategy]:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        importlib.import_module(module)  # the module's @register fills _REGISTRY
        return _REGISTRY[name]
    raise UnknownStrategy(f"unknown strategy {name!r}; {did_you_mean(name, names())}")


def resolve(spec: str, kind: str | None = None) -> list[str]:
    """Parse "a,b" or "all" into registered names (each checked, with suggestions). With `kind`
    ("offline" or "online"), "all" means every strategy of that kind (the track's)."""
    if spec.strip() == "all":
        wanted = names(kind)
    else:
        wanted = [s.strip() for s in spec.split(",") if s.strip()]
    if not wanted:
        raise UnknownStrategy(f"no strategy named in {spec!r}; valid: all, {', '.join(names())}")
    for n in wanted:
        get(n)
    return wanted


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
    """Stand-in for a strategy defined in a user's file. Its code runs only in the sandbox: building one
    (`cls(space, seed=..., **params)`) starts the sandboxed process and returns its handle
    (harness.sandbox.SandboxedStrategy: propose, recommend, close)."""

    source: FileSource | None = None   # set on each stand-in
    source_class: str = ""             # the class's name in the file

    def __new__(cls, space, seed: int = 0, **params):
        from harness.isolation import make_strategy

        return make_strategy(cls, space, seed, params)


def source_of(cls) -> str:
    """Where a registered strategy comes from, in words (for clash errors)."""
    src = getattr(cls, "source", None)
    if isinstance(src, FileSource):
        return f"file {src.path} (class {cls.source_class}, sha256 {src.sha256[:12]})"
    return f"{cls.__module__}.{cls.__qualname__}"


def provenance(cls) -> dict[str, str]:
    """strategy_file, strategy_sha256 and sandboxed ("yes", "no"; "" for the project's own strategies run
    in-process) of a registered strategy, for summary.csv and bench.json."""
    src = getattr(cls, "source", None)
    if isinstance(src, FileSource):
        from harness import sandbox

        return {"strategy_file": src.filename, "strategy_sha256": src.sha256,
                "sandboxed": "yes" if sandbox.sandboxed() else "no"}
    from harness.isolation import default_mode

    if default_mode() == "process":
        from harness import sandbox

        return {"strategy_file": "", "strategy_sha256": "", "sandboxed": "yes" if sandbox.sandboxed() else "no"}
    return {"strategy_file": "", "strategy_sha256": "", "sandboxed": ""}


def _valid_name(name: str) -> bool:
    """A name the command line can select (`--strategy a,b`) and one line can show; the site escapes it."""
    return 0 < len(name) <= 100 and name == name.strip() and "," not in name and name.isprintable()


def _stand_in(entry: dict[str, str], src: FileSource) -> type[FileStrategy]:
    name = entry["name"]
    if not _valid_name(name):
        raise StrategyFileError(f"strategy file {src.path!r}: class {entry['class']} has the name {name!r}; a name is "
                                f"1 to 100 printable characters, without commas or surrounding spaces")
    if "\n" in entry["description"]:
        entry = {**entry, "description": " ".join(entry["description"].split())}
    kind = entry.get("kind") or "offline"
    if kind not in ("offline", "online"):
        raise StrategyFileError(f"strategy file {src.path!r}: class {entry['class']} reports kind {kind!r}")
    attrs = {"name": name, "description": entry["description"], "citation": entry["citation"],
             "family": entry["family"] or "other", "kind": kind, "source": src, "source_class": entry["class"],
             "__doc__": f"{entry['class']} from {src.filename} (runs in its sandbox)", "__module__": __name__}
    cls_name = "".join(c if c.isalnum() or c == "_" else "_" for c in entry["class"].split(".")[-1]) or "UserStrategy"
    return type(cls_name, (FileStrategy,), attrs)


def describe_file(path: str | Path, timeout_s: float | None | str = "default") -> list[type[FileStrategy]]:
    """The stand-ins for the Strategy classes a file defines (learned in a sandbox), without registering them."""
    from harness import sandbox
    from harness.isolation import default_timeout

    src = FileSource.read(path)
    try:
        compile(src.text, src.path, "exec")  # a syntax error is reported without starting anything
    except SyntaxError as e:
        raise StrategyFileError(f"strategy file {str(path)!r}: SyntaxError: {e.msg} (line {e.lineno})") from None
    except ValueError as e:  # e.g. a NUL byte in the source
        raise StrategyFileError(f"strategy file {str(path)!r}: {e}") from None
    timeout = default_timeout() if timeout_s == "default" else timeout_s
    try:
        entries = sandbox.describe_source(src.text, src.filename, timeout)
    except (sandbox.StrategyError, sandbox.StrategyTimeout) as e:
        raise StrategyFileError(f"strategy file {str(path)!r}: {e}") from None
    if not entries:
        raise StrategyFileError(f"strategy file {str(path)!r} defines no Strategy subclass")
    names_seen: dict[str, str] = {}
    for e in entries:
        if e["name"] in names_seen:
            raise StrategyFileError(f"strategy file {str(path)!r}: classes {names_seen[e['name']]} and {e['class']} "
                                    f"both use the name {e['name']!r}")
        names_seen[e["name"]] = e["class"]
    return [_stand_in(e, src) for e in entries]


def _check_free(cls: type[FileStrategy]) -> None:
    name = cls.name
    existing = _REGISTRY.get(name)
    if existing is None and name in BUILTIN:
        existing = get(name)
    if existing is None:
        return
    old = getattr(existing, "source", None)
    if isinstance(old, FileSource) and old.path == cls.source.path:
        return  # the same file, loaded again (perhaps edited): it replaces its own entries
    raise StrategyFileError(f"strategy name {name!r} from file {cls.source.path} (class {cls.source_class}) is "
                            f"already registered by {source_of(existing)}; rename one of them")


def register_file_strategies(stand_ins: list[type[FileStrategy]]) -> list[str]:
    for cls in stand_ins:
        _check_free(cls)
    for cls in stand_ins:
        _REGISTRY[cls.name] = cls
    return [cls.name for cls in stand_ins]


def load_file(path: str | Path) -> list[str]:
    """Register the Strategy subclasses a user's file defines, without importing it here.

    Classes decorated with @register keep their name; undecorated subclasses are registered under
    their `name` attribute or, failing that, their lower-cased class name. Returns the names added.
    Loading the same file again is harmless (unchanged: nothing to do; edited: its entries are refreshed)."""
    src = FileSource.read(path)
    known = [c for c in _REGISTRY.values() if isinstance(c, type) and issubclass(c, FileStrategy)
             and c.source is not None and c.source.path == src.path]
    if known and all(c.source.sha256 == src.sha256 for c in known):
        return [c.name for c in known]
    return register_file_strategies(describe_file(path))


def file_entries() -> list[dict[str, Any]]:
    """The registered file strategies as plain data (for worker processes: no second sandboxed import)."""
    return [{"name": c.name, "class": c.source_class, "description": c.description, "citation": c.citation,
             "family": c.family, "kind": strategy_kind(c), "path": c.source.path, "text": c.source.text, "sha256": c.source.sha256}
            for c in _REGISTRY.values() if isinstance(c, type) and issubclass(c, FileStrategy) and c.source]


def register_entries(entries: list[dict[str, Any]]) -> None:
    for e in entries:
        src = FileSource(e["path"], e["text"], e["sha256"])
        register_file_strategies([_stand_in(e, src)])
