"""What every command shares: the one-line user error (exit status 2), the guard that turns the project's
validation errors into it, and the parsers of list-valued options."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from harness.mixture import InvalidMixture
from harness.store import MixedBaseError
from harness.suites import SuiteError
from harness.suites.table import TableError

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
        except (InvalidMixture, SuiteError, TableError, UnknownStrategy, FileNotFoundError, MixedBaseError) as e:
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
            raise UserError(
                f"--budget must be comma-separated numbers of run-equivalents (e.g. 4,8,16); {x!r} is not one"
            ) from None
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


def _allow_unsandboxed(flag: bool) -> None:
    """--allow-unsandboxed: through the environment, so that the bench's worker processes see it too."""
    if flag:
        import os

        from harness.sandbox.policy import ALLOW, SANDBOX_ENV

        os.environ[SANDBOX_ENV] = ALLOW


def _one_line(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        raise UserError(
            f"--protocol-file {path!r} is not a text file (binary data); give a protocol YAML such as "
            f"baselines/configs/*.yaml"
        ) from None
    except yaml.YAMLError as e:
        raise UserError(f"--protocol-file {path!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise UserError(f"--protocol-file {path!r} holds a {type(doc).__name__}, not a mapping of protocol settings")


def _bind_gpu_protocol(suite, runner: str, protocol_file):
    """The suite keyed by the gpu protocol file (--protocol-file, else the card's) for the gpu runner; unchanged
    for other runners (harness/runners/gpu_identity.py)."""
    from harness.runners.gpu_identity import bind_protocol

    return bind_protocol(suite, runner, str(Path(protocol_file).resolve()) if protocol_file else None)


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
