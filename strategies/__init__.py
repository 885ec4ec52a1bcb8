"""Mixture strategies: the interface, the registry, and one module per strategy."""

from strategies.base import History, Strategy, best_observed, seed_designs
from strategies.registry import get, load_file, names, register, resolve

__all__ = ["History", "Strategy", "best_observed", "seed_designs", "get", "load_file", "names", "register", "resolve"]
