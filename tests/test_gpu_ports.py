"""Free ports per job and a health check that accepts only the job's own vLLM server (harness/runners/gpu_ports.py)."""

import http.server
import json
import socket
import socketserver
import subprocess
import sys
import threading

import pytest

from harness.protocols.gpu import load_protocol
from harness.runners.gpu_plan import launch_plan
from harness.runners.gpu_ports import JobPorts, free_ports, wait_own_server


def _server(name: str):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # vLLM's server (what TRL 1.16's vllm-serve runs): /health, /v1/models
            if self.path == "/health":
                self.send_response(200)
                self.end_headers()
            elif self.path == "/v1/models":
                body = json.dumps({"object": "list", "data": [{"id": name, "object": "model"}]}).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *a):
            pass

    srv = socketserver.TCPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def alive():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    for p in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))  # free: binding succeeds


def test_health_check_accepts_its_own_server(tmp_path, alive):
    ports = JobPorts(0, 0, 0, "tok1")
    srv = _server(ports.served_model_name)
    try:
        wait_own_server(JobPorts(srv.server_address[1], 0, 0, "tok1"), alive, tmp_path / "log", timeout_s=5)
    finally:
        srv.shutdown()
        srv.server_close()


def test_health_check_refuses_another_jobs_server(tmp_path, alive):
    """The old check (GET /health == 200 on a fixed port) accepted any vLLM server there."""
    srv = _server("modomodo-someone-else")
    try:
        with pytest.raises(RuntimeError, match="another job holds the port"):
            wait_own_server(JobPorts(srv.server_address[1], 0, 0, "mine"), alive, tmp_path / "log", timeout_s=5)
    finally:
        srv.shutdown()
        srv.server_close()


def test_two_jobs_get_different_ports_and_the_plan_uses_them():
    p = load_protocol("paper-qwen2vl-2b")
    a, b = JobPorts.choose(p), JobPorts.choose(p)
    assert a.token != b.token
    plan = launch_plan(p, "/runs/x", a)
    server, train = plan[0].argv, plan[1].argv
    assert server[server.index("--port") + 1] == str(a.vllm)
    assert server[server.index("--served-model-name") + 1] == a.served_model_name
    assert train[train.index("--main_process_port") + 1] == str(a.accelerate)
    assert set(a.to_dict()) >= {"vllm", "nccl_group", "accelerate", "served_model_name"}


def test_server_mode_passes_vllm_max_model_len():
    import dataclasses

    p = load_protocol("paper-qwen2vl-2b")
    p = dataclasses.replace(p, generation=dataclasses.replace(p.generation, vllm_max_model_len=4096))
    argv = launch_plan(p, "/runs/x", JobPorts.choose(p))[0].argv
    assert argv[argv.index("--max_model_len") + 1] == "4096"


def _no_bf16(p):
    import dataclasses

    # bf16 needs a GPU to build TRL's config; 6 per device: TRL checks one process's batch against the group size
    return dataclasses.replace(p, training=dataclasses.replace(p.training, bf16=False, per_device_train_batch_size=6))


def test_grpo_config_takes_the_jobs_ports_and_names_importance_sampling(tmp_path):
    pytest.importorskip("trl")
    from harness.runners import gpu_config

    p = _no_bf16(load_protocol("paper-qwen2vl-2b"))  # bf16 needs a GPU to build TRL's config
    args = gpu_config.grpo_config(
        p,
        gpu_config.training_config(p, tuple(p.datasets.train)),
        0,
        str(tmp_path),
        ports={"vllm": 41001, "nccl_group": 41002},
    )
    assert (args.vllm_server_port, args.vllm_group_port) == (41001, 41002)
    assert args.vllm_importance_sampling_correction is True  # named in the protocol file
    off = _no_bf16(load_protocol("paper-qwen2vl-2b"))

    import dataclasses

    off = dataclasses.replace(
        off, generation=dataclasses.replace(off.generation, vllm_importance_sampling_correction=False)
    )
    assert (
        gpu_config.grpo_config(
            off, gpu_config.training_config(off, tuple(off.datasets.train)), 0, str(tmp_path)
        ).vllm_importance_sampling_correction
        is False
    )
