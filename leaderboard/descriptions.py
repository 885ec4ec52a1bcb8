"""What the site says beside the numbers: each suite's card and what its signal blocks say about ranking, and
each strategy's family, description, citation and (for a strategy from a file) provenance.

A suite's card comes from the folder bench.json names, else from the registered suite of that name; a strategy's
description from its class where it is importable here, else from bench.json (a strategy from a file is always
described by bench.json: that is the code that ran).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from leaderboard.results_folder import is_online, live_suite_name


def card_for(entry: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The suite's card: from the folder bench.json names, else the registered suite of that name."""
    candidates = []
    # an online suite's card is the card of the live suite it trained on
    want = live_suite_name(entry) if is_online(entry) else entry.get("name")
    if entry.get("path"):
        candidates.append(Path(entry["path"]) / "card.yaml")
    try:
        from harness import suites

        folder = suites.registered().get(want or "")
        if folder is not None:
            candidates.append(Path(folder) / "card.yaml")
    except Exception:  # noqa: BLE001 - a broken suite path must not stop the leaderboard
        pass
    for c in candidates:
        if c.is_file():
            text = c.read_text()
            try:
                card = yaml.safe_load(text) or {}
            except yaml.YAMLError:
                continue
            if isinstance(card, dict) and str(card.get("name", want)) == want:
                return card, text
    return {}, ""


def signal_view(card: dict[str, Any]) -> dict[str, Any]:
    """The card's `signal:` block (recorded suites, harness/factory/export.py): can the suite rank mixtures?
    `can_rank` is None for suites without one (synthetic suites: exact; the paper's: one seed)."""
    signal = card.get("signal") if isinstance(card.get("signal"), dict) else {}
    rows = []
    for metric, s in signal.items():
        if not isinstance(s, dict):
            continue
        rows.append(
            {
                "metric": str(metric),
                "snr_mean": s.get("snr_mean"),
                "snr_mean_ci": s.get("snr_mean_ci"),
                "ci_level": s.get("ci_level", 0.9),
                "snr_single": s.get("snr_single"),
                "mixtures": s.get("mixtures"),
                "seeds": s.get("seeds_per_mixture"),
                "target": s.get("target", 3.0),
                "can_rank": bool(s.get("can_rank")),
                "by_seeds": s.get("by_seeds") or [],
                "seeds_for_target": s.get("seeds_for_target"),
            }
        )
    main = next((r for r in rows if r["metric"] == card.get("metric")), None)
    return {
        "signal": rows,
        "can_rank": None if main is None else main["can_rank"],
        "signal_main": main,
        "signal_notes": str(card.get("signal_notes") or ""),
        **fidelity_signal_view(card),
    }


def fidelity_signal_view(card: dict[str, Any]) -> dict[str, Any]:
    """The card's `fidelities:` block (a multi-fidelity recorded suite, `export_suite`): per objective, the SNR
    of the per-mixture mean at every fidelity and the Spearman correlation of per-mixture means with full
    fidelity (does a partial run rank the mixtures as the full one does?). Empty for other suites."""
    block = card.get("fidelities") if isinstance(card.get("fidelities"), dict) else {}
    levels = [float(f) for f in block.get("levels") or []]
    signal = block.get("signal") if isinstance(block.get("signal"), dict) else {}
    corr = block.get("rank_correlation") if isinstance(block.get("rank_correlation"), dict) else {}
    if not levels or not signal:
        return {"fidelity_levels": [], "fidelity_signal": []}

    def at(d: dict, f: float) -> dict:  # keys are the levels as the card wrote them ("0.25", "1.0")
        v = d.get(str(f)) if isinstance(d.get(str(f)), dict) else d.get(f"{f:g}")
        return v if isinstance(v, dict) else {}

    metrics = list(dict.fromkeys(m for f in levels for m in at(signal, f)))
    metrics.sort(key=lambda m: m != card.get("metric"))  # the suite's objective first
    rows = []
    for m in metrics:
        cells = []
        for f in levels:
            s = at(signal, f).get(m) or {}
            r = at(corr, f).get(m) or {}
            cells.append(
                {
                    "fidelity": f,
                    "snr_mean": s.get("snr_mean"),
                    "snr_mean_ci": s.get("snr_mean_ci"),
                    "seeds": s.get("seeds_per_mixture"),
                    "can_rank": s.get("can_rank"),
                    "spearman": None if f == max(levels) else r.get("spearman_with_full"),
                }
            )
        rows.append({"metric": str(m), "primary": m == card.get("metric"), "cells": cells})
    return {"fidelity_levels": levels, "fidelity_signal": rows}


def strategy_info(name: str, fallback: dict[str, Any] | None, unsandboxed: bool = False) -> dict[str, Any]:
    """Family, description and citation: from the strategy class when importable, else bench.json; and, for a
    strategy from a file, its provenance (file, sha256, sandboxed) from bench.json and summary.csv."""
    fallback = fallback or {}
    prov = {
        "file": str(fallback.get("file") or ""),
        "sha256": str(fallback.get("sha256") or ""),
        "sandboxed": "no" if unsandboxed else str(fallback.get("sandboxed") or ""),
    }
    if prov["file"]:  # a strategy from a file: bench.json describes the code that ran
        return {
            "name": name,
            "description": str(fallback.get("description") or ""),
            "citation": str(fallback.get("citation") or ""),
            "family": str(fallback.get("family") or "other"),
            "source": "file",
            **prov,
        }
    try:
        import strategies

        cls = strategies.get(name)
        return {
            "name": name,
            "description": str(cls.description or fallback.get("description", "")),
            "citation": str(cls.citation or fallback.get("citation", "")),
            "family": str(cls.family or fallback.get("family") or "other"),
            "source": "class",
            "limitations": str(getattr(cls, "limitations", "") or ""),
            **prov,
        }
    except Exception:  # noqa: BLE001 - not importable here (e.g. came from a --strategy-file)
        return {
            "name": name,
            "description": str(fallback.get("description") or ""),
            "citation": str(fallback.get("citation") or ""),
            "family": str(fallback.get("family") or "other"),
            "source": "bench.json",
            **prov,
        }
