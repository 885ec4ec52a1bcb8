"""Publish a rendered site to the Hugging Face Hub, in one commit.

- `--repo-type space` (default): a static Space; the site at the repo root, plus a README.md whose
  front matter says `sdk: static`.
- `--repo-type dataset`: the site under `site/`, the raw results under `data/` (the Hub's dataset
  viewer shows them, as configs named in the README).

`plan()` builds everything (files, README, commit message) without network or token; `--dry-run`
prints it. `publish()` then: token (HF_TOKEN or the usual `hf auth login`), create the repo if it is
missing, one `create_commit` holding every file (and deleting pages of an older render that are no
longer in the site). The Hub applies a commit atomically; if this call created the repo and the
commit fails, the repo is deleted again, so nothing partial is left behind. The token is never
printed: every message is scrubbed of it before it leaves this module.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.site import MANIFEST

REPO_TYPES = ("space", "dataset")
# Folders of the site that a new render fully replaces (stale files there are deleted on publish).
MANAGED = ("assets/", "plots/", "data/", "suites/", "strategies/")


class PublishError(Exception):
    """A clear, token-free reason why nothing was published."""


@dataclass
class Plan:
    repo_id: str
    repo_type: str
    files: list[tuple[str, Path | bytes]]  # (path in repo, local file or content), sorted by path
    commit_message: str
    commit_description: str
    managed_prefixes: tuple[str, ...]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def paths(self) -> list[str]:
        return [p for p, _ in self.files]

    def size(self, item: Path | bytes) -> int:
        return len(item) if isinstance(item, bytes) else item.stat().st_size

    def operations(self, existing: list[str] = ()) -> list:
        """The commit's operations: add every file; delete managed files the new site no longer has."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        ops: list = [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=item if isinstance(item, bytes) else str(item))
            for p, item in self.files
        ]
        keep = set(self.paths)
        for p in sorted(existing):
            if p not in keep and p.startswith(self.managed_prefixes):
                ops.append(CommitOperationDelete(path_in_repo=p))
        return ops

    def describe(self) -> str:
        lines = [
            f"would commit to {self.repo_type} {self.repo_id!r}: {self.commit_message!r}",
            f"{len(self.files)} files, {sum(self.size(i) for _, i in self.files) / 1024:.1f} KiB:",
        ]
        lines += [f"  {p}  ({self.size(i)} bytes)" for p, i in self.files]
        lines.append(
            "files of an older render under "
            + ", ".join(self.managed_prefixes)
            + " that this site lacks would be deleted in the same commit"
        )
        return "\n".join(lines)


def _validate_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id.count("/") != 1:
        raise PublishError(f"--repo-id must be ORG/NAME (or USER/NAME), got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PublishError(f"--repo-id {repo_id!r} is not a valid Hub repo id: {e}") from None


def _front_matter(meta: dict[str, Any]) -> str:
    import yaml

    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _readme(repo_type: str, manifest: dict[str, Any], repo_id: str) -> bytes:
    suites = ", ".join(f"{n} (`{p}`)" for n, p in manifest.get("suites", {}).items())
    body = (
        f"# modomodo leaderboard\n\nData-mixture strategies for multimodal RLVR, benchmarked with modomodo "
        f"{manifest.get('modomodo_version', '')}.\n\n- Suites (protocol hashes): {suites}\n"
        f"- Strategies: {len(manifest.get('strategies', []))}\n"
        f"- Results from git {', '.join(manifest.get('git_shas', []))}, run {', '.join(manifest.get('run_dates', []))}\n"
    )
    if repo_type == "space":
        meta = {
            "title": "modomodo leaderboard",
            "emoji": "📊",
            "colorFrom": "blue",
            "colorTo": "gray",
            "sdk": "static",
            "app_file": "index.html",
            "pinned": False,
            "license": "apache-2.0",
        }
        return (_front_matter(meta) + body).encode()
    files = set(manifest.get("files", {}))  # the big tables are gzip-compressed CSV (datasets reads .csv.gz)
    configs = [
        {
            "config_name": name,
            "data_files": f"data/{name}.csv.gz" if f"data/{name}.csv.gz" in files else f"data/{name}.csv",
        }
        for name in ("summary", "leaderboard", "trajectories", "overall_rank", "rank_correlation")
    ]
    meta = {
        "license": "apache-2.0",
        "pretty_name": "modomodo leaderboard results",
        "configs": configs,
        "tags": ["leaderboard", "data-mixture", "rlvr"],
    }
    body += "\nThe browsable site is under `site/` (open `site/index.html`); the raw results are under `data/`.\n"
    return (_front_matter(meta) + body).encode()


def plan(site: str | Path, repo_id: str, repo_type: str = "space") -> Plan:
    """Everything the commit will hold, from a rendered site. No network, no token."""
    site = Path(site)
    if repo_type not in REPO_TYPES:
        raise PublishError(f"--repo-type must be one of {', '.join(REPO_TYPES)}, got {repo_type!r}")
    _validate_repo_id(repo_id)
    manifest_path = site / MANIFEST
    if not (site / "index.html").is_file() or not manifest_path.is_file():
        raise PublishError(
            f"{str(site)!r} is not a rendered leaderboard site (no index.html or {MANIFEST}); "
            f"make one with `modomodo leaderboard render --results DIR --out {site}`"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as e:
        raise PublishError(f"{manifest_path}: invalid JSON ({e}); render the site again") from None
    local = sorted(
        str(p.relative_to(site)).replace(os.sep, "/")
        for p in site.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    prefix = "" if repo_type == "space" else "site/"
    files: list[tuple[str, Path | bytes]] = [(prefix + p, site / p) for p in local if p != "README.md"]
    managed = MANAGED if repo_type == "space" else ("site/", "data/")
    if repo_type == "dataset":
        files += [(f"data/{p.name}", p) for p in sorted((site / "data").glob("*")) if p.is_file()]
    files.append(("README.md", _readme(repo_type, manifest, repo_id)))
    files.sort(key=lambda f: f[0])
    version = manifest.get("modomodo_version", "unknown")
    shas = ", ".join(s[:12] for s in manifest.get("git_shas", [])) or "unknown"
    message = f"modomodo leaderboard v{version} (results git {shas})"
    description = (
        f"{len(manifest.get('suites', {}))} suites, {len(manifest.get('strategies', []))} strategies; "
        f"runs of {', '.join(manifest.get('run_dates', []))}"
    )
    return Plan(repo_id, repo_type, files, message, description, managed, manifest)


# -- the Hub call ------------------------------------------------------------------------------------
def get_token() -> str | None:
    token = os.environ.get("HF_TOKEN") or None
    if token:
        return token
    try:
        from huggingface_hub import get_token as hub_token

        return hub_token()
    except Exception:  # noqa: BLE001 - no token is the answer, not a crash
        return None


def scrub(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    return text


def _explain(e: BaseException, token: str | None, endpoint: str) -> str:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(e, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set: the Hub cannot be reached in offline mode; unset it to publish"
    if isinstance(e, HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            return (
                f"the Hub refused the token (HTTP {status}): it is invalid or lacks write access to this repo; "
                f"check `hf auth whoami` or HF_TOKEN"
            )
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"the Hub answered HTTP {status}: {first}"
    name = type(e).__name__
    if (
        isinstance(e, (OSError, ConnectionError, TimeoutError))
        or "Connect" in name
        or "Timeout" in name
        or "Network" in name
    ):
        return f"cannot reach the Hugging Face Hub at {endpoint} ({name}); check the network or HF_ENDPOINT"
    return f"publishing failed: {name}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


def publish(p: Plan, api=None, token: str | None = None) -> str:
    """Create the repo if needed and make the one commit; returns the commit URL."""
    from huggingface_hub import constants

    token = token or get_token()
    if not token:
        raise PublishError(
            "no Hugging Face token: log in with `hf auth login` or set HF_TOKEN "
            "(a token with write access); nothing was uploaded"
        )
    endpoint = constants.ENDPOINT
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    created = False
    try:
        try:
            existed = bool(api.repo_exists(p.repo_id, repo_type=p.repo_type))
        except Exception as e:  # noqa: BLE001 - reported below, scrubbed
            raise _Wrapped(e) from None
        try:
            if not existed:
                api.create_repo(
                    p.repo_id,
                    repo_type=p.repo_type,
                    exist_ok=True,
                    **({"space_sdk": "static"} if p.repo_type == "space" else {}),
                )
                created = True
            existing = [] if created else list(api.list_repo_files(p.repo_id, repo_type=p.repo_type))
            info = api.create_commit(
                p.repo_id,
                p.operations(existing),
                commit_message=p.commit_message,
                commit_description=p.commit_description,
                repo_type=p.repo_type,
            )
        except Exception as e:  # noqa: BLE001
            if created:
                try:
                    api.delete_repo(p.repo_id, repo_type=p.repo_type, missing_ok=True)
                except Exception:  # noqa: BLE001 - best effort; the message below says what happened
                    pass
            raise _Wrapped(e) from None
    except _Wrapped as w:
        raise PublishError(scrub(_explain(w.error, token, endpoint) + "; nothing was published", token)) from None
    return scrub(str(getattr(info, "commit_url", "") or f"{endpoint}/{p.repo_id}"), token)


class _Wrapped(Exception):
    def __init__(self, error: BaseException):
        super().__init__()
        self.error = error
