"""Strategy registry: `@register("name")`, lookup with "did you mean", and loading a user's file.

Built-in strategies are imported lazily (module path per name), so listing them or running one
does not import the others' dependencies.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from harness.mixture import did_you_mean
from strategies.base import Strategy

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
}

_REGISTRY: dict[str, type[Strategy]] = {}


class UnknownStrategy(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return self.args[0]


def register(name: str):
    """Class decorator: make a Strategy subclass available under `name`."""

    def deco(cls: type[Strategy]) -> type[Strategy]:
        if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
            raise TypeError(f"@register({name!r}) must decorate a Strategy subclass, got {cls!r}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"strategy name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def names() -> list[str]:
    return sorted(set(BUILTIN) | set(_REGISTRY))


def get(name: str) -> type[Strategy]:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        importlib.import_module(module)  # the module's @register fills _REGISTRY
        return _REGISTRY[name]
    raise UnknownStrategy(f"unknown strategy {name!r}; {did_you_mean(name, names())}")


def resolve(spec: str) -> list[str]:
    """Parse "a,b" or "all" into registered names (each checked, with suggestions)."""
    wanted = names() if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    if not wanted:
        raise UnknownStrategy(f"no strategy named in {spec!r}; valid: all, {', '.join(names())}")
    for n in wanted:
        get(n)
    return wanted


def load_file(path: str | Path) -> list[str]:
    """Import a user's Python file and register the Strategy subclasses it defines.

    Classes decorated with @register keep their name; undecorated subclasses are registered under
    their `name` attribute or, failing that, their lower-cased class name. Returns the names added.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"strategy file {str(path)!r} does not exist")
    module_name = "modomodo_user_" + path.stem.replace("-", "_") + "_" + str(abs(hash(str(path))) % 10**8)
    if module_name in sys.modules:
        module = sys.modules[module_name]
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import strategy file {str(path)!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[module_name]
            raise
    added = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if issubclass(obj, Strategy) and obj is not Strategy and obj.__module__ == module_name:
            # only a name set on the class itself counts: a subclass of a built-in inherits its name
            name = obj.__dict__.get("name") or obj.__name__.lower()
            register(name)(obj)
            added.append(name)
    if not added:
        raise ValueError(f"strategy file {str(path)!r} defines no Strategy subclass")
    return added
