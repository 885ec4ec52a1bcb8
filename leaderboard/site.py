"""Render the static leaderboard site from `bench` results folders.

    render(["demo-results"], "demo-results/site")

The site is plain files with relative links (works from file:// and from any static host, e.g. a
static Hugging Face Space), Jinja2 templates with autoescaping on, one local script and one local
stylesheet (no CDN), SVG pictures shown through <img>. Nothing in it depends on the time of
rendering, so the same inputs give byte-identical output; the dates shown are those of the runs.
The site is built in a temporary folder next to the target and moved into place at the end, so a
failed render never leaves half a site; the hidden folders a killed render left there (its build
folder `.SITE.tmp-PID-*`, the previous site `.SITE.old-PID`) are removed when the next render starts,
once their process is gone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import jinja2

from harness.folders import built_aside
from leaderboard import plots
from leaderboard import online as onl
from leaderboard import weights_picture
from leaderboard.cross_base import PAIR_KINDS, cross_base_table, identity, rankable_rlvr
from leaderboard.data import Results, budget_label, load_results
from leaderboard.parallel import run_all, workers
from leaderboard.results_folder import ResultsError
from leaderboard.site_commands import bench_commands, submit_commands
from leaderboard.site_data import render_provenance, site_json, write_downloads
from leaderboard.site_online import ONLINE_LABEL, online_strategy_rows, online_suite_views
from leaderboard.site_views import (
    BEST_LEGEND,
    REFERENCE,
    best_marks,
    fmt,
    fmt_p,
    is_finite,
    slug,
    sort_key,
    suite_strategy_matrix,
    suite_view,
    table_rows,
    track_overview,
)
from leaderboard.stats import Stats, compute, records

PKG = Path(__file__).resolve().parent
MANIFEST = "site.json"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PKG / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(fmt=fmt, sortkey=sort_key, fmt_p=fmt_p, slug=slug, blabel=budget_label)
    env.globals["best_legend"] = BEST_LEGEND  # macros are imported without the page's context
    env.tests["finite"] = is_finite
    env.tests["startingwith"] = lambda value, prefix: str(value).startswith(prefix)
    return env


def build(results: Results, st: Stats, out: Path) -> list[str]:
    env = _env()
    (out / "assets").mkdir(parents=True)
    (out / "plots").mkdir()
    (out / "data").mkdir()
    (out / "suites").mkdir()
    (out / "strategies").mkdir()
    for f in ("leaderboard.css", "leaderboard.js", "favicon.svg"):
        shutil.copyfile(PKG / "static" / f, out / "assets" / f)

    color = plots.colors(results.strategy_names)
    budgets = sorted(set(st.table["budget"]))
    default_budget = max(budgets) if budgets else 0
    families = sorted(set(st.table["family"]))
    prov = render_provenance(results)
    strategies = [
        {
            **results.strategies[n],
            "href": f"strategies/{slug(n)}.html",
            "slug": slug(n),
            "is_ref": n == REFERENCE,
            "color": color[n],
        }
        for n in results.strategy_names
    ]

    best = best_marks(st.suite_evidence)
    # pool (all measured) first; every budget and family: overall_rank.csv
    headline = sorted(
        (r for r in st.rankings if r.budget == default_budget), key=lambda r: (r.track != "pool", r.track)
    )
    tracks = [r for r in headline if r.family == "all"]
    first = None
    if len(st.overall):
        first = st.overall[(st.overall["track"] == st.overall["track"].iloc[0]) & (st.overall["suite_family"] == "all")]
    with_online = st.online is not None and len(st.online.suites) > 0

    def weights_plot(n: str) -> str:
        p = out / "plots" / f"weights-{slug(n)}.svg"
        return f"../plots/{p.name}" if weights_picture.weights(st.weights, n, results.suite_names, p) else ""

    # the views and their pictures (the costly part) side by side over the cores (leaderboard/parallel.py), costliest
    # first; each writes its own files and returns its view, put together in order as the loop used to
    downloads, online_views, *parts = run_all(
        [
            lambda: write_downloads(results, st, out / "data", with_online=with_online),
            lambda: online_suite_views(results, st, out) if st.online is not None else [],
            *(lambda n=n: suite_view(results, st, n, color, default_budget, out) for n in results.suite_names),
            *(
                lambda r=r: track_overview(
                    r,
                    st,
                    results,
                    strategies,
                    best,
                    out,
                    [f for f in headline if f.track == r.track and f.family != "all"],
                )
                for r in tracks
            ),
            lambda: plots.rank_chart(first, color, out / "plots" / "ranks.svg") if first is not None else None,
            *(lambda n=n: weights_plot(n) for n in results.strategy_names),
        ]
    )
    n_suites, n_tracks = len(results.suite_names), len(tracks)
    suite_views, track_views = parts[:n_suites], parts[n_suites : n_suites + n_tracks]
    weight_plots = {n: p for n, p in zip(results.strategy_names, parts[n_suites + n_tracks + 1 :]) if p}
    # suites that cannot rank, across tracks, in their own section at the end of the index
    apart_names = sorted({n for tv in track_views for n, _ in tv["apart"]})
    apart_why = {n: why for tv in track_views for n, why in tv["apart"]}
    apart_strats = sorted(set(st.table[st.table["suite"].isin(apart_names)]["strategy"]))
    apart_matrix = suite_strategy_matrix(st.table, apart_names, apart_strats, default_budget, best)
    apart_view = {
        "suites": [{"name": n, "why": apart_why[n], "href": f"suites/{slug(n)}.html"} for n in apart_names],
        "rows": [
            {**next((x for x in strategies if x["name"] == n), {"name": n}), "cells": apart_matrix[n]}
            for n in apart_strats
        ],
    }
    downloads = [(p, d, (out / p).stat().st_size) for p, d in downloads]

    corr = records(st.rank_corr)
    overall_by = {}
    for r in records(st.overall):
        overall_by.setdefault(r["strategy"], {})[f"{r['track']} {r['budget']}"] = r

    # suites the judge keeps out of the rankings: their correlations are flagged (mostly noise)
    cannot_rank = sorted(sv["name"] for sv in suite_views if not sv["card"]["ranks"])
    common = {
        "prov": prov,
        "strategies": strategies,
        "suites": suite_views,
        "budgets": budgets,
        "cannot_rank": cannot_rank,
        "best_legend": BEST_LEGEND,
        "default_budget": default_budget,
        "families": families,
        "warnings": results.warnings,
        "min_pairs": onl.MIN_PAIRS,
    }

    def page(template: str, path: str, root: str, **ctx) -> None:
        html = env.get_template(template).render(root=root, page_path=path, **common, **ctx)
        (out / path).write_text(html)

    page(
        "index.html",
        "index.html",
        "",
        corr=[c for c in corr if c["budget"] == default_budget],
        has_rank_plot=len(st.overall) > 0,
        track_views=track_views,
        apart=apart_view,
        online_views=online_views,
        online_rows={v["name"]: online_strategy_rows(st.online, v["name"], "") for v in online_views},
        online_label=ONLINE_LABEL,
        rank_plot_track=str(st.overall["track"].iloc[0]) if len(st.overall) else "",
    )
    page("data.html", "data.html", "", downloads=downloads, notes=results.notes)
    cross_names = [n for n in rankable_rlvr(results.suites) if n in set(results.suite_names)]
    page(
        "cross_base.html",
        "cross-base.html",
        "",
        cross=records(cross_base_table(st.rank_corr, results.suites)),
        cross_suites=[
            {"name": n, "href": f"suites/{slug(n)}.html", "identity": identity(results.suites[n])} for n in cross_names
        ],
        pair_kinds=PAIR_KINDS,
    )
    page("submit.html", "submit.html", "", commands=submit_commands(results))
    for sv in suite_views:
        srows = table_rows(st.table[st.table["suite"] == sv["name"]], results, "../", best)
        scorr = [c for c in corr if sv["name"] in (c["suite_a"], c["suite_b"])]
        page(
            "suite.html",
            f"suites/{sv['slug']}.html",
            "../",
            suite=sv,
            rows=srows,
            corr=scorr,
            commands=bench_commands(results, suite=sv["name"]),
        )
    for ov in online_views:
        page(
            "online.html",
            f"suites/{ov['slug']}.html",
            "../",
            suite=ov,
            online_label=ONLINE_LABEL,
            rows=online_strategy_rows(st.online, ov["name"], "../"),
        )
    for s in strategies:
        srows = table_rows(st.table[st.table["strategy"] == s["name"]], results, "../", best)
        page(
            "strategy.html",
            f"strategies/{s['slug']}.html",
            "../",
            strategy=s,
            rows=srows,
            weights_plot=weight_plots.get(s["name"], ""),
            overall=overall_by.get(s["name"], {}),
            online=[
                {"name": ov["name"], "href": ov["href"]}
                for ov in online_views
                if s["name"] in set(st.online.table.loc[st.online.table["suite"] == ov["name"], "strategy"])
            ],
            online_label=ONLINE_LABEL,
            commands=bench_commands(results, strategy=s["name"]),
        )

    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    manifest = {
        "generator": "modomodo leaderboard",
        "modomodo_version": prov["renderer_version"],
        "results_versions": prov["versions"],
        "git_shas": prov["git_shas"],
        "run_dates": prov["dates"],
        "suites": {n: p for n, p, _ in prov["protocols"]},
        "strategies": results.strategy_names,
        "files": {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in files},
    }
    (out / MANIFEST).write_text(site_json(manifest))
    return files + [MANIFEST]


_LEFTOVER = re.compile(r"\.(?P<site>.+)\.(?:tmp-(?P<pid>\d+)-.+|old-(?P<oldpid>\d+)|(?P<legacy>[a-z0-9_]{8}))$")
LEGACY_LEFTOVER_AGE_S = 3600.0  # build folders from before they carried their pid: removed once this old


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(out: Path) -> list[Path]:
    """Remove the hidden folders killed renders of `out` left beside it (only those whose render
    process is gone: a render running at the same time keeps its build folder). Returns them."""
    import time

    removed = []
    if not out.parent.is_dir():
        return removed
    for p in out.parent.iterdir():
        m = _LEFTOVER.match(p.name)
        if not m or m.group("site") != out.name or not p.is_dir() or p.is_symlink():
            continue
        pid = m.group("pid") or m.group("oldpid")
        if pid is not None:
            stale = int(pid) != os.getpid() and not _pid_alive(int(pid))
        else:
            try:
                stale = time.time() - p.stat().st_mtime > LEGACY_LEFTOVER_AGE_S
            except FileNotFoundError:
                continue
        if stale:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def render(results_dirs: list[str | Path], out: str | Path) -> Path:
    """Render the site into `out` (replacing a previous site there); returns the index.html path."""
    out = Path(out).resolve()
    workers()  # a bad MODOMODO_RENDER_WORKERS is refused before any work
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise ResultsError(
            f"{str(out)!r} exists and is not a leaderboard site (no {MANIFEST}); choose an empty "
            f"or new folder for --out"
        )
    clean_leftovers(out)
    results = load_results([Path(d) for d in results_dirs])
    for d in results.folders:
        if out == d.resolve():
            raise ResultsError("--out must not be a results folder")
    st = compute(results)
    with built_aside(out, prefix=f".{out.name}.tmp-{os.getpid()}-") as tmp:
        build(results, st, tmp)
        os.chmod(tmp, 0o755)
    return out / "index.html"
