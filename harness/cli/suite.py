"""`modomodo suite import|check|from-sweep`: making a recorded suite and re-measuring its judge block."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from harness.cli.common import UserError, _check_out, _guard


@click.group("suite")
def suite_group():
    """Build and inspect suites."""


@suite_group.command("import")
@click.argument("table", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Suite name.")
@click.option(
    "--weights",
    required=True,
    help="Weight columns: COL,COL,... or NAME=COL,... (a leading w_ is dropped), "
    "or a glob such as 'train_the_pile_*' (datasets named by what * matched).",
)
@click.option("--metric", required=True, help="The score column to optimise.")
@click.option("--goal", required=True, type=click.Choice(["max", "min"]), help="Maximise or minimise the metric.")
@click.option("--seed-col", default=None, help="Column holding the training seed (repeated mixtures = noise model).")
@click.option("--scores", default=None, help="Score columns to keep (default: every other numeric column).")
@click.option("--normalize", is_flag=True, help="Rescale each row's weights to sum to 1 (e.g. percentages).")
@click.option(
    "--rounding",
    default=None,
    type=float,
    help="The weights were rounded to multiples of this (e.g. 0.001): a row summing to within "
    "datasets x rounding / 2 of 1 is rescaled to 1, any other is an error.",
)
@click.option(
    "--results",
    default=None,
    type=click.Path(dir_okay=False),
    help="A second file with the results, joined one-to-one with TABLE (the mixtures) on --key.",
)
@click.option("--key", default=None, help="The column joining TABLE and --results (e.g. index); not a score.")
@click.option("--rename", default=None, help="OLD=NEW,...: rename columns of the (joined) table before use.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default ./suites/NAME).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
@_guard
def suite_import_cmd(
    table, name, weights, metric, goal, seed_col, scores, normalize, rounding, results, key, rename, out, overwrite
):
    """Turn a results table (weight columns + score columns, one row per run; or a mixture file and a result
    file joined on a key column, as RegMix releases its runs) into a replay suite."""
    from harness.factory.importer import check_name_free, import_table

    out = out or str(Path("suites") / name)
    check_name_free(name, out)
    _check_out(str(Path(out).resolve().parent))
    score_list = [c.strip() for c in scores.split(",") if c.strip()] if scores else None
    folder = import_table(
        table,
        name,
        weights,
        metric,
        goal,
        out,
        seed_col=seed_col,
        scores=score_list,
        normalize=normalize,
        overwrite=overwrite,
        results=results,
        key=key,
        rename=rename,
        rounding=rounding,
    )
    from harness.suites import load_folder

    s = load_folder(folder)
    click.echo(f"suite {name!r}: {len(s.table)} runs, {len(s.recorded)} mixtures, {s.space.dim} datasets -> {folder}")
    _echo_judge(s.card)
    click.echo(f"use it with: modomodo bench --suite {folder} [--track {'|'.join(s.card['judge']['tracks'])}] ...")


def _echo_judge(card: dict) -> None:
    """What the judge found on a recorded suite: tracks, gate figures, support, signal, ranking."""
    judge = card.get("judge") or {}
    fid = judge.get("fidelity") or {}
    click.echo(
        f"tracks: {', '.join(judge.get('tracks', []))} (pool: {judge.get('pool', {}).get('candidates')} "
        f"recorded mixtures)"
    )
    for model, f in (fid.get("models") or {}).items():
        click.echo(
            f"  surrogate {model:<13} held-out Spearman {f['spearman']:+.3f}  RMSE {f['rmse_over_sd']:.2f} x sd"
            f"{'  passes' if f['passes'] else ''}"
        )
    click.echo(f"fidelity gate: {'PASSED' if fid.get('passed') else 'failed'}: {fid.get('reason', '')}")
    sup = judge.get("support") or {}
    if sup:
        bounds = ", ".join(
            f"{d}∈[{lo:.2f},{hi:.2f}]" for d, lo, hi in zip(card.get("datasets", []), sup["lower"], sup["upper"])
        )
        click.echo(f"support (continuous track bounds): {bounds}")
    for track, r in (judge.get("ranking") or {}).items():
        click.echo(f"{track} track: {'can rank' if r['can_rank'] else 'CANNOT rank'}: {r['reason']}")
    norm = card.get("normalization") or {}
    if norm:
        click.echo(
            f"normalisation: best_known {norm['best_known']:.6g}, worst_known {norm['worst_known']:.6g} "
            f"({norm.get('statistic', '')})"
        )


@suite_group.command("check")
@click.argument("suite_ref")
@click.option("--write", is_flag=True, help="Store the re-measured judge block in the suite's card.yaml.")
@_guard
def suite_check_cmd(suite_ref, write):
    """Re-measure a recorded suite's judge block (tracks, fidelity gate, support, ranking) and print it."""
    from harness import suites
    from harness.factory.card import refresh_card

    s = suites.load(suite_ref)
    card = refresh_card(s.path, write=write)
    click.echo(f"suite {s.name!r}: {len(s.table)} runs, {len(s.recorded)} mixtures, {s.space.dim} datasets")
    _echo_judge(card)
    if write:
        click.echo(f"wrote {Path(s.path) / 'card.yaml'}")


@suite_group.command("from-sweep")
@click.option(
    "--store",
    "store_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="The sweep's result store.",
)
@click.option("--suite", "suite_ref", required=True, help="The live suite the sweep ran (e.g. minimodo-tiny-live).")
@click.option("--name", default=None, help="Name of the recorded replay suite (required unless --check).")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default ./suites/NAME).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
@click.option("--metric", default=None, help="The recorded suite's objective (default: the live suite's metric).")
@click.option(
    "--notes-file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Text kept on the card as signal_notes: how the signal was reached, or why not.",
)
@click.option("--check", is_flag=True, help="Only print the runs per mixture and the signal-to-noise figures.")
@click.option(
    "--partial",
    is_flag=True,
    help="Export a pre-registered sweep (a card with `preregistration`, a design.json beside the store) before "
    "every run of its design is stored (e.g. to try the export path); refused otherwise.",
)
@_guard
def suite_from_sweep_cmd(store_dir, suite_ref, name, out, overwrite, metric, notes_file, check, partial):
    """Turn a sweep's store into a replay suite: runs.csv (one row per training seed) and a card with
    the signal-to-noise of the per-mixture means and the provenance of the runs."""
    from harness import suites
    from harness.factory.export import SweepError, signal_to_noise, sweep_protocol, sweep_table, weight_column
    from harness.suites.signal import SIGNAL_METRICS, seeds_for_target
    from harness.suites.signal import by_seeds as snr_by_seeds
    from harness.store import ResultStore

    store = ResultStore(store_dir)
    s = sweep_protocol(store, suites.load(suite_ref))  # refuses a store that mixes protocols
    if check:
        df = sweep_table(store, s)
        wcols = [weight_column(d) for d in s.space.datasets]
        per_mix = df.groupby(wcols).size()
        click.echo(
            f"{s.id}: {len(df)} runs, {per_mix.size} mixtures, seeds per mixture {int(per_mix.min())}-"
            f"{int(per_mix.max())}, median {df['wall_s'].median():.1f} s per run"
        )
        for m in dict.fromkeys([metric or s.metric, s.metric, *SIGNAL_METRICS]):
            if m in df.columns:
                try:
                    click.echo(json.dumps(signal_to_noise(df, wcols, m)))
                except SweepError as e:
                    click.echo(f"{m}: {e}")
        objective = metric or s.metric
        if objective in df.columns:
            curve = ", ".join(f"{c['seeds']}: {c['snr_mean']:.2f}" for c in snr_by_seeds(df, wcols, objective))
            click.echo(f"{objective} SNR of the per-mixture mean on the first k seeds (k: snr): {curve or '-'}")
            now = signal_to_noise(df, wcols, objective)
            need = seeds_for_target(now["snr_mean"], now["seeds_per_mixture"])
            click.echo(
                f"{objective}: SNR {now['target']:g} expected at {need if need else 'no number of'} seeds per mixture"
            )
            if any(r.checkpoints for r in store.results() if r.spec.get("protocol") == s.protocol):
                from harness.factory.export import fidelity_table
                from harness.suites.signal import fidelity_signal

                block = fidelity_signal(fidelity_table(store, s), wcols, [objective])
                snr = ", ".join(
                    f"{f}: {v[objective]['snr_mean']:.2f}" for f, v in block["signal"].items() if objective in v
                )
                rho = ", ".join(
                    f"{f}: {v[objective]['spearman_with_full']:.2f}"
                    for f, v in block["rank_correlation"].items()
                    if objective in v
                )
                click.echo(
                    f"{objective} SNR of the per-mixture mean by fidelity: {snr or '-'}; rank correlation "
                    f"of per-mixture means with full fidelity: {rho or '-'}"
                )
        return
    if not name:
        raise UserError("--name is required (the recorded suite's name), unless --check")
    from harness.factory.export import export_suite
    from harness.factory.sweep import design_shortfall

    short = design_shortfall(store, s) if s.card.get("preregistration") else None
    if short and short[1] and not partial:  # the registered design is the suite: exported whole, never early
        raise UserError(
            f"{store_dir}: {short[1]} of the {short[0]} runs of the pre-registered design "
            f"({Path(store_dir) / 'design.json'}) are not in the store yet; export once the sweep is complete "
            f"(or pass --partial to export the {short[0] - short[1]} stored runs, e.g. to try the export path)"
        )
    notes = Path(notes_file).read_text(encoding="utf-8") if notes_file else None
    folder = export_suite(
        store, s, name, out or Path("suites") / name, overwrite=overwrite, metric=metric, signal_notes=notes
    )
    card = yaml.safe_load((folder / "card.yaml").read_text())
    click.echo(card["description"])
    click.echo(f"wrote {folder}; use it with: modomodo bench --suite {folder} ...")
