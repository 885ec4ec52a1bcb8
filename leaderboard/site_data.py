"""The leaderboard site's downloads (data/): the tables behind the pages as CSV and JSON, and the
provenance of the results they were computed from.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from harness.provenance import package_version
from leaderboard.cross_base import cross_base_table
from leaderboard.data import Results, budget_label
from leaderboard.stats import Stats, records


def render_provenance(results: Results) -> dict[str, Any]:
    """What made the numbers on the site: the modomodo versions, commits, dates, suite protocols, runners and
    folders of the benches read (shown on the data page and written to data/leaderboard.json)."""
    versions = sorted({str((b.get("versions") or {}).get("modomodo", "unknown")) for b in results.benches})
    shas = sorted({str(b.get("git_sha") or "unknown") for b in results.benches})
    dates = sorted({str(b.get("created") or "unknown") for b in results.benches})
    return {
        "renderer_version": package_version("modomodo") or "unknown",
        "versions": versions,
        "git_shas": shas,
        "dates": dates,
        "protocols": [(n, str(e.get("protocol", "")), str(e.get("version", ""))) for n, e in results.suites.items()],
        "runners": sorted({str(b.get("runner") or "replay") for b in results.benches}),
        "folders": [Path(f).name for f in results.folders],
    }


# Card rows in words: a label for the keys a reader would not decode, values without JSON punctuation.


def _public_bench(meta: dict[str, Any]) -> dict[str, Any]:
    """bench.json without local absolute paths (they name the machine and the user's folders)."""
    out = {k: v for k, v in meta.items() if not k.startswith("_")}
    out["folder"] = Path(meta.get("_folder", "")).name
    out["suites"] = [{**s, "path": Path(str(s.get("path", ""))).name} for s in meta.get("suites", [])]
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


def _write_csv_gz(df: pd.DataFrame, path: Path) -> None:
    """gzip with no name and mtime 0 in its header, so the same table gives the same bytes."""
    import gzip

    text = df.to_csv(index=False, float_format="%.10g", lineterminator="\n").encode()
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(text)


def _site_trajectories(traj: pd.DataFrame) -> pd.DataFrame:
    """The trajectories as published: no run keys, and each pilot's mixture as one `w_<dataset>` column per dataset
    (empty where its suite has no such dataset) instead of a JSON text: the same weights (to the 10 significant
    digits of every table here), a third smaller once compressed, and a table any tool reads without parsing."""
    t = traj.drop(columns=["run_key"], errors="ignore")
    if "mixture" not in t.columns or t.empty:
        return t
    parsed = []
    for text in t["mixture"]:
        try:
            m = json.loads(text) if isinstance(text, str) else {}
        except json.JSONDecodeError:
            m = {}
        parsed.append(m if isinstance(m, dict) else {})
    names = sorted({k for m in parsed for k in m})
    wide = pd.DataFrame({f"w_{d}": [m.get(d, math.nan) for m in parsed] for d in names}, index=t.index)
    return pd.concat([t.drop(columns=["mixture"]), wide], axis=1)


def site_json(obj: Any) -> str:
    """JSON as every file of the site is written: keys sorted (a render is byte-identical), NaN refused (it is
    not JSON, and a reader's parser would reject the file)."""
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_downloads(results: Results, st: Stats, data: Path, with_online: bool) -> list[tuple[str, str]]:
    """Write the site's data/ folder; returns (path under the site, description) of each download."""
    # the two big tables gzip-compressed (the site stays small enough to publish: tests/test_leaderboard.py), the
    # run keys (64 hex digits each, a third of the compressed size, pointing into a store the site does not carry)
    # left in the bench folders' own trajectories.csv
    _write_csv_gz(results.summary, data / "summary.csv.gz")
    _write_csv_gz(_site_trajectories(results.trajectories), data / "trajectories.csv.gz")
    _write_csv(st.table, data / "leaderboard.csv")
    _write_csv(st.overall, data / "overall_rank.csv")
    _write_csv(st.rank_corr, data / "rank_correlation.csv")
    _write_csv(cross_base_table(st.rank_corr, results.suites), data / "cross_base.csv")
    _write_csv(st.suite_evidence, data / "within_suite.csv")
    _write_csv(st.vs_random, data / "vs_random.csv")
    (data / "bench.json").write_text(site_json([_public_bench(b) for b in results.benches]))
    suites_public = {
        n: {k: v for k, v in e.items() if k not in ("card_text", "_folder", "path")} for n, e in results.suites.items()
    }
    board = {
        "provenance": render_provenance(results),
        "suites": suites_public,
        "strategies": results.strategies,
        "table": records(st.table),
        "overall_rank": records(st.overall),
        "rank_correlation": records(st.rank_corr),
        "separates": {f"{r.track} {r.family} {budget_label(r.budget)}": r.sentence for r in st.rankings},
        "within_suite": records(st.suite_evidence),
        "vs_random": records(st.vs_random),
        "methods": {
            "ci": "95% Student t-interval of the mean over seeds",
            "overall": "suites are the unit of evidence: strategies ranked on each suite that can rank by their "
            "mean over its study seeds, ranks averaged over suites; 95% hierarchical bootstrap "
            "(suites, then seeds), 2000 resamples; Friedman over suites; Nemenyi CD with N = suites; "
            "Wilcoxon signed-rank over suites with Holm",
            "within_suite": "paired over study seeds: exact sign-flip permutation test, Holm over the "
            "comparisons with random (and, for 'best', over the best's comparisons with every "
            "other strategy); MDD: paired t-test, alpha 0.05, power 0.8, pooled paired sd",
            "paired_test": "one-sided exact sign test of score vs uniform over seeds (ties dropped)",
            "rank": "rank by score within (suite, budget, seed); failed studies rank last",
            "auc": "mean normalised regret of the best pilot so far over pilot runs 1..budget",
        },
    }
    if with_online:  # only where there is an online track, so an offline-only site stays as it was
        board["online"] = {
            "table": records(st.online.table),
            "paired": records(st.online.paired),
            "verdicts": st.online.verdicts,
            "seeds_for_0.01": st.online.seeds_for_target,
            "methods": {
                "paired": "strategy minus the constant control on the same seed, over the "
                "seeds both ran; 95% paired t-interval",
                "snr": "|mean difference| / its standard error (sd over seeds / sqrt(seeds)); "
                "null when infinite or undefined",
                "verdict": "paired t-test, Holm over the comparisons on the suite, alpha 0.05, "
                "none below the minimum of paired seeds",
                "overhead": "cost in run-equivalents minus 1",
            },
        }
    (data / "leaderboard.json").write_text(site_json(board))
    downloads = [
        (
            "data/summary.csv.gz",
            "every study: score, regret, recommended mixture (bench summary.csv, merged); "
            "gzip-compressed CSV, pandas.read_csv reads it as is",
        ),
        (
            "data/trajectories.csv.gz",
            "every pilot run of every study (best-so-far curves), gzip-compressed CSV; "
            "the mixture as one w_DATASET column per dataset; the run keys into each bench's store are in that "
            "bench folder's own trajectories.csv",
        ),
        ("data/leaderboard.csv", "the statistics per suite × strategy × budget, with 95% CIs"),
        (
            "data/overall_rank.csv",
            "average rank over the suites that can rank [hierarchical 95% CI], per track "
            "× suite family × budget × strategy",
        ),
        (
            "data/within_suite.csv",
            "per suite × budget: minimum detectable difference, seeds a 0.01 difference "
            "needs, the separably best strategy (if any)",
        ),
        (
            "data/vs_random.csv",
            "per suite × budget × strategy: paired difference with random [95% CI], sign-flip p, Holm p, verdict",
        ),
        ("data/rank_correlation.csv", "rank correlation of strategy orderings between suites"),
        (
            "data/cross_base.csv",
            "the same correlations between the RLVR suites that can rank, each pair labelled across base / "
            "across task set / other, with each suite's base model and task set from its card",
        ),
        ("data/leaderboard.json", "all of the above statistics, with suites, strategies and provenance"),
        ("data/bench.json", "what was run: suites, strategies, budgets, seeds, versions"),
    ]
    if len(results.online_steps) or len(results.online_runs):  # the online track's tables, only where there is one
        _write_csv_gz(results.online_steps, data / "online.csv.gz")
        _write_csv_gz(results.online_runs, data / "online_runs.csv.gz")
        _write_csv(st.online.table, data / "online_leaderboard.csv")
        _write_csv(st.online.paired, data / "online_paired.csv")
        downloads += [
            (
                "data/online.csv.gz",
                "the online track: the weights every training step drew its prompts with "
                "(w:DOMAIN) and the prompts each domain got (n:DOMAIN), per suite × strategy × seed × step; "
                "gzip-compressed CSV",
            ),
            (
                "data/online_runs.csv.gz",
                "the online runs, one per suite × strategy × seed: status, score, "
                "cost in run-equivalents, timings, and every score the run measured; gzip-compressed CSV",
            ),
            (
                "data/online_leaderboard.csv",
                "the online track's statistics per suite × strategy: mean score [95% CI], overhead",
            ),
            (
                "data/online_paired.csv",
                "each online strategy's paired difference against the constant "
                "control over seeds, per score: mean [95% CI], standard error, SNR",
            ),
        ]
    return downloads
