"""Crash-safe result store: one JSON file per completed run, keyed by the RunSpec hash.

Why files and not a database or one journal: a record is written to a private temporary file in
the same folder and moved into place with `os.replace`, which is atomic on POSIX. So
- a process killed at any instant leaves either no record or a whole one (a stray temporary file
  at worst, which readers ignore and `sweep()` removes): only runs in flight are lost;
- several processes (local workers, SLURM jobs on a shared file system) can write at once without
  locks: two writers of the same key write the same run, and the last rename wins whole;
- resuming is a lookup by key, so a completed run is never paid for twice.
Records are sharded by the first two hex digits of the key to keep folders small. Failed runs are
kept apart (`failed/`), for inspection, and are retried on resume rather than served as results.

Every record carries the sha256 of its content (`_sha256`). A record whose content no longer matches
its hash (edited by hand or by anything else that is not the store), has no hash, or is not whole JSON
(truncated, empty) is not served: it is moved to `quarantine/`, a warning names it, and the run (or
study) is done again. Records written before the hash existed can be vouched for once with
`python -m harness.store seal STORE` (the committed sweep stores were). This catches tampering and corruption by
anything that does not recompute the hash; what keeps strategies away from the store altogether
is the sandbox (harness/sandbox/): only the bench process writes here.

Writes are not fsync'ed by default: a killed process loses nothing the kernel has accepted; only a
power cut could. Pass `durable=True` where that matters (long GPU runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.spec import RunResult

INTEGRITY_FIELD = "_sha256"
BASE_FIELD = "base_weights_sha256"  # in a trained run's provenance: the sha256 of the base model it started from


class MixedBaseError(RuntimeError):
    """A trained run would join a store whose runs of the same protocol started from other base weights."""


def content_hash(record: dict[str, Any]) -> str:
    """sha256 of a record's content (without its hash field), as JSON would give it back."""
    return _hashed_text(record)[0]


# what stands for a field given as text (`encoded`) while the rest of the record is encoded: a string no record holds
_SLOT = "\x00modomodo: encoded apart\x00"
_SLOT_JSON = json.dumps(_SLOT)


def _hashed_text(record: dict[str, Any], encoded: dict[str, str] | None = None) -> tuple[str, str]:
    """(content hash, the canonical text it hashes: the record without its hash field, as JSON would give it
    back, keys sorted, compact). `encoded`: fields of the record whose canonical text the caller already has
    (exactly `json.dumps(value, sort_keys=True, separators=(",", ":"))`: a study's trajectory, written as the
    study went, harness/studies/record.py); they are spliced in instead of being encoded again."""
    body = {k: v for k, v in record.items() if k != INTEGRITY_FIELD}
    apart = {k: t for k, t in (encoded or {}).items() if k in body}
    for k in apart:
        body[k] = _SLOT
    if not _reads_back_as_is(body):
        body = json.loads(json.dumps(body))  # tuples, int keys ... as they read back
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    for k, part in apart.items():
        slot = f"{json.dumps(k)}:{_SLOT_JSON}"
        if text.count(_SLOT_JSON) != len(apart) or slot not in text:  # the slot string elsewhere: encode it all
            return _hashed_text(record)
        text = text.replace(slot, f"{json.dumps(k)}:{part}", 1)
    return hashlib.sha256(text.encode()).hexdigest(), text


def sealed_text(record: dict[str, Any], encoded: dict[str, str] | None = None) -> str:
    """The text a record is stored as: its canonical text (`content_hash`'s) with the hash field put first, so one
    serialisation gives both the hash and the file (a finished study's trajectory is most of the cost of storing
    it). Readers parse it as any JSON object; the hash is checked on the parsed content, not on the bytes.
    `encoded`: see `_hashed_text`."""
    digest, text = _hashed_text(record, encoded)
    return f'{{"{INTEGRITY_FIELD}":"{digest}"' + ("}" if text == "{}" else "," + text[1:])


def _reads_back_as_is(value: Any) -> bool:
    """Whether `value` sorts and prints as JSON exactly as its read-back copy would: plain strings, numbers,
    booleans, None, lists and tuples of them, and dicts whose keys are all strings (an int key would sort as a
    number here and as a string once read back). Then the read-back copy need not be made: it was a JSON
    round trip per record, the larger part of storing a finished study."""
    todo = [value]
    while todo:
        v = todo.pop()
        t = type(v)
        if t in _JSON_LEAVES:
            continue
        if isinstance(v, dict):
            if not all(type(k) is str for k in v):
                return False
            todo.extend(v.values())
        elif isinstance(v, (list, tuple)):
            todo.extend(v)
        elif not isinstance(v, (str, int, float)):
            return False
    return True


_JSON_LEAVES = frozenset({str, int, float, bool, type(None)})


def _base_of(provenance: dict) -> str | None:
    sha = provenance.get(BASE_FIELD) if isinstance(provenance, dict) else None
    return sha if isinstance(sha, str) and sha and sha != "not recorded" else None


def _protocol_of(spec: dict) -> str:
    return str(spec.get("protocol") or spec.get("suite"))


class ResultStore:
    def __init__(self, root: str | Path, durable: bool = False):
        self.root = Path(root)
        self.durable = durable
        self.runs_dir = self.root / "runs"
        self.failed_dir = self.root / "failed"
        self.studies_dir = self.root / "studies"
        self.quarantine_dir = self.root / "quarantine"
        self.rejected = 0  # records that failed their integrity check in this process (re-run, not served)
        self._bases: dict[str, set[str]] | None = None  # protocol -> base weights its stored runs started from
        for d in (self.runs_dir, self.failed_dir, self.studies_dir):
            if not os.path.isdir(d):  # a bench opens its store once per study: a look is cheaper than mkdir
                d.mkdir(parents=True, exist_ok=True)

    # -- runs -----------------------------------------------------------------------------------
    def _path(self, folder: Path, key: str) -> Path:
        if len(key) < 8 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"store key must be a hex digest, got {key!r}")
        return folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> RunResult | None:
        data = self._read(self._path(self.runs_dir, key))
        return None if data is None else RunResult.from_dict(data)

    def __contains__(self, key: str) -> bool:
        path = self._path(self.runs_dir, key)
        return path.exists() and self._read(path) is not None

    def put(self, result: RunResult) -> None:
        """Record a run. Successful runs become results; failed ones go to `failed/` for inspection.

        A store never mixes runs of one protocol trained from different base weights (MixedBaseError): a run's key
        names its protocol, not the base model's weights, and a base built on another machine differs (its
        warm-up rounds differently on AVX2 and AVX-512), so a sweep or online re-record resumed elsewhere would
        otherwise add runs that differ from the stored ones by more than their seed."""
        if result.ok:
            self._check_base(result)
        folder = self.runs_dir if result.ok else self.failed_dir
        record = result.to_dict()
        record["stored_at"] = time.time()
        record["stored_by_pid"] = os.getpid()
        self._write_atomic(self._path(folder, result.key), record)

    def _check_base(self, result: RunResult) -> None:
        sha = _base_of(result.provenance)
        if sha is None:
            return
        protocol = _protocol_of(result.spec)
        known = self._bases_by_protocol().setdefault(protocol, set())
        if known and sha not in known:
            theirs = ", ".join(k[:12] for k in sorted(known))
            raise MixedBaseError(
                f"{self.root}: run {result.key[:12]} was trained from base weights {sha[:12]}, but this store's runs of "
                f"protocol {protocol} started from {theirs} (a base model built on another machine; see the README's "
                "'What reproduces'): resume this store where the base builds as before, or write to a new store"
            )
        known.add(sha)

    def _bases_by_protocol(self) -> dict[str, set[str]]:
        """Read once per store object (records of runs without a recorded base do not count)."""
        if self._bases is None:
            self._bases = {}
            for path in sorted(self.runs_dir.glob("*/*.json")):
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # a damaged record is the integrity check's business, when it is read
                sha = _base_of(data.get("provenance") or {})
                if sha is not None:
                    self._bases.setdefault(_protocol_of(data.get("spec") or {}), set()).add(sha)
        return self._bases

    def results(self) -> Iterator[RunResult]:
        for path in sorted(self.runs_dir.glob("*/*.json")):
            data = self._read(path)
            if data is not None:
                yield RunResult.from_dict(data)

    def failures(self) -> Iterator[RunResult]:
        for path in sorted(self.failed_dir.glob("*/*.json")):
            data = self._read(path)
            if data is not None:
                yield RunResult.from_dict(data)

    def __len__(self) -> int:
        return sum(1 for _ in self.runs_dir.glob("*/*.json"))

    # -- whole studies (so a resumed bench can skip finished ones and rebuild its summary) ---------
    def get_study(self, key: str) -> dict[str, Any] | None:
        return self._read(self._path(self.studies_dir, key))

    def put_study(self, key: str, record: dict[str, Any], encoded: dict[str, str] | None = None) -> None:
        """Record a finished study. `encoded`: the canonical JSON text of some of its fields, built already (the
        study's trajectory, `StudyOutcome.encoded_fields`); the stored text is the same as without it."""
        self._write_atomic(self._path(self.studies_dir, key), record, encoded)

    # -- housekeeping ---------------------------------------------------------------------------
    def sweep(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary files left by killed writers (only old ones: others may be writing)."""
        now, removed = time.time(), 0
        for path in self.root.glob("*/*/.*.tmp"):
            try:
                if now - path.stat().st_mtime > older_than_s:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def to_dataframe(self):
        """All successful runs as a flat pandas table (one row per run, one column per score)."""
        import pandas as pd

        rows = []
        for r in self.results():
            row = {
                "key": r.key,
                "suite": r.spec["suite"],
                "seed": r.spec["seed"],
                "fidelity": r.spec.get("fidelity", 1.0),
                "source": r.source,
                "metric": r.metric,
            }
            row.update({f"w_{k}": v for k, v in r.spec["mixture"].items()})
            row.update(r.scores)
            row.update({f"cost_{k}": v for k, v in r.cost.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def to_hf_dataset(self):
        """The runs as a Hugging Face `datasets.Dataset` (needs the `train` extra's `datasets`)."""
        try:
            import datasets
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("exporting the store needs the `datasets` package: pip install 'modomodo[train]'") from e
        return datasets.Dataset.from_pandas(self.to_dataframe(), preserve_index=False)

    # -- io -------------------------------------------------------------------------------------
    def quarantined(self) -> int:
        """How many records have failed their integrity check in this store (ever)."""
        return sum(1 for _ in self.quarantine_dir.glob("*/*.json")) if self.quarantine_dir.is_dir() else 0

    def _reject(self, path: Path, why: str) -> None:
        self.rejected += 1
        dest = self.quarantine_dir / path.parent.parent.name / f"{path.stem}.{time.time_ns()}.json"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            where = f"moved to {dest.relative_to(self.root)}"
        except FileNotFoundError:  # another reader moved it first
            where = "already moved to quarantine/"
        except OSError as e:
            where = f"could not be moved ({e})"
        print(
            f"modomodo: warning: store record {path.relative_to(self.root)} {why}: not served, {where}; it will be "
            f"done again",
            file=sys.stderr,
            flush=True,
        )

    def _write_atomic(self, path: Path, record: dict[str, Any], encoded: dict[str, str] | None = None) -> None:
        text = sealed_text(record, encoded)  # one write (json.dump writes each token apart)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}.", suffix=".tmp")
        except FileNotFoundError:  # the record's shard folder (key[:2]) is new
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                if self.durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def _read(self, path: Path) -> dict[str, Any] | None:
        """A record, or None when there is none or it cannot be trusted: truncated, empty, not a JSON object,
        without its hash or not matching it. Those are quarantined (moved aside, never deleted) and the run
        or study is done again; a resume never stops on one."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._reject(path, "is empty" if not raw.strip() else f"is not whole JSON ({len(raw)} bytes: truncated?)")
            return None
        if not isinstance(data, dict):
            self._reject(path, f"is not a JSON object (a {type(data).__name__})")
            return None
        digest = data.pop(INTEGRITY_FIELD, None)
        if digest is None:
            self._reject(
                path,
                f"has no integrity hash ({INTEGRITY_FIELD}); records written before hashes existed "
                f"can be vouched for with `python -m harness.store seal {self.root}` before a resume",
            )
            return None
        if digest != content_hash(data):
            self._reject(path, "failed its integrity check (its content does not match its sha256)")
            return None
        return data

    # -- records written before integrity hashes --------------------------------------------------
    def seal(self) -> int:
        """Add the integrity hash to every whole record that has none (records written by versions before
        hashes existed). Run it only on a store you vouch for: its content becomes the reference. Returns
        how many records were sealed."""
        sealed = 0
        for folder in (self.runs_dir, self.failed_dir, self.studies_dir):
            for path in sorted(folder.glob("*/*.json")):
                try:
                    data = json.loads(path.read_bytes())
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # not whole: left for the quarantine
                if isinstance(data, dict) and INTEGRITY_FIELD not in data:
                    self._write_atomic(path, data)
                    sealed += 1
        return sealed


def _main(argv: list[str] | None = None) -> int:
    """`python -m harness.store seal STORE`: vouch for a store's records written before integrity hashes."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m harness.store", description=_main.__doc__)
    ap.add_argument("command", choices=["seal"])
    ap.add_argument("store", type=Path)
    args = ap.parse_args(argv)
    if not (args.store / "runs").is_dir():
        ap.error(f"{str(args.store)!r} is not a result store (it has no runs/ folder)")
    n = ResultStore(args.store).seal()
    print(f"sealed {n} records in {args.store}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
