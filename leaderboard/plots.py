"""The site's pictures, as SVG files written by matplotlib, byte-identical for the same inputs.

Determinism: no date in the metadata, a fixed hash salt for the ids matplotlib generates, text kept as
text (no font subsetting). Names are drawn as plain text (math parsing is off), and the SVGs are
shown through <img>, where a browser never runs scripts, so a hostile strategy name stays inert.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RC = {
    "svg.hashsalt": "modomodo-leaderboard",
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#8a929b",
    "axes.labelcolor": "#2b2f33",
    "xtick.color": "#4a5158",
    "ytick.color": "#4a5158",
    "legend.frameon": False,
    "path.simplify": False,
}
PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
]
DATASET_PALETTE = [
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
    "#eeca3b",
]
REFERENCE = "uniform"
# At most 8 colours a reader can tell apart in one picture (Okabe & Ito's colour-blind-safe set, black for the
# 8th): the best strategies of that picture get them, the rest are drawn thin and grey, uniform dashed.
DISTINCT = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"]
GREY = "#c3c8ce"
MAX_COLOURED = len(DISTINCT)


def label(name: str, limit: int = 32) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def colors(strategies: list[str]) -> dict[str, str]:
    others = [s for s in sorted(strategies) if s != REFERENCE]
    out = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(others)}
    out[REFERENCE] = "#6b7280"
    return out


def _style(name: str, color: dict[str, str]) -> dict:
    if name == REFERENCE:
        return {"color": color[name], "linestyle": "--", "linewidth": 1.6, "marker": None, "zorder": 1}
    return {"color": color[name], "linestyle": "-", "linewidth": 1.6, "marker": "o", "markersize": 3.5, "zorder": 3}


def save_svg(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)


def focus_id(name: str) -> str:
    """The id of a strategy's line in a picture: `picture.svg#<id>` brings it forward (FOCUS_CSS)."""
    import hashlib

    return "s-" + hashlib.sha256(name.encode()).hexdigest()[:12]


# Inside the SVG: when the URL's fragment names a strategy's line (<img src="x.svg#s-...">), that line is drawn
# thick and coloured and every other strategy's grey; no script (an SVG shown through <img> runs none).
FOCUS_CSS = (
    "svg:has(g[id^='s-']:target) g[id^='s-']:not(:target) path{stroke:#d3d7dc !important;"
    "stroke-width:0.8px !important}"
    "g[id^='s-']:target path{stroke:#e4002b !important;stroke-width:3px !important}"
    "g[id^='s-']:target use{fill:#e4002b !important;stroke:#e4002b !important}"
    "svg:has(g[id^='s-']:target) g[id^='s-']:not(:target) use{fill:#d3d7dc !important;"
    "stroke:#d3d7dc !important}"
)


def _save_focusable(fig, path: Path) -> None:
    save_svg(fig, path)
    text = path.read_text()
    marker = "*{stroke-linejoin: round; stroke-linecap: butt}"
    if marker in text:
        path.write_text(text.replace(marker, marker + FOCUS_CSS, 1))


def picture_colors(final: dict[str, float]) -> dict[str, str]:
    """Colours for one picture: the MAX_COLOURED strategies with the lowest final value (then by name) in the
    distinct colours, uniform its grey, every other one GREY."""
    ranked = sorted((v if math.isfinite(v) else math.inf, n) for n, v in final.items() if n != REFERENCE)
    out = {n: GREY for n in final}
    for i, (_, n) in enumerate(ranked[:MAX_COLOURED]):
        out[n] = DISTINCT[i]
    if REFERENCE in final:
        out[REFERENCE] = "#6b7280"
    return out


def _grey_style(style: dict) -> dict:
    return {**style, "color": GREY, "linewidth": 0.9, "marker": None, "zorder": 0}


def legend_outside(ax, n: int) -> None:
    if n:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, handlelength=2.2)


def regret_vs_budget(table: pd.DataFrame, suite: str, color: dict[str, str], path: Path) -> None:
    """Mean normalised regret of the recommendation per budget, with the 95% CI as a band."""
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.3))
        t = table[table["suite"] == suite]
        top = t["budget"].max() if len(t) else 0
        final = {
            n: float(g.loc[g["budget"] == top, "nregret_mean"].mean()) if (g["budget"] == top).any() else math.inf
            for n, g in t.groupby("strategy")
        }
        color = picture_colors(final)
        names = sorted(set(t["strategy"]), key=lambda s: (color[s] == GREY, s == REFERENCE, final.get(s, math.inf), s))
        n_grey = sum(color[n] == GREY for n in names)
        grey_labelled = False
        for name in names:
            g = t[t["strategy"] == name].sort_values("budget")
            x = g["budget"].to_numpy(float)
            y, lo, hi = (g[c].to_numpy(float) for c in ("nregret_mean", "nregret_lo", "nregret_hi"))
            if color[name] == GREY:
                (ln,) = ax.plot(
                    x, y, label=None if grey_labelled else f"{n_grey} others", **_grey_style(_style(name, color))
                )
                ln.set_gid(focus_id(name))
                grey_labelled = True
                continue
            (ln,) = ax.plot(x, y, label=label(name), **_style(name, color))
            ln.set_gid(focus_id(name))
            if name != REFERENCE and len(x) > 1:
                ax.fill_between(x, lo, hi, color=color[name], alpha=0.10, linewidth=0)
        budgets = sorted(set(t["budget"]))
        ax.set_xticks(budgets)
        ax.set_xlabel("pilot-run budget")
        ax.set_ylabel("normalised regret (0 = best known)")
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(t["nregret_lo"])) if len(t) else 0.0))
        ax.set_title(label(suite, 60), loc="left", fontsize=10)
        legend_outside(ax, len(names))
        _save_focusable(fig, path)


def anytime(curves: pd.DataFrame, suite: str, budget: int, color: dict[str, str], path: Path) -> None:
    """Normalised regret of the best pilot so far versus pilot runs spent, at one budget."""
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.3))
        c = curves[(curves["suite"] == suite) & (curves["budget"] == budget)]
        final = {n: float(g.sort_values("step")["nregret_mean"].iloc[-1]) for n, g in c.groupby("strategy")}
        color = picture_colors(final)
        names = sorted(set(c["strategy"]), key=lambda s: (color[s] == GREY, final.get(s, math.inf), s))
        n_grey = sum(color[n] == GREY for n in names)
        grey_labelled = False
        for name in names:
            g = c[c["strategy"] == name].sort_values("step")
            style = {**_style(name, color), "marker": None}
            if color[name] == GREY:
                (ln,) = ax.plot(
                    g["step"],
                    g["nregret_mean"],
                    label=None if grey_labelled else f"{n_grey} others",
                    drawstyle="steps-post",
                    **_grey_style(style),
                )
                ln.set_gid(focus_id(name))
                grey_labelled = True
                continue
            (ln,) = ax.plot(g["step"], g["nregret_mean"], label=label(name), drawstyle="steps-post", **style)
            ln.set_gid(focus_id(name))
        ax.axhline(0.0, color="#8a929b", linewidth=0.8, linestyle=":", zorder=0)
        ax.set_xlabel(f"pilot runs spent (budget {budget})")
        ax.set_ylabel("regret of best pilot so far\n(0 = best known mean; below: a lucky seed)")
        ax.set_xlim(1, max(budget, 2))
        ax.set_title(f"{label(suite, 50)}: best-so-far curves", loc="left", fontsize=10)
        legend_outside(ax, len(names))
        _save_focusable(fig, path)


def rank_chart(overall: pd.DataFrame, color: dict[str, str], path: Path) -> None:
    """Mean rank over every (suite, seed) per budget; 1 is best, at the top."""
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.3))
        top = overall["budget"].max() if len(overall) else 0
        final = {
            n: float(g.loc[g["budget"] == top, "rank_mean"].mean()) if (g["budget"] == top).any() else math.inf
            for n, g in overall.groupby("strategy")
        }
        color = picture_colors(final)
        names = sorted(set(overall["strategy"]), key=lambda s: (color[s] == GREY, s == REFERENCE, final[s], s))
        n_grey = sum(color[n] == GREY for n in names)
        grey_labelled = False
        for name in names:
            g = overall[overall["strategy"] == name].sort_values("budget")
            x = g["budget"].to_numpy(float)
            if color[name] == GREY:
                ax.plot(
                    x,
                    g["rank_mean"],
                    label=None if grey_labelled else f"{n_grey} others",
                    **_grey_style(_style(name, color)),
                )
                grey_labelled = True
                continue
            ax.plot(x, g["rank_mean"], label=label(name), **_style(name, color))
            if name != REFERENCE and len(x) > 1:
                ax.fill_between(
                    x,
                    g["rank_lo"].to_numpy(float),
                    g["rank_hi"].to_numpy(float),
                    color=color[name],
                    alpha=0.10,
                    linewidth=0,
                )
        ax.set_xticks(sorted(set(overall["budget"])))
        ax.invert_yaxis()
        ax.set_xlabel("pilot-run budget")
        ax.set_ylabel("mean rank (1 = best)")
        ax.set_title("Average rank across suites and seeds", loc="left", fontsize=10)
        legend_outside(ax, len(names))
        save_svg(fig, path)


def weights(wdf: pd.DataFrame, strategy: str, suites: list[str], path: Path) -> bool:
    """Mean recommended weights per budget, one panel per suite (stacked horizontal bars)."""
    w = wdf[wdf["strategy"] == strategy]
    suites = [s for s in suites if (w["suite"] == s).any()]
    if not suites:
        return False
    with plt.rc_context({**RC, "axes.grid": False}):
        heights = [0.5 + 0.28 * w[w["suite"] == s]["budget"].nunique() for s in suites]
        fig, axes = plt.subplots(
            len(suites),
            1,
            figsize=(6.4, sum(heights) + 0.5 * len(suites)),
            squeeze=False,
            gridspec_kw={"height_ratios": heights},
        )
        for ax, suite in zip(axes[:, 0], suites):
            g = w[w["suite"] == suite]
            budgets = sorted(set(g["budget"]))
            datasets = list(dict.fromkeys(g["dataset"]))
            table = g.pivot_table(
                index="budget", columns="dataset", values="weight_mean", aggfunc="sum", fill_value=0.0
            ).reindex(index=budgets, columns=datasets, fill_value=0.0)
            left = np.zeros(len(budgets))
            for j, d in enumerate(datasets):
                vals = table[d].to_numpy(float)
                ax.barh(
                    range(len(budgets)),
                    vals,
                    left=left,
                    color=DATASET_PALETTE[j % len(DATASET_PALETTE)],
                    label=label(d, 20),
                    height=0.7,
                    edgecolor="white",
                    linewidth=0.5,
                )
                left += vals
            ax.set_yticks(range(len(budgets)), [f"budget {b}" for b in budgets])
            ax.set_xlim(0, 1)
            ax.set_title(label(suite, 60), loc="left", fontsize=9)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, handlelength=1.2)
            ax.invert_yaxis()
        axes[-1, 0].set_xlabel("mean recommended weight over seeds")
        fig.subplots_adjust(hspace=0.9)
        save_svg(fig, path)
    return True


def snr_by_seeds(curve: list[dict], metric: str, target: float, seeds_for_target: int | None, path: Path) -> bool:
    """A recorded suite's SNR of the per-mixture mean on its first k seeds (band: its interval), the
    target as a dashed line, and the √(1 + k·σ²_b/σ²_w) law fitted at the deepest point, extended to
    the seeds it expects to need: how far the suite is from being able to rank, in seeds."""
    pts = [c for c in curve or [] if finite(c.get("seeds")) and finite(c.get("snr_mean"))]
    if len(pts) < 2:
        return False
    k = np.array([float(c["seeds"]) for c in pts])
    y = np.array([float(c["snr_mean"]) for c in pts])
    ci = [c.get("snr_mean_ci") or [c["snr_mean"], c["snr_mean"]] for c in pts]
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        ax.fill_between(
            k, [c[0] for c in ci], [c[1] for c in ci], color=PALETTE[0], alpha=0.15, linewidth=0, label="90% interval"
        )
        ax.plot(k, y, color=PALETTE[0], marker="o", markersize=3.5, linewidth=1.6, label=f"measured ({label(metric)})")
        ratio = (y[-1] ** 2 - 1.0) / k[-1]
        if ratio > 0:
            reach = max(k[-1], float(seeds_for_target or 0)) * 1.15
            kk = np.linspace(1.0, reach, 60)
            ax.plot(
                kk,
                np.sqrt(1.0 + kk * ratio),
                color="#6b7280",
                linestyle=":",
                linewidth=1.4,
                label="√(1 + k·σ²b/σ²w), fitted at the last point",
            )
        ax.axhline(target, color=PALETTE[1], linestyle="--", linewidth=1.2, label=f"target {target:g}")
        ax.set_xlabel("seeds per mixture (the first k of each)")
        ax.set_ylabel("SNR of the per-mixture mean")
        ax.set_ylim(bottom=0)
        title = f"{label(metric)}: {y[-1]:.2f} at {int(k[-1])} seeds"
        if seeds_for_target and seeds_for_target > k[-1]:
            title += f"; {target:g} expected at {seeds_for_target}"
        ax.set_title(title, loc="left", fontsize=10)
        legend_outside(ax, 1)
        save_svg(fig, path)
    return True


def finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def cd_diagram(ranking, path: Path) -> bool:
    """Critical-difference diagram (Demšar 2006) of one track at one budget: average ranks on an axis
    (1 = best, left), strategies labelled left and right, a bar joining each group whose ranks differ
    by less than Nemenyi's CD, and the CD itself drawn to scale. False when there is nothing to draw."""
    t = ranking.table
    if t is None or len(t) < 2:
        return False
    names, ranks = list(t["strategy"]), t["rank_mean"].to_numpy(float)
    k = len(names)
    half = (k + 1) // 2
    rows = max(half, k - half)
    with plt.rc_context({**RC, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(7.2, 1.3 + 0.26 * rows))
        lo, hi = 1, max(k, 2)
        ax.set_xlim(lo - 0.2 - 0.9 * (hi - lo) * 0.35, hi + 0.2 + 0.9 * (hi - lo) * 0.35)
        ax.set_ylim(-(rows + 1.6), 1.6)
        ax.axis("off")
        ax.hlines(0, lo, hi, color="#333", linewidth=1)
        for v in range(lo, hi + 1):
            ax.vlines(v, 0, 0.18, color="#333", linewidth=0.8)
            ax.text(v, 0.32, str(v), ha="center", va="bottom", fontsize=7)
        left_x, right_x = lo - 0.15 - (hi - lo) * 0.05, hi + 0.15 + (hi - lo) * 0.05
        for i, (n, r) in enumerate(zip(names, ranks)):
            if i < half:
                y = -(i + 1) * 1.0
                ax.plot([r, r, left_x], [0, y, y], color="#555", linewidth=0.7)
                ax.text(left_x - 0.05, y, f"{label(n, 22)} ({r:.2f})", ha="right", va="center", fontsize=7)
            else:
                y = -(k - i) * 1.0
                ax.plot([r, r, right_x], [0, y, y], color="#555", linewidth=0.7)
                ax.text(right_x + 0.05, y, f"({r:.2f}) {label(n, 22)}", ha="left", va="center", fontsize=7)
        for j, g in enumerate(ranking.groups):
            gr = [ranks[names.index(n)] for n in g]
            y = -0.35 - 0.22 * j
            ax.hlines(y, min(gr) - 0.03, max(gr) + 0.03, color="#c0392b", linewidth=2.2)
        if math.isfinite(ranking.cd):
            ax.hlines(1.15, lo, min(lo + ranking.cd, hi + 0.5), color="#333", linewidth=1.5)
            ax.text(
                lo,
                1.3,
                f"CD = {ranking.cd:.2f} (Nemenyi, α = 0.05, N = {ranking.n_blocks} suites)",
                fontsize=7,
                va="bottom",
            )
        p = ranking.friedman_p
        ax.set_title(
            f"{ranking.track} track, budget {ranking.budget}: average rank over {len(ranking.suites)} "
            f"suite(s) that can rank; Friedman p = {p:.2g}"
            if math.isfinite(p)
            else f"{ranking.track} track, budget {ranking.budget}",
            loc="left",
            fontsize=8,
        )
        save_svg(fig, path)
    return True


def study_history(
    traj: pd.DataFrame,
    suite: str,
    strategy: str,
    budget: int,
    seed: int,
    best: float,
    worst: float,
    maximize: bool,
    path: Path,
) -> bool:
    """One study's pilots, Optuna-dashboard style: each pilot's normalised regret in the order run (dots), and
    the best so far (a step line). False when the study has no pilots."""
    t = traj[
        (traj["suite"] == suite) & (traj["strategy"] == strategy) & (traj["budget"] == budget) & (traj["seed"] == seed)
    ].sort_values("step")
    if t.empty:
        return False
    span = abs(best - worst) or 1.0
    val = pd.to_numeric(t["value"], errors="coerce").to_numpy(float)
    bsf = pd.to_numeric(t["best_so_far"], errors="coerce").to_numpy(float)
    reg = ((best - val) if maximize else (val - best)) / span
    breg = ((best - bsf) if maximize else (bsf - best)) / span
    steps = t["step"].to_numpy(int) + 1
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        ax.scatter(steps, reg, s=14, color=DISTINCT[0], zorder=3, label="pilot run (one seed)")
        ax.plot(steps, breg, drawstyle="steps-post", color=DISTINCT[1], linewidth=1.6, label="best so far")
        ax.axhline(0.0, color="#8a929b", linewidth=0.8, linestyle=":", zorder=0)
        ax.set_xlabel("pilot run")
        ax.set_ylabel("normalised regret\n(0 = best known mean)")
        ax.set_title(
            f"{label(suite, 40)}: one study of {label(strategy, 24)} (budget {budget}, seed {seed})",
            loc="left",
            fontsize=9,
        )
        legend_outside(ax, 2)
        save_svg(fig, path)
    return True


MAX_MIXTURES_DRAWN = 200


def mixtures_tried(
    traj: pd.DataFrame, suite: str, datasets: list[str], best: float, worst: float, maximize: bool, path: Path
) -> bool:
    """Parallel coordinates of the distinct mixtures the strategies tried on a suite (one axis per dataset weight),
    each line coloured by the mean normalised regret of its pilot runs (dark = low regret, drawn on top). At most
    MAX_MIXTURES_DRAWN, an even, deterministic selection by regret when there are more."""
    import json as _json

    t = traj[(traj["suite"] == suite) & (traj["status"].astype(str) == "ok")]
    if t.empty or len(datasets) < 2:
        return False
    val = pd.to_numeric(t["value"], errors="coerce")
    g = pd.DataFrame({"mixture": t["mixture"].astype(str), "value": val}).dropna().groupby("mixture")["value"].mean()
    rows = []
    for text, v in g.items():
        try:
            m = _json.loads(text)
        except (TypeError, ValueError):
            continue
        w = [float(m.get(d, 0.0)) for d in datasets]
        rows.append((((best - v) if maximize else (v - best)) / (abs(best - worst) or 1.0), w))
    if not rows:
        return False
    rows.sort(key=lambda r: (-r[0], r[1]))  # worst first, so the best are drawn last, on top
    if len(rows) > MAX_MIXTURES_DRAWN:
        idx = np.linspace(0, len(rows) - 1, MAX_MIXTURES_DRAWN).round().astype(int)
        rows = [rows[i] for i in sorted(set(idx.tolist()))]
    regrets = np.array([r[0] for r in rows])
    lo, hi = float(np.quantile(regrets, 0.02)), float(np.quantile(regrets, 0.98))
    cmap = plt.get_cmap("viridis")  # low regret dark
    with plt.rc_context({**RC, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        x = np.arange(len(datasets))
        norm = matplotlib.colors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-9)
        for r, w in rows:
            ax.plot(x, w, color=cmap(norm(r)), linewidth=0.8, alpha=0.7)
        for xi in x:
            ax.axvline(xi, color="#8a929b", linewidth=0.6, zorder=0)
        ax.set_xticks(x, [label(d, 14) for d in datasets], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("weight")
        ax.set_title(
            f"{label(suite, 40)}: {len(rows)} mixtures tried" + (f" (of {len(g)})" if len(g) > len(rows) else ""),
            loc="left",
            fontsize=9,
        )
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        cb = fig.colorbar(sm, ax=ax, fraction=0.04, pad=0.02)
        cb.set_label("mean pilot regret (low = good)", fontsize=8)
        save_svg(fig, path)
    return True
