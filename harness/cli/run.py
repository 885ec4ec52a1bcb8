"""`modomodo run` (one pilot run of a mixture) and `modomodo prefetch` (a GPU protocol's models and data)."""

from __future__ import annotations

import json
import sys

import click

from harness.cli.common import RUNNER_KINDS, UserError, _bind_gpu_protocol, _check_protocol_file, _guard
from harness.mixture import InvalidMixture


@click.command("run")
@click.option("--suite", "suite_ref", required=True, help="Registered suite name or suite folder.")
@click.option(
    "--mixture", required=True, help='Weights of every dataset, e.g. "COCO=0.5,LISA=0.5,GeoQAV=0,SAT=0,ScienceQA=0".'
)
@click.option("--seed", default=0, show_default=True, type=int, help="Training seed of the run.")
@click.option(
    "--runner",
    default="replay",
    show_default=True,
    type=click.Choice(RUNNER_KINDS),
    help="Runner kind: replay (recorded tables, analytic suites), cpu or gpu (real training).",
)
@click.option("--normalize", is_flag=True, help="Rescale the weights to sum to 1 (e.g. percentages).")
@click.option("--fidelity", default=1.0, show_default=True, type=float, help="Fraction of the full protocol.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the resolved configuration and the commands the runner would launch (gpu runner), without running.",
)
@click.option(
    "--protocol-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Protocol file (baselines/configs/*.yaml) for the gpu runner (default: the suite's).",
)
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
            raise UserError(
                f"--dry-run shows what a launching runner would do; runner {runner!r} launches nothing "
                f"(use --runner gpu)"
            )
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
    why = (
        "its surrogate fails the fidelity gate"
        if fid
        else "its card has no fidelity-gate verdict (`modomodo suite check --write` measures one)"
    )
    raise UserError(
        f"mixture {m} is not recorded in {s.name!r}, and {why}, so only its {len(s.recorded)} recorded "
        f"mixtures have scores; the nearest is {near}"
    )


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
            raise InvalidMixture(
                str(e).split("; use Mixture.normalized")[0] + "; pass --normalize to rescale them to sum to 1"
            ) from None
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
        raise InvalidMixture(
            f"--mixture {text!r} gives no weight to {', '.join(left)}; name every dataset of the "
            f"suite ({', '.join(space.datasets)}), with =0 for those it leaves out"
        )


@click.command("prefetch")
@click.option(
    "--protocol", "protocol_ref", required=True, help="Protocol file or the name of one in baselines/configs."
)
@click.option(
    "--cache-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Shared Hub cache (default: $HF_HUB_CACHE); compute nodes read it with HF_HUB_OFFLINE=1.",
)
@click.option("--check-only", is_flag=True, help="Download nothing: only check that an offline run finds everything.")
@click.option("--list", "list_only", is_flag=True, help="Only list what the protocol needs.")
@_guard
def prefetch_cmd(protocol_ref, cache_dir, check_only, list_only):
    """Download every model and dataset a protocol needs (huggingface_hub), then check them offline."""
    _prefetch(protocol_ref, cache_dir, check_only, list_only)


def _prefetch(protocol_ref, cache_dir, check_only: bool, list_only: bool) -> None:
    from harness.protocols.prefetch import check_offline, download, needs
    from harness.protocols.gpu import load_protocol

    protocol = load_protocol(protocol_ref)
    items = needs(protocol)
    for n in items:
        click.echo(
            f"{n.repo_type:<8} {n.repo_id}{f' [{n.config}]' if n.config else ''}"
            f"{f' split {n.split}' if n.split else ''}  ({n.why})"
        )
    if list_only or not items:
        return
    ds_cache = protocol.datasets.cache_dir or None
    if not check_only:
        download(items, cache_dir, ds_cache, log=lambda m: click.echo(m, err=True))
    missing = check_offline(items, cache_dir, datasets_cache_dir=ds_cache)
    if missing:
        raise UserError(
            f"with HF_HUB_OFFLINE=1 a run of {protocol.name} would not find {len(missing)} of {len(items)}: "
            + "; ".join(f"{m['repo_type']} {m['repo_id']} ({m['error']})" for m in missing)
        )
    click.echo(f"offline check: all {len(items)} found with HF_HUB_OFFLINE=1{f' in {cache_dir}' if cache_dir else ''}")
