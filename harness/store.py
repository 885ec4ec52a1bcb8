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

Writes are not fsync'ed by default: a killed process loses nothing the kernel has accepted; only a
power cut could. Pass `durable=True` where that matters (long GPU runs).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.spec import RunResult


class ResultStore:
    def __init__(self, root: str | Path, durable: bool = False):
        self.root = Path(root)
        self.durable = durable
        self.runs_dir = self.root / "runs"
        self.failed_dir = self.root / "failed"
        self.studies_dir = self.root / "studies"
        for d in (self.runs_dir, self.failed_dir, self.studies_dir):
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
        return self._path(self.runs_dir, key).exists()

    def put(self, result: RunResult) -> None:
        """Record a run. Successful runs become results; failed ones go to `failed/` for inspection."""
        folder = self.runs_dir if result.ok else self.failed_dir
        record = result.to_dict()
        record["stored_at"] = time.time()
        record["stored_by_pid"] = os.getpid()
        self._write_atomic(self._path(folder, result.key), record)

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

    def put_study(self, key: str, record: dict[str, Any]) -> None:
        self._write_atomic(self._path(self.studies_dir, key), record)

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
            row = {"key": r.key, "suite": r.spec["suite"], "seed": r.spec["seed"], "fidelity": r.spec.get("fidelity", 1.0),
                   "source": r.source, "metric": r.metric}
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
    def _write_atomic(self, path: Path, record: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, sort_keys=True)
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

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as e:
            # Cannot happen through put() (atomic rename); a hand-edited or truncated-by-disk file
            # is reported, not silently served.
            raise RuntimeError(f"corrupt store record {path}: {e}; delete it to re-run that run") from e
