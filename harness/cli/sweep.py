"""`modomodo sweep`: a designed set of mixtures run on a live suite into a store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.cli.common import (
    RUNNER_KINDS,
    UserError,
    _bench_seeds,
    _bind_gpu_protocol,
    _check_out,
    _check_protocol_file,
    _guard,
)


@click.command("sweep")
@click.option("--suite", "suite_ref", required=True, help="A suite with a real runner (e.g. minimodo-tiny-live).")
@click.option(
    "--runner",
    default=None,
    type=click.Choice(RUNNER_KINDS),
    help="Runner kind: cpu or gpu (real training), replay (default: the card's `runner:`).",
)
@click.option(
    "--mixtures",
    default=24,
    show_default=True,
    type=click.IntRange(min=1),
    help="Design size: the paper's 2n+1 seed designs, then Dirichlet draws.",
)
@click.option(
    "--alpha",
    default=1.0,
    show_default=True,
    type=float,
    help="Dirichlet concentration of the extra draws (a finite number > 0).",
)
@click.option("--design-seed", default=0, show_default=True, type=int, help="Seed of the Dirichlet draws.")
@click.option(
    "--draws",
    default=None,
    metavar="ALPHA:N,...",
    help="Design over several concentrations instead of --mixtures/--alpha: the seed designs, then N "
    "Dirichlet(ALPHA) draws for each pair, e.g. 1:31,0.3:18,3:18,10:18.",
)
@click.option(
    "--seeds",
    default=None,
    help="Training seeds: a count N (seeds 0..N-1), a range N-M, or a comma list, "
    "as bench --seeds (default: the --design file's, else 0-7).",
)
@click.option(
    "--design",
    "design_file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="A saved design file (--save-design): its mixtures and seeds, fixed before any run.",
)
@click.option(
    "--save-design",
    "save_design_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the design (mixtures, labels, seeds, suite, protocol, recipe) to this file, e.g. beside "
    "the store; an existing identical file is kept, a different one refused.",
)
@click.option(
    "--store",
    "store_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Result store folder (resumable: pairs already there are skipped).",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes (the cpu runner uses one thread each).",
)
@click.option(
    "--executor",
    default="local",
    show_default=True,
    type=click.Choice(["local", "slurm", "submitit-local"]),
    help="Where runs execute: here (--workers processes), or one submitit job per run.",
)
@click.option(
    "--protocol-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Protocol file whose slurm: section sizes each job (gpu runner: also its training settings).",
)
@click.option("--dry-run", is_flag=True, help="List the planned runs and how many are already stored.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_guard
def sweep_cmd(
    suite_ref,
    runner,
    mixtures,
    alpha,
    design_seed,
    draws,
    seeds,
    design_file,
    save_design_file,
    store_dir,
    workers,
    executor,
    protocol_file,
    dry_run,
    quiet,
):
    """Run a fixed design of mixtures × training seeds through a real runner, into a store
    (then `modomodo suite from-sweep` turns the store into a replay suite)."""
    from harness import suites
    from harness.store import ResultStore
    from harness.factory.sweep import (
        check_alpha,
        check_size,
        design,
        design_record,
        load_design,
        parse_draws,
        plan,
        pool_design,
        run_sweep,
        save_design,
    )

    if not design_file and not draws:
        check_alpha(alpha)
    if protocol_file:
        _check_protocol_file(protocol_file)
    s = suites.load(suite_ref)
    runner = runner or s.card.get("runner")
    if not runner:
        raise UserError(f"suite {s.name!r} names no runner; pass --runner (cpu, gpu)")
    if design_file and draws:
        raise UserError("--design and --draws both give the mixtures: pass one")
    if design_file:
        try:
            mix, file_seeds, _ = load_design(design_file, s)
        except ValueError as e:
            raise UserError(str(e)) from None
        seed_list = _sweep_seeds(seeds) if seeds else file_seeds
        check_size(len(mix), len(seed_list))
        labelled = None
    else:
        seed_list = _sweep_seeds(seeds or "0-7")  # a range: never expanded before its size is checked
        if draws:
            try:
                recipe = {"seed_designs": True, "draws": [list(d) for d in parse_draws(draws)], "seed": design_seed}
            except ValueError as e:
                raise UserError(f"--draws {e}") from None
            check_size(2 * s.space.dim + 1 + sum(n for _, n in recipe["draws"]), len(seed_list))
            labelled = pool_design(s.space, recipe["draws"], design_seed)
            mix = [m for m, _ in labelled]
        else:
            check_size(mixtures, len(seed_list))
            mix = design(s.space, mixtures, design_seed, alpha)
            labelled = [(m, "") for m in mix]
            recipe = {"seed_designs": True, "mixtures": mixtures, "alpha": alpha, "seed": design_seed}
    if save_design_file:
        if labelled is None:
            raise UserError("--save-design writes a new design; with --design the design is already saved")
        try:
            save_design(save_design_file, design_record(s, labelled, seed_list, recipe))
        except ValueError as e:
            raise UserError(str(e)) from None
        click.echo(f"design: {save_design_file}", err=True)
    if protocol_file:
        protocol_file = str(Path(protocol_file).resolve())
    s = _bind_gpu_protocol(s, runner, protocol_file)  # the gpu protocol file's hash keys every run
    specs = plan(s, mix, seed_list)
    if not dry_run:
        _check_out(store_dir)
    store = ResultStore(store_dir)
    done = sum(spec.key in store for spec in specs)
    click.echo(
        f"{s.id} (protocol {s.protocol}), runner {runner}: {len(mix)} mixtures x {len(seed_list)} seeds = "
        f"{len(specs)} runs, {done} already in {store_dir}",
        err=True,
    )
    if dry_run:
        for i, m in enumerate(mix):
            click.echo(f"{i:3d} {m}")
        return
    report = run_sweep(
        s, runner, specs, store, workers=workers, progress=not quiet, executor=executor, protocol_file=protocol_file
    )
    click.echo(
        f"ran {report.ran} ({report.failed} failed), skipped {report.skipped}, in {report.wall_s:.0f} s", err=True
    )
    if report.failed:
        sys.exit(1)


def _sweep_seeds(text: str) -> range | list[int]:
    """sweep --seeds: the same syntax as bench --seeds (a bare count N means seeds 0..N-1)."""
    seeds = _bench_seeds(text)
    return range(seeds) if isinstance(seeds, int) else seeds
