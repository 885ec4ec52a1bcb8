"""Re-key result stores from the fingerprints before issue 30 to harness/fingerprint.py's.

Two identities changed, and every key that names them:
- a suite's protocol hash (in every run's spec and key, and every study's key): was the sha256 of the
  card's bytes (and runs.csv's); is now that of the card's parsed content (harness.fingerprint.card_identity);
- a built-in strategy's code fingerprint (in every study key, and in an online run's spec and key): was the
  bytes of every strategies/*.py (offline) or of its module + strategies/online.py + strategies/base.py
  (online); is now its module's import closure, by normalised syntax tree (code_fingerprint).

How a record is mapped. The old hashes cannot be recomputed from today's files (a record made at an older
commit hashed older bytes), so the map is built from the git history: for every commit, each card's old
hash -> its new hash (a function: the same bytes give the same content), and each built-in strategy's old
fingerprint -> its new fingerprint at that commit. Where one old fingerprint spans several commits with
different new ones (the old rule did not see a change that the new one sees, e.g. in harness/spec.py), the
new fingerprint of today's code is taken if today's code still has that old fingerprint (the record is
served today: it keeps being served), else the newest commit's. Then every record is checked: its key must
be what the OLD rule gives for its stored fields (runs: RunSpec.key of its spec; studies: the study key of
its suite, protocol, track, runner, strategy, fingerprint, budget and seed, tried over the candidates),
and only then is it written under the new key (with its spec, protocol and integrity hash updated) and its
old file removed. A record already under its new key is left alone (re-running is harmless). A record that
cannot be mapped (a card or a strategy version not in the history, a key that its fields do not give) is
left where it is and reported; nothing is ever deleted unmapped.

Usage (from the repository root; folders: a store, a sweep store with its design.json, or a bench --out
folder holding store/, whose studies.json, CSVs and bench.json are rewritten to the new keys):

    python scripts/migrate_keys.py --dry-run baselines/online     # print what would change
    python scripts/migrate_keys.py baselines/online baselines/online/oracle-store baselines/sweeps/*
    python scripts/migrate_keys.py --card baselines/minimodo-tiny/card.yaml   # a recorded card's protocol_hash
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.runners.gpu_identity import GPU_MARK  # noqa: E402
from harness.spec import RunSpec  # noqa: E402
from harness.store import INTEGRITY_FIELD, content_hash  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from key_history import Index, legacy_study_key  # noqa: E402

RUNNERS = ("replay", "cpu", "gpu", "submitit")
HEX16, HEX64 = re.compile(r"\b[0-9a-f]{16}\b"), re.compile(r"\b[0-9a-f]{64}\b")
ONLINE_ID = re.compile(r"([A-Za-z0-9_.\-]+)@([0-9a-f]{16}):")


# -- records ----------------------------------------------------------------------------------------
def _read(path: Path) -> dict | None:
    """A record whose integrity hash checks, or None (left alone and reported: the store quarantines it)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    digest = data.get(INTEGRITY_FIELD)
    body = {k: v for k, v in data.items() if k != INTEGRITY_FIELD}
    if digest is not None and digest != content_hash(body):
        return None
    return body


def _write(path: Path, record: dict) -> None:
    record = {**record, INTEGRITY_FIELD: content_hash(record)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, sort_keys=True)
    os.replace(tmp, path)


class Migration:
    def __init__(self, index: Index, dry_run: bool):
        self.index, self.dry = index, dry_run
        self.run_keys: dict[str, str] = {}  # old run key -> new
        self.study_keys: dict[str, str] = {}
        self.protocols: dict[str, str] = {}  # old protocol string -> new (as met in records)
        self.online_ids: dict[tuple[str, str], str] = {}  # (name, old fp) -> new fp
        self.counts: dict[str, int] = defaultdict(int)
        self.unmapped: list[str] = []

    def _move(self, folder: Path, old_key: str, new_key: str, record: dict, what: str) -> None:
        src, dst = folder / old_key[:2] / f"{old_key}.json", folder / new_key[:2] / f"{new_key}.json"
        if dst.exists():
            self.counts[f"{what}: new key already stored (old file left in place)"] += 1
            return
        self.counts[f"{what}: re-keyed"] += 1
        if self.dry:
            print(f"  {what} {old_key[:16]} -> {new_key[:16]}")
            return
        _write(dst, record)
        src.unlink()
        try:
            src.parent.rmdir()  # a shard folder left empty
        except OSError:
            pass

    def _online(self, ident: str) -> str | None:
        """An online identity 'name@fp:params' with its fingerprint mapped, or None if it cannot be."""
        m = ONLINE_ID.match(ident)
        if not m:
            return None
        name, fp = m.group(1), m.group(2)
        if name not in self.index.current_new:
            new = fp  # not a built-in: a user's file, named by its sha256 under both rules
        elif fp in self.index.new_codes.get(name, ()):
            new = self.index.today(name, fp)
        else:
            new = self.index.new_code("online", name, fp)
        if new is None:
            return None
        self.online_ids[(name, fp)] = new
        return f"{name}@{new}:{ident[m.end() :]}"

    def runs(self, folder: Path, label: str) -> None:
        for path in sorted(folder.glob("*/*.json")):
            key, rec = path.stem, _read(path)
            if rec is None or not isinstance(rec.get("spec"), dict):
                self.unmapped.append(f"{path}: unreadable or fails its integrity hash")
                continue
            spec = rec["spec"]
            try:
                if RunSpec.from_dict(spec).key != key:
                    self.unmapped.append(f"{path}: its spec does not give its key")
                    continue
            except (KeyError, TypeError, ValueError) as e:
                self.unmapped.append(f"{path}: spec unreadable ({e})")
                continue
            online = str(spec.get("online", ""))
            if self.index.is_new_protocol(str(spec["protocol"])):
                protocol = str(spec["protocol"])
            else:
                protocol = self.index.new_protocol(str(spec["protocol"]))
                if protocol is None:
                    self.unmapped.append(f"{path}: protocol {spec['protocol']} is no card version in the history")
                    continue
            new_spec = dict(spec, protocol=protocol)
            if online:
                mapped = self._online(online)
                if mapped is None:
                    self.unmapped.append(f"{path}: online strategy {online} is no strategy version in the history")
                    continue
                new_spec["online"] = mapped
            if new_spec == spec:
                self.counts[f"{label}: already under the new rule"] += 1
                continue
            new_key = RunSpec.from_dict(new_spec).key
            self.protocols[str(spec["protocol"])] = protocol
            self.run_keys[key] = new_key
            new = dict(rec, key=new_key, spec=new_spec)
            if isinstance(rec.get("provenance"), dict) and rec["provenance"].get("protocol") == spec["protocol"]:
                new["provenance"] = dict(rec["provenance"], protocol=protocol)
            self._move(folder, key, new_key, new, label)

    def studies(self, folder: Path) -> None:
        idx = self.index
        for path in sorted(folder.glob("*/*.json")):
            key, rec = path.stem, _read(path)
            if rec is None:
                self.unmapped.append(f"{path}: unreadable or fails its integrity hash")
                continue
            if rec.get("harness_error"):
                self.counts["studies: harness failures (task key, unchanged)"] += 1
                continue
            try:
                protocol, track, name = str(rec["protocol"]), str(rec.get("track", "")), str(rec["strategy"])
                budget, seed = rec["budget"], rec["seed"]
            except KeyError as e:
                self.unmapped.append(f"{path}: lacks field {e}")
                continue
            rule = "online" if track == "online" else "offline"
            suite = idx.suite_of.get(protocol.partition(GPU_MARK)[0])
            if suite is None:
                self.unmapped.append(f"{path}: protocol {protocol} is no card version in the history")
                continue
            ids = [f"{suite[0]}@{suite[1]}", f"{suite[0]}@{suite[1]}:{track}"]
            user = str(rec.get("strategy_sha256") or "")[:16]
            if idx.is_new_protocol(protocol):
                codes = ([user] if user else []) + sorted(idx.new_codes.get(name, ()))
                found = next(
                    (
                        (i, r, c)
                        for c in codes
                        for i in ids
                        for r in RUNNERS
                        if legacy_study_key(i, protocol, track, r, name, c, budget, seed) == key
                    ),
                    None,
                )
                if found is None:
                    self.unmapped.append(f"{path}: its fields do not give its key under the new rule")
                    continue
                suite_id, runner, code = found
                new_code, new_protocol = (code if code == user else idx.today(name, code)), protocol
                if new_code == code:
                    self.counts["studies: already under the new rule"] += 1
                    continue
            else:
                olds = ([user] if user else []) + sorted(
                    idx.old_codes.get((rule, name), ()), key=lambda c: c != idx.current_old.get((rule, name))
                )
                found = next(
                    (
                        (i, r, c)
                        for c in olds
                        for i in ids
                        for r in RUNNERS
                        if legacy_study_key(i, protocol, track, r, name, c, budget, seed) == key
                    ),
                    None,
                )
                if found is None:
                    self.unmapped.append(
                        f"{path}: {name} on {protocol}: no strategy version in the history gives its key"
                    )
                    continue
                suite_id, runner, old_code = found
                new_code = old_code if old_code == user else idx.new_code(rule, name, old_code)
                new_protocol = idx.new_protocol(protocol)
            new_key = legacy_study_key(suite_id, new_protocol, track, runner, name, new_code, budget, seed)
            self.study_keys[key] = new_key
            self.protocols[protocol] = new_protocol
            new = dict(rec, protocol=new_protocol)
            if isinstance(rec.get("trajectory"), list):
                new["trajectory"] = [
                    dict(t, run_key=self.run_keys.get(t.get("run_key"), t.get("run_key"))) if isinstance(t, dict) else t
                    for t in rec["trajectory"]
                ]
            self._move(folder, key, new_key, new, "studies")

    def rewrite_text(self, path: Path) -> None:
        """Replace every old key, protocol hash and online identity in a text file (CSV, JSON, YAML)."""
        text = path.read_text()
        keys = {**self.run_keys, **self.study_keys}
        protocols = {k.partition(GPU_MARK)[0]: v.partition(GPU_MARK)[0] for k, v in self.protocols.items()}
        protocols.update(self.index.protocol)
        new = HEX64.sub(lambda m: keys.get(m.group(0), m.group(0)), text)
        new = ONLINE_ID.sub(lambda m: f"{m.group(1)}@{self.online_ids.get((m.group(1), m.group(2)), m.group(2))}:", new)
        new = HEX16.sub(lambda m: protocols.get(m.group(0), m.group(0)), new)
        if new != text:
            self.counts[f"files rewritten ({path.name})"] += 1
            if self.dry:
                print(f"  would rewrite {path}")
            else:
                path.write_text(new)

    def folder(self, folder: Path) -> None:
        store = folder / "store" if (folder / "store").is_dir() else folder
        self.runs(store / "runs", "runs")
        self.runs(store / "failed", "failed runs")
        self.studies(store / "studies")
        for name in (
            "design.json",
            "studies.json",
            "bench.json",
            "summary.csv",
            "trajectories.csv",
            "online_runs.csv",
            "online.csv",
        ):
            if (folder / name).is_file():
                self.rewrite_text(folder / name)


def _kind(folder: Path) -> bool:
    store = folder / "store" if (folder / "store").is_dir() else folder
    return folder.is_dir() and (
        any((store / d).is_dir() for d in ("runs", "failed", "studies")) or (folder / "design.json").is_file()
    )


def _strategy_modules() -> dict[str, str]:
    import strategies

    return {
        n: strategies.get(n).__module__
        for n in strategies.names("offline") + strategies.names("online")
        if strategies.get(n).__module__.startswith("strategies.")
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("folders", nargs="*", type=Path, help="store, sweep or bench folders")
    ap.add_argument(
        "--card",
        action="append",
        type=Path,
        default=[],
        help="a recorded suite's card.yaml whose protocol.protocol_hash names an old live protocol",
    )
    ap.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the git repository whose history maps old hashes")
    ap.add_argument(
        "--vouch",
        metavar="REV",
        help="you vouch that every built-in strategy behaves today as at "
        "commit REV (whose fingerprints were already the new rule's): records keyed by REV's "
        "fingerprints are re-keyed to today's (e.g. after an edit to a harness module every strategy "
        "imports that changes no strategy's proposals)",
    )
    ap.add_argument(
        "--since",
        metavar="REV",
        help="read the history from this commit on only (faster; records made before it are then reported, not mapped)",
    )
    args = ap.parse_args(argv)
    for f in args.folders + args.card:
        if not f.exists():
            ap.error(f"{str(f)!r} does not exist")
    for folder in args.folders:  # every folder checked before any is touched
        if not _kind(folder):
            ap.error(
                f"{str(folder)!r} is no store (runs/, failed/ or studies/), sweep folder (design.json) or bench "
                f"folder (store/)"
            )
    try:
        index = Index(args.repo.resolve(), _strategy_modules(), since=args.since, vouch=args.vouch)
    except subprocess.CalledProcessError as e:
        ap.error(f"git could not read the history of {args.repo} ({' '.join(e.cmd[3:])}: {e.stderr.strip()})")
    mig = Migration(index, args.dry_run)
    for folder in args.folders:
        print(f"{folder}:")
        mig.folder(folder)
    for card in args.card:
        mig.rewrite_text(card)
    for what, n in sorted(mig.counts.items()):
        print(f"{what}: {n}")
    for line in mig.unmapped:
        print(f"not mapped (left in place): {line}")
    print(
        f"{'would map' if args.dry_run else 'mapped'} {len(mig.run_keys)} runs and {len(mig.study_keys)} studies; "
        f"{len(mig.unmapped)} records not mapped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
