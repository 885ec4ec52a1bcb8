"""The network ports of one pilot-run job, chosen when it starts, and the check that the vLLM server
that answers is this job's own.

Fixed ports (vLLM 8000, TRL's NCCL weight-sync group 51216, accelerate's rendezvous 29500) collide
when two jobs share a node, and a health check on a fixed port can accept another job's server
(the trainer would then push its weights into that job's engine). Each job therefore takes free
ports from the OS (bind to port 0), records them in the run record and the result's provenance, and
names its vLLM server with a per-job token (`--served-model-name modomodo-<token>`, forwarded by
`trl vllm-serve` to `vllm serve`); the health check accepts a server only when its `/v1/models` lists
that name. TRL's client reads the served name from `/v1/models`, so generation is unaffected.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

HEALTH_PATH = "/health"  # TRL 1.16's `trl vllm-serve` runs vLLM's server: GET /health, GET /v1/models


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports that the OS reports free now (each bound to port 0 at the same time, then released)."""
    with ExitStack() as stack:
        socks = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]


@dataclass(frozen=True)
class JobPorts:
    vllm: int | str
    nccl_group: int | str
    accelerate: int | str
    token: str

    @property
    def served_model_name(self) -> str:
        return f"modomodo-{self.token}"

    @classmethod
    def choose(cls, protocol) -> JobPorts:
        """Free ports for a job (a protocol's fixed vllm_server_port, when it sets one, is kept)."""
        vllm, group, acc = free_ports(3)
        return cls(protocol.generation.vllm_server_port or vllm, group, acc, secrets.token_hex(6))

    @classmethod
    def placeholder(cls, protocol) -> JobPorts:
        """What a dry run shows: the ports are chosen when the job starts."""
        return cls(protocol.generation.vllm_server_port or "<free port>", "<free port>", "<free port>", "<job token>")

    def to_dict(self) -> dict:
        return asdict(self) | {"served_model_name": self.served_model_name}

    @classmethod
    def from_dict(cls, d: dict) -> JobPorts:
        return cls(d["vllm"], d["nccl_group"], d["accelerate"], d["token"])


def _get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        if r.status != 200:
            return None
        body = r.read()
    return json.loads(body) if body else {}


def served_names(port: int, host: str = "127.0.0.1") -> list[str] | None:
    """The model names the vLLM server on `port` serves (None: nothing healthy answers there)."""
    try:
        _get_json(f"http://{host}:{port}{HEALTH_PATH}")
        models = _get_json(f"http://{host}:{port}/v1/models")
    except (OSError, ValueError):
        return None
    try:
        return [str(m["id"]) for m in models["data"]]
    except (TypeError, KeyError):
        return []


def wait_own_server(
    ports: JobPorts, proc: subprocess.Popen, log: Path, timeout_s: float = 1200.0, poll_s: float = 1.0
) -> None:
    """Wait until the server on `ports.vllm` is healthy AND serves this job's name; a server there that
    serves another name is another job's (an error naming both, since this job's server cannot bind)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vLLM server exited with status {proc.returncode}; see {log}")
        names = served_names(int(ports.vllm))
        if names is not None:
            if ports.served_model_name in names:
                return
            if names:
                raise RuntimeError(
                    f"the vLLM server on port {ports.vllm} serves {names}, not this job's "
                    f"{ports.served_model_name!r}: another job holds the port; see {log}"
                )
        time.sleep(poll_s)
    raise TimeoutError(f"vLLM server not healthy after {timeout_s:.0f} s; see {log}")
