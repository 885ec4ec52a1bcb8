"""Mixture strategies: the interface, the registry, and one module per strategy.

A strategy from a user's file is loaded by harness/sandbox/submission.py (`load_file`): it runs only in
its sandbox, which builds on this package, not the other way round.
"""

from strategies.base import History, Strategy, best_observed, seed_designs
from strategies.registry import get, names, register, resolve

__all__ = ["History", "Strategy", "best_observed", "seed_designs", "get", "names", "register", "resolve"]
