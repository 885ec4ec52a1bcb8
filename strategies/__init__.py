"""Mixture strategies: the interface, the registry, and one module per strategy."""

from strategies.base import History, Strategy, best_observed, seed_designs
from strategies.registry import get, names, register, resolve

__all__ = ["History", "Strategy", "best_observed", "seed_designs", "get", "load_file", "names", "register", "resolve"]


def load_file(path) -> list[str]:
    """Register the Strategy classes a user's file defines (run in their sandbox; never imported here) and
    return their names: harness/sandbox/submission.py. Imported on call: the sandbox builds on this package."""
    from harness.sandbox.submission import load_file as load

    return load(path)
