"""Strategy registry: `@register("name")`, lookup with "did you mean", and the entries of users' files.

Built-in strategies are imported lazily (module path per name), so listing them or running one
does not import the others' dependencies.

A user's file (`--strategy-file`) is loaded by harness/sandbox/submission.py, which registers a stand-in
per Strategy class (`add_from_source`): classes with a `source` (path, sha256). A name that is already
taken (by a built-in or by another file) is refused, naming both sources.
"""

from __future__ import annotations

import importlib
import inspect

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
        if _has_source(existing):
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


class NameTaken(ValueError):
    """A strategy name that is already registered by another source."""


def source_of(cls) -> str:
    """Where a registered strategy comes from, in words (for clash errors)."""
    if _has_source(cls):
        src = cls.source
        return f"file {src.path} (class {cls.source_class}, sha256 {src.sha256[:12]})"
    return f"{cls.__module__}.{cls.__qualname__}"


def from_sources() -> list[type[Strategy]]:
    """The registered strategies that come from a source file of their own (a user's file: `cls.source`)."""
    return [c for c in _REGISTRY.values() if _has_source(c)]


def _has_source(cls) -> bool:
    return getattr(cls, "source", None) is not None


def _check_free(cls) -> None:
    name = cls.name
    existing = _REGISTRY.get(name)
    if existing is None and name in BUILTIN:
        existing = get(name)
    if existing is None:
        return
    if _has_source(existing) and existing.source.path == cls.source.path:
        return  # the same file, loaded again (perhaps edited): it replaces its own entries
    raise NameTaken(
        f"strategy name {name!r} from file {cls.source.path} (class {cls.source_class}) is "
        f"already registered by {source_of(existing)}; rename one of them"
    )


def add_from_source(classes: list[type[Strategy]]) -> list[str]:
    """Register classes that carry their source (`cls.source.path`; a user's file's stand-ins): each name must
    be free, or taken by the same source (which replaces its own entries). All or none are added."""
    for cls in classes:
        _check_free(cls)
    for cls in classes:
        _REGISTRY[cls.name] = cls
    return [cls.name for cls in classes]
