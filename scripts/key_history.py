"""The git history of the old fingerprints, for scripts/migrate_keys.py (its docstring says how it is used):
the rules before issue 30, and an index of old -> new protocol hashes and strategy fingerprints."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from harness.fingerprint import SourceTree, card_identity, source_fingerprint
from harness.runners.gpu_identity import GPU_MARK
from harness.spec import canonical_json


# -- the rules before issue 30 (harness/bench.py and harness/suites/loading.py at 413353d) -------------
def legacy_protocol_hash(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for b in blobs:
        h.update(hashlib.sha256(b).digest())
    return h.hexdigest()[:16]


def legacy_files_hash(blobs) -> str:
    h = hashlib.sha256()
    for b in blobs:
        h.update(b)
    return h.hexdigest()[:16]


def legacy_study_key(suite_id, protocol, track, runner, strategy, code, budget, seed) -> str:
    ident = [suite_id, protocol, track, runner, strategy, code, budget, seed]
    return hashlib.sha256(canonical_json(ident).encode()).hexdigest()


# -- the git history --------------------------------------------------------------------------------
class Git:
    def __init__(self, repo: Path):
        self.repo = repo
        self.cat = subprocess.Popen(
            ["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.blobs: dict[str, bytes] = {}

    def out(self, *args) -> str:
        return subprocess.run(["git", "-C", str(self.repo), *args], check=True, capture_output=True, text=True).stdout

    def commits(self, *paths: str, since: str | None = None) -> list[str]:
        """The commits of HEAD's history that changed `paths`, newest first (every state of those files);
        `since`: only from that commit on (it included)."""
        if since is None:
            return self.out("rev-list", "HEAD", "--", *paths).split()
        first = self.out("rev-parse", "--verify", f"{since}^{{commit}}").strip()
        base = self.out("rev-list", "--max-parents=0", first).split()
        exclude = [f"^{first}^"] if first not in base else []
        return self.out("rev-list", "HEAD", *exclude, "--", *paths).split() + [first]

    def tree(self, commit: str, *paths: str) -> dict[str, str]:
        """path -> blob sha of the files under `paths` at `commit`."""
        out = {}
        for line in self.out("ls-tree", "-r", commit, "--", *paths).splitlines():
            meta, path = line.split("\t", 1)
            if meta.split()[1] == "blob":
                out[path] = meta.split()[2]
        return out

    def blob(self, sha: str) -> bytes:
        if sha not in self.blobs:
            self.cat.stdin.write(sha.encode() + b"\n")
            self.cat.stdin.flush()
            size = int(self.cat.stdout.readline().split()[2])
            data = self.cat.stdout.read(size)
            self.cat.stdout.read(1)
            self.blobs[sha] = data
        return self.blobs[sha]


_PRINTS: dict[bytes, str] = {}


class CachedTree(SourceTree):
    """A SourceTree whose per-file fingerprints are shared across commits (keyed by the file's bytes)."""

    def module_fingerprint(self, module: str) -> str:
        data = self._read(self.file_of(module))
        if data not in _PRINTS:
            _PRINTS[data] = source_fingerprint(data)
        return _PRINTS[data]


def _card_pair(card_bytes: bytes, files: dict[str, bytes | None], folder: str) -> tuple[str, str, dict] | None:
    """(old protocol hash, new protocol hash, card) of one card version, or None if it does not parse."""
    try:
        card = yaml.safe_load(card_bytes) or {}
    except yaml.YAMLError:
        return None
    if not isinstance(card, dict):
        return None
    if card.get("kind", "replay") == "replay":
        runs = files.get(f"{folder}/{card.get('runs', 'runs.csv')}")
        if runs is None:
            return None
        return legacy_protocol_hash(card_bytes, runs), card_identity(card, runs), card
    return legacy_protocol_hash(card_bytes), card_identity(card), card


class Index:
    """old -> new for protocol hashes and strategy fingerprints, from HEAD's history and the working tree."""

    def __init__(
        self,
        repo: Path,
        strategies: dict[str, str],
        verbose: bool = True,
        since: str | None = None,
        vouch: str | None = None,
    ):
        self.protocol: dict[str, str] = {}  # old card hash -> new
        self.new_protocols: set[str] = set()
        self.suite_of: dict[str, tuple[str, str]] = {}  # old or new card hash -> (name, version)
        # (rule, strategy name, old fingerprint) -> [new fingerprints, newest commit first]
        self.code: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self.current_old: dict[tuple[str, str], str] = {}  # (rule, name) -> today's old-rule fingerprint
        self.current_new: dict[str, str] = {}  # name -> today's new fingerprint
        self.new_codes: dict[str, set[str]] = defaultdict(set)
        self.vouched: dict[str, str] = {}  # name -> its new fingerprint at the --vouch commit (served as today's)
        self.old_codes: dict[tuple[str, str], set[str]] = defaultdict(set)
        git = Git(repo)
        commits = git.commits(
            "baselines/*/card.yaml", "baselines/*/*.csv", "strategies", "harness", "tasks", since=since
        )
        cards_done: dict[tuple, tuple | None] = {}  # (card blob, table blob) -> _card_pair, across commits
        # the working tree first (what runs today), then HEAD's history, newest first
        states = [None] + commits
        for n, commit in enumerate(states):
            if commit is None:
                files = {
                    str(p.relative_to(repo)): p.read_bytes()
                    for p in list(repo.glob("baselines/*/*")) + list(repo.glob("strategies/*.py"))
                    if p.is_file()
                }
                tree = CachedTree(lambda rel: (repo / rel).read_bytes() if (repo / rel).is_file() else None)
            else:
                blobs = git.tree(commit, "baselines", "strategies", "harness", "tasks")
                files = _LazyFiles(blobs, git)
                tree = CachedTree(lambda rel, blobs=blobs: git.blob(blobs[rel]) if rel in blobs else None)
            for card_path in sorted(k for k in files if re.fullmatch(r"baselines/[^/]+/card\.yaml", k)):
                folder = card_path.rsplit("/", 1)[0]
                ident = None
                if isinstance(files, _LazyFiles):  # the table is the default runs.csv or a name in the card
                    ident = (
                        files.blob_id(card_path),
                        tuple(
                            sorted(
                                (k, files.blob_id(k))
                                for k in files
                                if k.startswith(folder + "/") and k.endswith(".csv")
                            )
                        ),
                    )
                    if ident in cards_done:
                        continue
                pair = _card_pair(files[card_path], files, folder)
                if ident is not None:
                    cards_done[ident] = pair
                if pair is None:
                    continue
                old, new, card = pair
                self.protocol.setdefault(old, new)
                self.new_protocols.add(new)
                for h in (old, new):
                    self.suite_of.setdefault(h, (str(card.get("name", "")), str(card.get("version", ""))))
            strategy_files = sorted(k for k in files if re.fullmatch(r"strategies/[^/]+\.py", k))
            if not strategy_files:
                continue
            offline_old = legacy_files_hash(files[f] for f in strategy_files)
            for name, module in strategies.items():
                rel = module.replace(".", "/") + ".py"
                if rel not in files:
                    continue
                try:
                    new = tree.fingerprint(module)
                except (SyntaxError, ValueError):
                    continue
                rules = [("offline", offline_old)]
                if "strategies/online.py" in files and "strategies/base.py" in files:
                    rules.append(
                        (
                            "online",
                            legacy_files_hash([files[rel], files["strategies/online.py"], files["strategies/base.py"]]),
                        )
                    )
                for rule, old in rules:
                    if commit is None:
                        self.current_old[(rule, name)] = old
                        self.current_new[name] = new
                    if new not in self.code[(rule, name, old)]:
                        self.code[(rule, name, old)].append(new)
                    self.old_codes[(rule, name)].add(old)
                self.new_codes[name].add(new)
            if verbose and n % 50 == 0:
                print(f"  history: {n}/{len(states)} states read", file=sys.stderr, flush=True)

        if vouch:
            blobs = git.tree(
                git.out("rev-parse", "--verify", f"{vouch}^{{commit}}").strip(), "strategies", "harness", "tasks"
            )
            tree = CachedTree(lambda rel: git.blob(blobs[rel]) if rel in blobs else None)
            for name, module in strategies.items():
                if tree.file_of(module) is not None:
                    self.vouched[name] = tree.fingerprint(module)
                    self.new_codes[name].add(self.vouched[name])

    def new_code(self, rule: str, name: str, old: str) -> str | None:
        cands = self.code.get((rule, name, old))
        if not cands:
            return None
        if self.current_old.get((rule, name)) == old or self.vouched.get(name) in cands:
            return self.current_new[name]  # served today under the old rule (or vouched for): served today
        return cands[0]  # the newest commit's

    def today(self, name: str, new: str) -> str:
        """A new-rule fingerprint, or today's where the operator vouched (--vouch) for that one."""
        return self.current_new[name] if new and self.vouched.get(name) == new else new

    def new_protocol(self, protocol: str) -> str | None:
        card, sep, rest = protocol.partition(GPU_MARK)
        new = self.protocol.get(card)
        return None if new is None else new + sep + rest

    def is_new_protocol(self, protocol: str) -> bool:
        return protocol.partition(GPU_MARK)[0] in self.new_protocols


class _LazyFiles(dict):
    """path -> bytes of one commit's files, read from git when first asked."""

    def __init__(self, blobs: dict[str, str], git: Git):
        super().__init__({p: None for p in blobs})
        self._blobs, self._git = blobs, git

    def __getitem__(self, path):
        return self._git.blob(self._blobs[path])

    def get(self, path, default=None):
        return self[path] if path in self._blobs else default

    def blob_id(self, path):
        return self._blobs[path]
