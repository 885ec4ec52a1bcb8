"""The field machinery every protocol shares: help text, strict coercion, fingerprint, describe.

Two kinds of protocol fix what a run depends on apart from its mixture and seed: the GPU protocol files
(`baselines/configs/*.yaml`, harness/protocols/gpu.py) and the CPU presets (harness/training/config.py). Both
are frozen dataclasses whose fields are made by `setting`, and both use this one module to
- say what a field means (`describe`, the reference a person writes a protocol from),
- turn a mapping (a YAML file, a suite card's `protocol_config:`) into the dataclass strictly (`build`):
  an unknown key, a string where a number goes or a missing required setting is a one-line error naming
  the key and what to write instead, never a silent mistype that would change a fingerprint,
- hash what changes results (`result_fields`, `fingerprint`): fields marked `label` are names only, and a
  field added after runs were recorded carries its `neutral` value (the behaviour from before it
  existed), at which it stays out of the hash, so adding an option never re-keys a stored run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import field
from typing import Any

from harness.mixture import did_you_mean

_NO_NEUTRAL = object()


class ProtocolError(ValueError):
    """A protocol (file, preset or card section) that cannot be used; the message names the key and what to set."""


def setting(
    default: Any = dataclasses.MISSING, help: str = "", *, neutral: Any = _NO_NEUTRAL, label: bool = False, **kw
) -> Any:
    """A protocol field with help text. `label`: a name only, never changes results (left out of
    `result_fields` unless asked for). `neutral`: for a field added after protocols were recorded, the value
    that reproduces the behaviour from before it existed; at that value it is left out of `result_fields`.
    A mutable default (list, dict) is copied for every instance."""
    meta = {"help": help, "label": label}
    if neutral is not _NO_NEUTRAL:
        meta["neutral"] = neutral
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


# -- fingerprint -----------------------------------------------------------------------------------
def result_fields(cfg: Any, labels: bool = False) -> dict[str, Any]:
    """The fields of a protocol dataclass that change results, nested ones recursed: fields at their
    `neutral` value dropped, and labels unless `labels`."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if (f.metadata.get("label") and not labels) or ("neutral" in f.metadata and value == f.metadata["neutral"]):
            continue
        out[f.name] = result_fields(value, labels) if dataclasses.is_dataclass(value) else value
    return out


def fingerprint(payload: dict[str, Any], compact: bool = True) -> str:
    """16 hex digits of sha256 over `payload` as JSON with sorted keys. `compact`: no spaces after the
    separators (the GPU protocols' hash); the CPU presets hash with json's default separators, which
    every recorded CPU run's `config_fingerprint` was made with."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":") if compact else None, allow_nan=not compact)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- strict coercion ---------------------------------------------------------------------------------
def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def coerce(tp: Any, value: Any, where: str) -> Any:
    """`value` as a field of type `tp` holds it (a nested dataclass built from a mapping, a list as a tuple),
    or ProtocolError naming `where`. No silent conversion between kinds: an int goes where a float does
    (YAML writes 2 for 2.0), a number where a string does, nothing else."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ProtocolError(f"{where} must be a mapping of settings, got {value!r}")
        return build(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ProtocolError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ProtocolError(f"{where} must be a string, got {value!r}")
        return str(value)
    if tp in (list, dict, tuple) or origin in (list, dict, tuple):
        want = origin or tp
        ok = isinstance(value, (list, tuple)) if want in (list, tuple) else isinstance(value, dict)
        if not ok:
            raise ProtocolError(f"{where} must be a {'list' if want in (list, tuple) else 'mapping'}, got {value!r}")
        return tuple(value) if want is tuple else (list(value) if want is list else value)
    return value


def build(cls: type, data: dict[str, Any], where: str = "", start: Any = None) -> Any:
    """An instance of the protocol dataclass `cls` from a mapping, every value coerced strictly. `start`: an
    instance whose values the mapping overrides (a preset); else the fields' defaults, and a field with no
    default must be given."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ProtocolError(f"unknown setting {_join(where, str(key))}; {did_you_mean(str(key), names)}")
    kwargs = {k: coerce(hints[k], v, _join(where, k)) for k, v in data.items()}
    try:
        if start is not None:
            return dataclasses.replace(start, **kwargs)
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ProtocolError(
                "missing setting(s): "
                + "; ".join(f"{_join(where, m)}: {cls.__dataclass_fields__[m].metadata['help']}" for m in missing)
            )
        return cls(**kwargs)
    except ProtocolError:
        raise
    except ValueError as e:  # a field's own check ("slurm.x must ...", "eval_checkpoints must ..."): keep its wording
        raise ProtocolError(str(e)) from None


# -- describe ------------------------------------------------------------------------------------
def describe(cls: type, prefix: str = "", dotted: bool = False) -> list[str]:
    """`key: help (default X)` lines for every setting, nested ones under their section: indented (the
    reference for writing a protocol file), or `section.key` when `dotted` (as a card overrides one)."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, help_text = hints[f.name], f.metadata.get("help", "")
        if dataclasses.is_dataclass(tp):
            lines.append(f"{prefix}{f.name}: {help_text}")
            lines += describe(tp, f"{prefix}{f.name}." if dotted else f"{prefix}  ", dotted)
        else:
            default = (
                f.default
                if f.default is not dataclasses.MISSING
                else (f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
            )
            lines.append(f"{prefix}{f.name}: {help_text} (default {default!r})")
    return lines
