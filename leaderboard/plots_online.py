"""The online track's pictures (leaderboard/plots.py's style and saving): each domain's weight by
training step, and score against compute beside the offline strategies.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from leaderboard.plots import (
    DATASET_PALETTE,
    DISTINCT,
    GREY,
    PALETTE,
    RC,
    finite,
    label,
    legend_outside,
    plt,
    save_svg,
)


def online_weights(wdf: pd.DataFrame, suite: str, strategies: list[str], path: Path) -> bool:
    """The online track's weight trajectories: one panel per strategy, each domain's weight (mean over seeds) at
    every training step, stacked, so a panel reads as how the prompts were split as training went on."""
    w = wdf[wdf["suite"] == suite] if len(wdf) else wdf
    strategies = [s for s in strategies if len(w) and (w["strategy"] == s).any()]
    if not strategies:
        return False
    domains = list(dict.fromkeys(w["domain"]))
    cols = min(len(strategies), 2)
    rows = math.ceil(len(strategies) / cols)
    with plt.rc_context({**RC, "axes.grid": False}):
        fig, axes = plt.subplots(rows, cols, figsize=(6.4, 0.4 + 2.0 * rows), squeeze=False, sharex=True, sharey=True)
        for ax, name in zip(axes.flat, strategies):
            g = (
                w[w["strategy"] == name]
                .pivot_table(index="step", columns="domain", values="weight_mean", aggfunc="first")
                .reindex(columns=domains)
                .fillna(0.0)
            )
            steps = g.index.to_numpy(float)
            ax.stackplot(
                steps,
                *(g[d].to_numpy(float) for d in domains),
                colors=[DATASET_PALETTE[j % len(DATASET_PALETTE)] for j in range(len(domains))],
                labels=[label(d, 20) for d in domains],
                linewidth=0.3,
                edgecolor="white",
            )
            n = int(w.loc[w["strategy"] == name, "n"].max())
            ax.set_title(f"{label(name, 28)} ({n} seed{'s' if n != 1 else ''})", loc="left", fontsize=9)
            ax.set_ylim(0, 1)
            ax.set_xlim(steps.min(), max(steps.max(), steps.min() + 1))
        for ax in axes.flat[len(strategies) :]:
            ax.set_visible(False)
        for ax in axes[-1, :]:
            ax.set_xlabel("training step")
        for ax in axes[:, 0]:
            ax.set_ylabel("weight")
        handles, labels_ = axes.flat[0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels_,
            loc="upper left",
            bbox_to_anchor=(1.0, 0.95),
            fontsize=7.5,
            handlelength=1.2,
            title="domain",
            title_fontsize=8,
        )
        fig.suptitle(f"{label(suite, 60)}: weights by step, mean over seeds", x=0.01, ha="left", fontsize=10)
        fig.tight_layout()
        save_svg(fig, path)
    return True


ONLINE_SPREAD = 0.12  # run-equivalents between neighbouring online strategies, all at ≈1, so each can be read


def score_vs_compute(online: list[dict], offline: list[dict], uniform: float | None, metric: str, path: Path) -> bool:
    """Mean score [95% CI] against compute in run-equivalents: each online strategy at its measured cost (≈1),
    each offline strategy at B + 1 for budget B (B pilots, then the run of its recommendation); the offline
    uniform mixture as a dashed line. Points: dicts with name, x, mean, lo, hi (offline ones also budget)."""
    if not online and not offline:
        return False
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.5))
        mid = (len(online) - 1) / 2
        for i, p in enumerate(online):
            x = float(p["x"]) + (i - mid) * ONLINE_SPREAD
            ax.errorbar(
                [x],
                [p["mean"]],
                yerr=_yerr(p),
                fmt="D",
                markersize=5,
                color=DISTINCT[i % len(DISTINCT)],
                capsize=2.5,
                linewidth=1.2,
                label=f"{label(p['name'], 24)} (online)",
                zorder=4,
            )
        final = {}
        for p in offline:
            final[p["name"]] = max(
                final.get(p["name"], -math.inf), float(p["mean"]) if finite(p["mean"]) else -math.inf
            )
        ranked = sorted(final, key=lambda n: (-final[n], n))
        coloured = ranked[:4]  # the best offline strategies coloured, the rest thin and grey: a few read, all drawn
        grey_labelled = False
        for p in sorted(offline, key=lambda p: (p["name"] in coloured, p["name"], p["x"])):
            if p["name"] in coloured:
                j = coloured.index(p["name"])
                style = {
                    "fmt": "o",
                    "markersize": 4.5,
                    "color": PALETTE[(j + 4) % len(PALETTE)],
                    "zorder": 3,
                    "label": f"{label(p['name'], 24)} (offline)"
                    if p["x"] == min(q["x"] for q in offline if q["name"] == p["name"])
                    else None,
                }
            else:
                n_grey = len(ranked) - len(coloured)
                style = {
                    "fmt": "o",
                    "markersize": 3,
                    "color": GREY,
                    "zorder": 2,
                    "label": None if grey_labelled else f"{n_grey} other offline",
                }
                grey_labelled = True
            ax.errorbar([float(p["x"])], [p["mean"]], yerr=_yerr(p), capsize=2, linewidth=0.9, **style)
        if uniform is not None and finite(uniform):
            ax.axhline(
                float(uniform),
                color="#6b7280",
                linestyle="--",
                linewidth=1.2,
                label="uniform mixture (offline)",
                zorder=1,
            )
        xs = [float(p["x"]) for p in online + offline]
        ax.set_xlim(min(xs) - 0.5, max(xs) + 0.8)
        ticks = sorted({round(float(p["x"])) for p in online + offline} | {1})
        ax.set_xticks(ticks)
        ax.set_xlabel("compute (run-equivalents: online = 1 + overhead; offline = budget + 1)")
        ax.set_ylabel(f"{label(metric)} (mean, 95% CI)")
        ax.set_title(f"{label(metric)} against compute", loc="left", fontsize=10)
        legend_outside(ax, 1)
        save_svg(fig, path)
    return True


def _yerr(p: dict) -> list[list[float]]:
    m, lo, hi = (float(p[k]) if finite(p[k]) else math.nan for k in ("mean", "lo", "hi"))
    if not (finite(m) and finite(lo) and finite(hi)):
        return [[0.0], [0.0]]
    return [[max(0.0, m - lo)], [max(0.0, hi - m)]]
