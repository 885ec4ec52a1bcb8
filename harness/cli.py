"""The `modomodo` command line. Command names and flags are the project's contract.

Every user error exits with status 2 and one line that names the bad value (and what would be
valid); tracebacks are for bugs only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
import yaml

from harness.suites.table import TableError
from harness.mixture import InvalidMixture
from harness.suites import SuiteError

RUNNER_KINDS = ["cpu", "gpu", "replay"]  # harness.runners.RUNNERS (not imported here: it loads the runners)


class UserError(click.ClickException):
    exit_code = 2


def _guard(fn):
    """Turn the project's validation errors into clean CLI errors."""
    import functools

    from strategies.registry import UnknownStrategy

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InvalidMixture, SuiteError, TableError, UnknownStrategy, FileNotFoundError) as e:
            raise UserError(str(e)) from None
        except OSError as e:  # a read-only or full disk, a file where a folder should be: one line, not a traceback
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            raise UserError(f"{type(e).__name__}: {e.strerror or e}{where}") from None
        except ValueError as e:
            raise UserError(str(e)) from None

    return wrapper


def _number(text: str) -> float:
    """A plain decimal number: float() also takes "1_0" (as 10), "inf" and "nan", which no user means."""
    import re

    if not re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", text):
        raise ValueError(text)
    return float(text)


def _dedupe(values: list, what: str) -> list:
    """Values in order, each once; a repeated one is dropped with a note (it would write duplicate rows)."""
    seen = list(dict.fromkeys(values))
    if len(seen) != len(values):
        dups = sorted({str(v) for v in values if values.count(v) > 1})
        click.echo(f"note: {what} {', '.join(dups)} given more than once; each is run once", err=True)
    return seen


def _budget_list(text: str) -> list[int | float]:
    """--budget: comma-separated run-equivalents; whole numbers stay integers (fractions for partial runs)."""
    import math

    out = []
    for x in (x.strip() for x in text.split(",")):
        if not x:
            continue
        try:
            v = _number(x)
        except ValueError:
            raise UserError(f"--budget must be comma-separated numbers of run-equivalents (e.g. 4,8,16); {x!r} is "
                            f"not one") from None
        if not math.isfinite(v) or v < 0:
            raise UserError(f"--budget must be non-negative finite numbers, got {text!r}")
        out.append(int(v) if v.is_integer() else v)
    if not out:
        raise UserError(f"--budget must name at least one budget, got {text!r} (e.g. --budget 4,8,16)")
    return _dedupe(out, "--budget")


def _int_list(text: str, what: str) -> list[int]:
    import re

    try:
        values = [int(x) if re.fullmatch(r"\s*[+-]?\d+\s*", x) else int("?") for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise UserError(f"{what} must be non-negative integers, got {text!r}")
    return values


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modomodo", message="modomodo %(version)s")
def main():
    """modomodo: benchmark data-mixture strategies for multimodal RLVR."""


@main.command("suites")
@_guard
def suites_cmd():
    """List the registered suites (baselines/ and $MODOMODO_SUITE_PATH), one line each."""
    from harness import suites

    for name, folder in sorted(suites.registered().items()):
        try:
            s = suites.load(folder)
            click.echo(f"{name:<22} {s.kind:<9} {len(s.space.datasets)} datasets  {s.metric} ({s.goal})  v{s.version}  "
                       f"{s.describe()}")
        except SuiteError as e:
            click.echo(f"{name:<22} BROKEN    {e}")


def _allow_unsandboxed(flag: bool) -> None:
    """--allow-unsandboxed: through the environment, so that the bench's worker processes see it too."""
    if flag:
        import os

        from harness.sandbox import ALLOW, SANDBOX_ENV

        os.environ[SANDBOX_ENV] = ALLOW


@main.command("strategies")
@click.option("--strategy-file", "strategy_files", multiple=True, type=click.Path(dir_okay=False),
              help="A Python file whose Strategy classes to register (repeatable).")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Run strategies from files as plain processes where bubblewrap is missing or cannot start "
                   "(they can then read your files; results marked sandboxed=no). Default: such studies fail.")
@_guard
def strategies_cmd(strategy_files, allow_unsandboxed):
    """List the registered strategies, one line each."""
    import strategies

    _allow_unsandboxed(allow_unsandboxed)

    for f in strategy_files:
        strategies.load_file(f)
    for name in strategies.names():
        cls = strategies.get(name)
        click.echo(f"{name:<18} {getattr(cls, 'kind', 'offline'):<8} {cls.family:<10} {cls.description}")


@main.command("run")
@click.option("--suite", "suite_ref", required=True, help="Registered suite name or suite folder.")
@click.option("--mixture", required=True, help='Weights of every dataset, e.g. "COCO=0.5,LISA=0.5,GeoQAV=0,SAT=0,'
                                               'ScienceQA=0".')
@click.option("--seed", default=0, show_default=True, type=int, help="Training seed of the run.")
@click.option("--runner", default="replay", show_default=True, type=click.Choice(RUNNER_KINDS),
              help="Runner kind: replay (recorded tables, analytic suites), cpu or gpu (real training).")
@click.option("--normalize", is_flag=True, help="Rescale the weights to sum to 1 (e.g. percentages).")
@click.option("--fidelity", default=1.0, show_default=True, type=float, help="Fraction of the full protocol.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and the commands the runner would "
                                              "launch (gpu runner), without running.")
@click.option("--protocol-file", default=None, type=click.Path(dir_okay=False),
              help="Protocol file (baselines/configs/*.yaml) for the gpu runner (default: the suite's).")
@_guard
def run_cmd(suite_ref, mixture, seed, runner, normalize, fidelity, dry_run, protocol_file):
    """Run one mixture and print its RunResult as JSON."""
    from harness import suites
    from harness.runners import make_runner
    from harness.spec import RunSpec

    s = suites.load(suite_ref)
    m = _parse_mixture(s.space, mixture, normalize)
    if not 0 < fidelity <= 1:
        raise UserError(f"--fidelity must be in (0, 1], got {fidelity}")
    if runner == "replay" and s.kind == "replay":
        _check_replay_answer(s, m)
    if protocol_file:
        _check_protocol_file(protocol_file)
    s = _bind_gpu_protocol(s, runner, protocol_file)
    if dry_run:
        launcher = make_runner(runner, s)
        if not hasattr(launcher, "dry_run"):
            raise UserError(f"--dry-run shows what a launching runner would do; runner {runner!r} launches nothing "
                            f"(use --runner gpu)")
        click.echo(launcher.dry_run(RunSpec(s.id, s.protocol, m, seed, fidelity)))
        return
    result = make_runner(runner, s).run(RunSpec(s.id, s.protocol, m, seed, fidelity))
    click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    if not result.ok:
        sys.exit(1)


def _check_replay_answer(s, m) -> None:
    """`run` on a recorded suite answers a recorded mixture; an unrecorded one only where the card says its
    surrogate passed the fidelity gate (the continuous track), never after minutes of measuring it silently."""
    if s.recorded_mixture(m) is not None:
        return
    fid = (s.card.get("judge") or {}).get("fidelity") or {}
    if fid.get("passed"):
        return
    near = s.space.from_vector(s._X[int(abs(s._X - s.space.to_vector(m)).sum(axis=1).argmin())])
    why = ("its surrogate fails the fidelity gate" if fid else "its card has no fidelity-gate verdict (`modomodo suite "
           "check --write` measures one)")
    raise UserError(f"mixture {m} is not recorded in {s.name!r}, and {why}, so only its {len(s.recorded)} recorded "
                    f"mixtures have scores; the nearest is {near}")


def _check_protocol_file(path: str) -> None:
    """--protocol-file: a readable YAML mapping (a binary or malformed file is refused, not ignored)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--protocol-file {path!r} does not exist")
    raw = p.read_bytes()
    try:
        if b"\0" in raw:
            raise UnicodeDecodeError("utf-8", raw, raw.index(b"\0"), raw.index(b"\0") + 1, "NUL byte")
        doc = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"--protocol-file {path!r} is not a text file (binary data); give a protocol YAML such as "
                        f"baselines/configs/*.yaml") from None
    except yaml.YAMLError as e:
        raise UserError(f"--protocol-file {path!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise UserError(f"--protocol-file {path!r} holds a {type(doc).__name__}, not a mapping of protocol settings")


def _bind_gpu_protocol(suite, runner: str, protocol_file):
    """The suite keyed by the gpu protocol file (--protocol-file, else the card's) for the gpu runner; unchanged
    for other runners (harness/runners/gpu_identity.py)."""
    from harness.runners.gpu_identity import bind_protocol

    return bind_protocol(suite, runner, str(Path(protocol_file).resolve()) if protocol_file else None)


def _parse_mixture(space, text: str, normalize: bool):
    """`--mixture` text as a Mixture; weights that do not sum to 1 are an error naming `--normalize`, or, with
    it, rescaled."""
    import re

    from harness.mixture import Mixture

    for part in filter(None, (p.strip() for p in text.split(","))):
        value = part.partition("=")[2].strip()
        if value and not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf)", value, re.I):
            raise InvalidMixture(f"weight {value!r} in --mixture {text!r} is not a plain number (e.g. 0.25)")
    try:
        m = space.parse(text)
    except InvalidMixture as e:
        if "sum to" not in str(e):
            raise
        if not normalize:
            raise InvalidMixture(str(e).split("; use Mixture.normalized")[0] + "; pass --normalize to rescale them "
                                 "to sum to 1") from None
    else:
        _check_all_named(space, text)
        return m
    weights = {}  # space.parse has checked the names and numbers: only the sum was off
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        weights[name.strip()] = float(value)
    _check_all_named(space, text)
    return Mixture.normalized({d: weights.get(d, 0.0) for d in space.datasets})


def _check_all_named(space, text: str) -> None:
    """Every dataset needs a weight in --mixture (0 is fine): one left out is more often a typo than a 0."""
    named = {p.partition("=")[0].strip() for p in text.split(",") if p.strip()}
    left = [d for d in space.datasets if d not in named]
    if left:
        raise InvalidMixture(f"--mixture {text!r} gives no weight to {', '.join(left)}; name every dataset of the "
                             f"suite ({', '.join(space.datasets)}), with =0 for those it leaves out")


def _bench_seeds(text: str) -> int | range | list[int]:
    """bench --seeds: a count N (seeds 0..N-1), or the seeds themselves as N-M or a comma list (sweep's syntax)."""
    text = str(text).strip()
    if text.isascii() and text.isdigit():
        n = int(text)
        if n < 1:
            raise UserError(f"--seeds {text!r}: a count of seeds must be at least 1 (or give N-M, or a comma list)")
        return n
    seeds = _seed_list(text)
    if isinstance(seeds, range):
        return seeds  # its bounds are checked; never expanded here (a huge range is refused by the plan's size)
    if any(x < 0 for x in seeds):
        raise UserError(f"--seeds {text!r}: seeds must be non-negative integers")
    return _dedupe(seeds, "--seeds")


@main.command("bench")
@click.option("--suite", "suite_refs", multiple=True, required=True, help="Suite name or folder (repeatable).")
@click.option("--strategy", "strategy_spec", default="all", show_default=True, help="NAME[,NAME...] or all.")
@click.option("--budget", "budget_spec", default=None,
              help="Budgets in run-equivalents [default: 4,8,11,16,24; the online track: 1, its one training run]; "
                   "fractions (e.g. 4.5) on suites with partial runs.")
@click.option("--seeds", default="20", show_default=True,
              help="Seeds per study: a count N (seeds 0..N-1), a range N-M, or a comma list (as sweep --seeds).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Results folder (resumable).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Local worker processes.")
@click.option("--strategy-file", "strategy_files", multiple=True, type=click.Path(dir_okay=False),
              help="A Python file whose Strategy classes to register (repeatable).")
@click.option("--runner", default="replay", show_default=True, type=click.Choice(RUNNER_KINDS),
              help="Runner kind: replay (recorded tables, analytic suites), cpu or gpu (real training).")
@click.option("--track", default=None, type=click.Choice(["pool", "continuous", "online"]),
              help="How recommendations are judged: pool = only recorded mixtures, every score measured (the "
                   "default on recorded suites); continuous = any mixture (analytic suites, live suites, and "
                   "recorded suites whose surrogate passes the fidelity gate); online = online strategies, each "
                   "study one training run whose weights change as it trains (live suites, --runner cpu). "
                   "Default: each suite's own.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--executor", default="local", show_default=True,
              type=click.Choice(["local", "slurm", "submitit-local"]),
              help="Where pilot runs execute: here, or one submitit job per run (SLURM, or submitit's local "
                   "executor for a dry rehearsal).")
@click.option("--protocol-file", default=None, type=click.Path(dir_okay=False),
              help="Protocol file (baselines/configs/*.yaml) whose slurm: section sizes each job and whose "
                   "training settings the gpu runner uses.")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Run strategies from files as plain processes where bubblewrap is missing or cannot start "
                   "(they can then read your files; results marked sandboxed=no). Default: such studies fail.")
@_guard
def bench_cmd(suite_refs, strategy_spec, budget_spec, seeds, out, workers, strategy_files, runner, track, quiet,
              executor, protocol_file, allow_unsandboxed):
    """Benchmark strategies: every (suite, strategy, budget, seed); writes OUT/summary.csv."""
    import strategies
    from harness.bench import bench

    _allow_unsandboxed(allow_unsandboxed)

    for f in strategy_files:
        strategies.load_file(f)
    names = _dedupe(strategies.resolve(strategy_spec, kind="online" if track == "online" else "offline"),
                    "--strategy")
    budgets = _budget_list(budget_spec if budget_spec is not None else ("1" if track == "online" else "4,8,11,16,24"))
    seeds = _bench_seeds(seeds)
    suite_refs = _dedupe(list(suite_refs), "--suite")
    if protocol_file:
        _check_protocol_file(protocol_file)
    _check_out(out)
    report = bench(suite_refs, names, budgets, seeds, out, workers=workers,
                   strategy_files=[str(Path(f).resolve()) for f in strategy_files], runner=runner, progress=not quiet,
                   executor=executor, protocol_file=protocol_file, track=track)
    click.echo(f"{report.studies} studies ({report.studies_resumed} already done"
               + (f", {report.retried} retried after failing in an earlier bench" if report.retried else "")
               + f"), runs executed: {report.runs_executed}, reused from store: {report.runs_reused}, failed studies: "
               f"{report.failed_studies}", err=True)
    if report.merged:
        click.echo(f"summary.csv also keeps {report.merged} studies of earlier benches on {out}", err=True)
    if report.records_rejected:
        click.echo(f"store records quarantined (truncated, empty, unhashed or failing their integrity check): "
                   f"{report.records_rejected} (not served: done again; the files are in "
                   f"{Path(out) / 'store' / 'quarantine'})", err=True)
    _print_table(report.summary, report.suites)
    click.echo(f"summary: {report.out / 'summary.csv'}")
    if report.failed_studies:
        _print_failures([r for r in report.failures or [] if r.get("status") != "ok"], report.failed_studies)
        sys.exit(1)


def _check_out(out: str) -> None:
    """An output folder bench, sweep, import or render can write: a clean error before any work, not a traceback
    after it (read-only, full, or a file in the way)."""
    import os
    import tempfile

    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"cannot write to {str(out)!r}: {e.strerror or e}; choose another folder") from None


def _print_failures(failures: list[dict], n: int) -> None:
    """The end of a bench with failed studies: how many, their reasons (counted), and what a resume does."""
    from collections import Counter

    reasons = Counter(_one_line(str(r.get("reason", "")), 160) for r in failures)
    click.echo(f"\n{n} studies failed in this bench (status 'failed' in summary.csv, reason column):", err=True)
    for why, k in reasons.most_common(5):
        click.echo(f"  {k} x {why}", err=True)
    if len(reasons) > 5:
        click.echo(f"  ... and {len(reasons) - 5} other reasons", err=True)
    click.echo("run the same command again to retry them (their completed runs come from the store)", err=True)


def _one_line(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@main.command("prefetch")
@click.option("--protocol", "protocol_ref", required=True, help="Protocol file or the name of one in baselines/configs.")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="Shared Hub cache (default: $HF_HUB_CACHE); compute nodes read it with HF_HUB_OFFLINE=1.")
@click.option("--check-only", is_flag=True, help="Download nothing: only check that an offline run finds everything.")
@click.option("--list", "list_only", is_flag=True, help="Only list what the protocol needs.")
@_guard
def prefetch_cmd(protocol_ref, cache_dir, check_only, list_only):
    """Download every model and dataset a protocol needs (huggingface_hub), then check them offline."""
    _prefetch(protocol_ref, cache_dir, check_only, list_only)


def _prefetch(protocol_ref, cache_dir, check_only: bool, list_only: bool) -> None:
    from harness.prefetch import check_offline, download, needs
    from harness.protocol import load_protocol

    protocol = load_protocol(protocol_ref)
    items = needs(protocol)
    for n in items:
        click.echo(f"{n.repo_type:<8} {n.repo_id}{f' [{n.config}]' if n.config else ''}"
                   f"{f' split {n.split}' if n.split else ''}  ({n.why})")
    if list_only or not items:
        return
    ds_cache = protocol.datasets.cache_dir or None
    if not check_only:
        download(items, cache_dir, ds_cache, log=lambda m: click.echo(m, err=True))
    missing = check_offline(items, cache_dir, datasets_cache_dir=ds_cache)
    if missing:
        raise UserError(f"with HF_HUB_OFFLINE=1 a run of {protocol.name} would not find {len(missing)} of {len(items)}: "
                        + "; ".join(f"{m['repo_type']} {m['repo_id']} ({m['error']})" for m in missing))
    click.echo(f"offline check: all {len(items)} found with HF_HUB_OFFLINE=1"
               f"{f' in {cache_dir}' if cache_dir else ''}")


@main.command("sweep")
@click.option("--suite", "suite_ref", required=True, help="A suite with a real runner (e.g. minimodo-tiny-live).")
@click.option("--runner", default=None, type=click.Choice(RUNNER_KINDS),
              help="Runner kind: cpu or gpu (real training), replay (default: the card's `runner:`).")
@click.option("--mixtures", default=24, show_default=True, type=click.IntRange(min=1),
              help="Design size: the paper's 2n+1 seed designs, then Dirichlet draws.")
@click.option("--alpha", default=1.0, show_default=True, type=float,
              help="Dirichlet concentration of the extra draws (a finite number > 0).")
@click.option("--design-seed", default=0, show_default=True, type=int, help="Seed of the Dirichlet draws.")
@click.option("--draws", default=None, metavar="ALPHA:N,...",
              help="Design over several concentrations instead of --mixtures/--alpha: the seed designs, then N "
                   "Dirichlet(ALPHA) draws for each pair, e.g. 1:31,0.3:18,3:18,10:18.")
@click.option("--seeds", default=None, help="Training seeds: a count N (seeds 0..N-1), a range N-M, or a comma list, "
                                            "as bench --seeds (default: the --design file's, else 0-7).")
@click.option("--design", "design_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="A saved design file (--save-design): its mixtures and seeds, fixed before any run.")
@click.option("--save-design", "save_design_file", default=None, type=click.Path(dir_okay=False),
              help="Write the design (mixtures, labels, seeds, suite, protocol, recipe) to this file, e.g. beside "
                   "the store; an existing identical file is kept, a different one refused.")
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False),
              help="Result store folder (resumable: pairs already there are skipped).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (the cpu runner uses one thread each).")
@click.option("--executor", default="local", show_default=True,
              type=click.Choice(["local", "slurm", "submitit-local"]),
              help="Where runs execute: here (--workers processes), or one submitit job per run.")
@click.option("--protocol-file", default=None, type=click.Path(dir_okay=False),
              help="Protocol file whose slurm: section sizes each job (gpu runner: also its training settings).")
@click.option("--dry-run", is_flag=True, help="List the planned runs and how many are already stored.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_guard
def sweep_cmd(suite_ref, runner, mixtures, alpha, design_seed, draws, seeds, design_file, save_design_file, store_dir,
              workers, executor, protocol_file, dry_run, quiet):
    """Run a fixed design of mixtures × training seeds through a real runner, into a store
    (then `modomodo suite from-sweep` turns the store into a replay suite)."""
    from harness import suites
    from harness.store import ResultStore
    from harness.factory.sweep import (check_alpha, check_size, design, design_record, load_design, parse_draws, plan,
                               pool_design, run_sweep, save_design)

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
    click.echo(f"{s.id} (protocol {s.protocol}), runner {runner}: {len(mix)} mixtures x {len(seed_list)} seeds = "
               f"{len(specs)} runs, {done} already in {store_dir}", err=True)
    if dry_run:
        for i, m in enumerate(mix):
            click.echo(f"{i:3d} {m}")
        return
    report = run_sweep(s, runner, specs, store, workers=workers, progress=not quiet, executor=executor,
                       protocol_file=protocol_file)
    click.echo(f"ran {report.ran} ({report.failed} failed), skipped {report.skipped}, in {report.wall_s:.0f} s",
               err=True)
    if report.failed:
        sys.exit(1)


def _sweep_seeds(text: str) -> range | list[int]:
    """sweep --seeds: the same syntax as bench --seeds (a bare count N means seeds 0..N-1)."""
    seeds = _bench_seeds(text)
    return range(seeds) if isinstance(seeds, int) else seeds


def _seed_list(text: str) -> range | list[int]:
    """N-M as a range (lazy: its size is checked before anything is built), or a comma list."""
    text = text.strip()
    if "-" in text and "," not in text:
        lo, _, hi = text.partition("-")
        import re

        if not (re.fullmatch(r"\s*\d+\s*", lo) and re.fullmatch(r"\s*\d+\s*", hi)):
            raise UserError(f"--seeds {text!r}: expected N-M or a comma list of integers")
        lo_i, hi_i = int(lo), int(hi)
        if hi_i < lo_i:
            raise UserError(f"--seeds {text!r}: the range is empty (M < N)")
        if lo_i < 0:
            raise UserError(f"--seeds {text!r}: seeds must be non-negative integers")
        return range(lo_i, hi_i + 1)
    return _int_list(text, "--seeds")


def _print_table(summary, suites_meta: list[dict] | None = None):
    """Mean normalised regret per suite × strategy × budget (lower is better). Suites that cannot rank
    come last, under their reason; a cell resting on surrogate answers carries a `*`."""
    ok = summary[summary["status"] == "ok"]
    if ok.empty:
        click.echo("no successful studies")
    meta = {m["name"]: m for m in (suites_meta or [])}
    order = sorted(set(ok["suite"]), key=lambda n: (not meta.get(n, {}).get("can_rank", True), n))
    marked = False
    for suite_name in order:
        g = ok[ok["suite"] == suite_name]
        if meta.get(suite_name, {}).get("track") == "online":
            _print_online(g, meta[suite_name])
            continue
        pivot = g.pivot_table(index="strategy", columns="budget", values="normalized_regret", aggfunc="mean")
        pivot = pivot.sort_values(pivot.columns[-1])
        sur = (g.pivot_table(index="strategy", columns="budget", values="surrogate_fraction", aggfunc="mean")
               if "surrogate_fraction" in g else None)
        table = pivot.map(lambda v: f"{v:.3f}" if np.isfinite(v) else str(v))
        if sur is not None:
            sur = sur.reindex(index=pivot.index, columns=pivot.columns).fillna(0)
            table = table.where(sur <= 0, table + "*")
            marked |= bool((sur > 0).to_numpy().any())
        m = meta.get(suite_name, {})
        track = f" [{m['track']} track]" if m.get("track") else ""
        verdict = "" if m.get("can_rank", True) else f"  -- CANNOT RANK: {m.get('ranking_reason', '')}"
        click.echo(f"\n{suite_name}{track}: mean normalised regret (lower is better){verdict}")
        click.echo(table.to_string())
    if marked:
        click.echo("\n* rests on surrogate answers (see surrogate_fraction in summary.csv)")


def _print_online(g, meta: dict) -> None:
    """The online track: each strategy's mean score over its runs, and (with the `constant` control benched)
    the mean paired difference from the control over the seeds both ran."""
    metric = meta.get("metric", "score")
    click.echo(f"\n{meta['name']} [online track]: mean {metric} of the trained model (higher is better), "
               f"one training run per seed")
    ctrl = g[g["strategy"] == "constant"].set_index("seed")["score"]
    rows = []
    for name, s in g.groupby("strategy"):
        sc = s.set_index("seed")["score"]
        common = sc.index.intersection(ctrl.index)
        diff = (sc[common] - ctrl[common]).mean() if len(common) and name != "constant" else float("nan")
        rows.append({"strategy": name, "runs": len(sc), f"mean {metric}": f"{sc.mean():.4f}",
                     "vs constant (paired)": "" if diff != diff else f"{diff:+.4f} over {len(common)}",
                     "cost (run-eq.)": f"{s['cost_used'].mean():.4f}"})
    import pandas as pd

    click.echo(pd.DataFrame(rows).set_index("strategy").to_string())


@main.group("suite")
def suite_group():
    """Build and inspect suites."""


@suite_group.command("import")
@click.argument("table", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Suite name.")
@click.option("--weights", required=True, help="Weight columns: COL,COL,... or NAME=COL,... (a leading w_ is dropped), "
                                               "or a glob such as 'train_the_pile_*' (datasets named by what * matched).")
@click.option("--metric", required=True, help="The score column to optimise.")
@click.option("--goal", required=True, type=click.Choice(["max", "min"]), help="Maximise or minimise the metric.")
@click.option("--seed-col", default=None, help="Column holding the training seed (repeated mixtures = noise model).")
@click.option("--scores", default=None, help="Score columns to keep (default: every other numeric column).")
@click.option("--normalize", is_flag=True, help="Rescale each row's weights to sum to 1 (e.g. percentages).")
@click.option("--rounding", default=None, type=float,
              help="The weights were rounded to multiples of this (e.g. 0.001): a row summing to within "
                   "datasets x rounding / 2 of 1 is rescaled to 1, any other is an error.")
@click.option("--results", default=None, type=click.Path(dir_okay=False),
              help="A second file with the results, joined one-to-one with TABLE (the mixtures) on --key.")
@click.option("--key", default=None, help="The column joining TABLE and --results (e.g. index); not a score.")
@click.option("--rename", default=None, help="OLD=NEW,...: rename columns of the (joined) table before use.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default ./suites/NAME).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
@_guard
def suite_import_cmd(table, name, weights, metric, goal, seed_col, scores, normalize, rounding, results, key, rename,
                     out, overwrite):
    """Turn a results table (weight columns + score columns, one row per run; or a mixture file and a result
    file joined on a key column, as RegMix releases its runs) into a replay suite."""
    from harness.factory.importer import check_name_free, import_table

    out = out or str(Path("suites") / name)
    check_name_free(name, out)
    _check_out(str(Path(out).resolve().parent))
    score_list = [c.strip() for c in scores.split(",") if c.strip()] if scores else None
    folder = import_table(table, name, weights, metric, goal, out, seed_col=seed_col, scores=score_list,
                          normalize=normalize, overwrite=overwrite, results=results, key=key, rename=rename,
                          rounding=rounding)
    from harness.suites import load_folder

    s = load_folder(folder)
    click.echo(f"suite {name!r}: {len(s.table)} runs, {len(s.recorded)} mixtures, {s.space.dim} datasets -> {folder}")
    _echo_judge(s.card)
    click.echo(f"use it with: modomodo bench --suite {folder} [--track {'|'.join(s.card['judge']['tracks'])}] ...")


def _echo_judge(card: dict) -> None:
    """What the judge found on a recorded suite: tracks, gate figures, support, signal, ranking."""
    judge = card.get("judge") or {}
    fid = judge.get("fidelity") or {}
    click.echo(f"tracks: {', '.join(judge.get('tracks', []))} (pool: {judge.get('pool', {}).get('candidates')} "
               f"recorded mixtures)")
    for model, f in (fid.get("models") or {}).items():
        click.echo(f"  surrogate {model:<13} held-out Spearman {f['spearman']:+.3f}  RMSE {f['rmse_over_sd']:.2f} x sd"
                   f"{'  passes' if f['passes'] else ''}")
    click.echo(f"fidelity gate: {'PASSED' if fid.get('passed') else 'failed'}: {fid.get('reason', '')}")
    sup = judge.get("support") or {}
    if sup:
        bounds = ", ".join(f"{d}∈[{lo:.2f},{hi:.2f}]" for d, lo, hi in zip(card.get("datasets", []), sup["lower"], sup["upper"]))
        click.echo(f"support (continuous track bounds): {bounds}")
    for track, r in (judge.get("ranking") or {}).items():
        click.echo(f"{track} track: {'can rank' if r['can_rank'] else 'CANNOT rank'}: {r['reason']}")
    norm = card.get("normalization") or {}
    if norm:
        click.echo(f"normalisation: best_known {norm['best_known']:.6g}, worst_known {norm['worst_known']:.6g} "
                   f"({norm.get('statistic', '')})")


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
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="The sweep's result store.")
@click.option("--suite", "suite_ref", required=True, help="The live suite the sweep ran (e.g. minimodo-tiny-live).")
@click.option("--name", default=None, help="Name of the recorded replay suite (required unless --check).")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default ./suites/NAME).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
@click.option("--metric", default=None, help="The recorded suite's objective (default: the live suite's metric).")
@click.option("--notes-file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Text kept on the card as signal_notes: how the signal was reached, or why not.")
@click.option("--check", is_flag=True, help="Only print the runs per mixture and the signal-to-noise figures.")
@_guard
def suite_from_sweep_cmd(store_dir, suite_ref, name, out, overwrite, metric, notes_file, check):
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
        click.echo(f"{s.id}: {len(df)} runs, {per_mix.size} mixtures, seeds per mixture {int(per_mix.min())}-"
                   f"{int(per_mix.max())}, median {df['wall_s'].median():.1f} s per run")
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
            click.echo(f"{objective}: SNR {now['target']:g} expected at "
                       f"{need if need else 'no number of'} seeds per mixture")
            if any(r.checkpoints for r in store.results() if r.spec.get("protocol") == s.protocol):
                from harness.factory.export import fidelity_table
                from harness.suites.signal import fidelity_signal

                block = fidelity_signal(fidelity_table(store, s), wcols, [objective])
                snr = ", ".join(f"{f}: {v[objective]['snr_mean']:.2f}" for f, v in block["signal"].items()
                                if objective in v)
                rho = ", ".join(f"{f}: {v[objective]['spearman_with_full']:.2f}"
                                for f, v in block["rank_correlation"].items() if objective in v)
                click.echo(f"{objective} SNR of the per-mixture mean by fidelity: {snr or '-'}; rank correlation "
                           f"of per-mixture means with full fidelity: {rho or '-'}")
        return
    if not name:
        raise UserError("--name is required (the recorded suite's name), unless --check")
    from harness.factory.export import export_suite

    notes = Path(notes_file).read_text(encoding="utf-8") if notes_file else None
    folder = export_suite(store, s, name, out or Path("suites") / name, overwrite=overwrite, metric=metric,
                          signal_notes=notes)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    click.echo(card["description"])
    click.echo(f"wrote {folder}; use it with: modomodo bench --suite {folder} ...")


@main.command("verify")
@click.option("--suite", "suite_ref", required=True, help="A recorded suite (e.g. minimodo-tiny): its card's "
              "protocol.recorded_from names the live suite to re-run.")
@click.option("--runs", default=3, show_default=True, type=int, help="Recorded (mixture, seed) pairs to re-run.")
@click.option("--runner", default=None, type=click.Choice(["cpu", "gpu", "replay"]),
              help="Runner kind (default: the one the suite was recorded with).")
@click.option("--workers", default=1, show_default=True, type=int, help="Re-runs at once (processes).")
@click.option("--live", "live_ref", default=None, help="The live suite (name or folder) when the card's "
              "protocol.recorded_from is not registered here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_guard
def verify_cmd(suite_ref, runs, runner, workers, live_ref, as_json):
    """Re-run recorded (mixture, seed) pairs of a recorded suite with its live protocol: the new value beside
    the recorded one, its z-score against the mixture's recorded seeds, bit-for-bit or not, and a stated
    test of consistency with the recording (exit status 1 when not consistent)."""
    from harness.factory.verify import format_report, format_rerun, verify

    if runs < 1:
        raise UserError(f"--runs must be an integer >= 1, got {runs}")
    if workers < 1:
        raise UserError(f"--workers must be an integer >= 1, got {workers}")
    report = verify(suite_ref, runs=runs, runner=runner, workers=workers, live=live_ref,
                    on_rerun=None if as_json else (lambda r, metric: click.echo("re-run done:" + format_rerun(r, metric)[1:],
                                                                                err=True)))
    click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True) if as_json else format_report(report))
    if not report.consistent:
        sys.exit(1)


@main.group("reproduce")
def reproduce_group():
    """Reproduce published computations offline."""


@reproduce_group.command("paper")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Also write the markdown report here.")
@click.option("--table", default=None, type=click.Path(dir_okay=False, exists=True),
              help="The full transcribed Table 2 CSV, checked against the record.")
@_guard
def reproduce_paper_cmd(as_json, out, table):
    """Recompute the paper's heuristic mixtures and quadratic surrogate from its seed runs."""
    from strategies.reproduce_paper import main as reproduce_paper

    args = (["--json"] if as_json else []) + (["--out", out] if out else []) + (["--table", table] if table else [])
    sys.exit(reproduce_paper(args))


def _register_leaderboard() -> None:
    """`modomodo leaderboard render|publish` live in leaderboard/cli.py."""
    from leaderboard.cli import leaderboard

    main.add_command(leaderboard)


_register_leaderboard()


if __name__ == "__main__":  # pragma: no cover
    main()
