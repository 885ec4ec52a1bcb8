"""The GPU check (issue 25, item 7): run by scripts/device_check.sh; writes one JSON of figures.

(a) tiny pilot: the paper-protocol-tiny pilot through the GPU runner's own commands (`prepare`, then
    `accelerate launch ... -m harness.runners.gpu_job train`) on this device, without vLLM (rollouts by
    transformers' generate). The `evaluate` command needs vLLM and lmms-eval and is not run.
    Needs TRL (and datasets) importable: carry them as wheels (scripts/device_check.sh).
(b) GRPO steps on a Qwen2-VL-2B-shaped model built from its config with random weights (no download;
    harness/protocols/memory_plan.py KNOWN_CONFIGS): per step, generation of the paper's completions (per training
    GPU of the paper: 4 completions of 1024 tokens after a 768-token text prompt) and one GRPO update
    (TRL's `grpo` loss, one iteration: policy-gradient term and beta-weighted k3 KL to a bf16 reference),
    with the protocol's precision (fp32 master weights + bf16 autocast) and, for comparison, parameters
    stored in bf16; reports seconds per step (generation, update), peak memory, and the fraction of the
    language model's trainable parameters that changed at each step. Plain torch + transformers, so it
    runs where TRL is absent. Vision inputs are left out (the tower is frozen in the protocol).
On CPU (`--toy`) both parts run at toy size, to test the script.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _device(arg: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if arg == "auto" else arg


# -- (a) ---------------------------------------------------------------------------------------------
def tiny_pilot(out_dir: Path, device: str) -> dict:
    """prepare + train of paper-protocol-tiny through the GPU runner's launch plan, vLLM off."""
    import yaml

    from harness import suites
    from harness.protocols.gpu import load_protocol, registered
    from harness.runners.gpu import GpuRunner
    from harness.runners.gpu_plan import execute, launch_plan
    from harness.runners.gpu_identity import bind_protocol
    from harness.runners.gpu_ports import JobPorts
    from harness.spec import RunSpec

    data = yaml.safe_load(registered()["paper-protocol-tiny"].read_text())
    data["generation"].update(use_vllm=False, vllm_mode="colocate", vllm_gpus=0)
    data["generation"].pop("vllm_cpu_kvcache_gb", None)
    if device == "cuda":
        data["device"] = "cuda"
        data["slurm"]["gpus_per_node"] = 1
        data["training"]["bf16"] = True
    proto_file = out_dir / "paper-protocol-tiny-novllm.yaml"
    proto_file.write_text(yaml.safe_dump(data, sort_keys=False))
    protocol = load_protocol(proto_file)
    suite = bind_protocol(suites.load("paper-protocol-tiny"), "gpu", proto_file)
    runner = GpuRunner(suite)
    spec = RunSpec(suite.id, suite.protocol, suite.space.parse("COCO=0.2,LISA=0.2,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2"), 0)
    run_dir = out_dir / "tiny-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = JobPorts.choose(protocol)
    (run_dir / "run.json").write_text(json.dumps(dict(runner.run_record(spec), ports=ports.to_dict()), indent=1))
    plan = [c for c in launch_plan(protocol, run_dir, ports) if c.name != "evaluate"]
    t0 = time.time()
    phases = execute(plan, run_dir, protocol, ports)
    info = json.loads((run_dir / "train_info.json").read_text())
    return {
        "commands": [c.shell() for c in plan],
        "phase_seconds": {k: round(v, 2) for k, v in phases.items()},
        "wall_s": round(time.time() - t0, 2),
        "run_key": spec.key,
        "train_info": {
            k: info.get(k)
            for k in (
                "steps",
                "s_per_step",
                "rewards",
                "policy_dtype",
                "master_weights",
                "t_train_steps",
                "attn_implementation",
            )
        },
        "not_run": "evaluate (needs vLLM and lmms-eval)",
    }


# -- (b) ---------------------------------------------------------------------------------------------
def _shaped_model(device: str, toy: bool):
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from harness.protocols.memory_plan import KNOWN_CONFIGS

    cfg = dict(KNOWN_CONFIGS["Qwen/Qwen2-VL-2B-Instruct"])
    if toy:
        cfg = dict(
            cfg,
            text_config=dict(
                cfg["text_config"],
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                vocab_size=512,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            ),
            vision_config=dict(cfg["vision_config"], embed_dim=32, depth=1, num_heads=2, hidden_size=64),
        )
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    return model, config


def grpo_steps(device: str, toy: bool, master_weights: str, steps: int) -> dict:
    """GRPO steps with the given precision (see the module docstring); figures per step."""
    import torch

    torch.manual_seed(0)
    policy, config = _shaped_model(device, toy)
    text = config.get_text_config()
    vocab = text.vocab_size
    if master_weights == "model":
        policy = policy.to(torch.bfloat16)
    for p in policy.model.visual.parameters():  # frozen, as the protocol freezes the vision tower
        p.requires_grad_(False)
    ref, _ = _shaped_model(device, toy)
    ref.load_state_dict(policy.state_dict())
    ref = ref.to(torch.bfloat16).eval().requires_grad_(False)  # training.reference_dtype: bfloat16
    policy.gradient_checkpointing_enable()
    policy.config.use_cache = False
    trainable = [(n, p) for n, p in policy.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([p for _, p in trainable], lr=1e-6, weight_decay=0.0)
    groups, gens = (1, 4) if not toy else (1, 4)  # the paper per training GPU: 12 completions / 3 GPUs = 4
    prompt_len, completion_len = (768, 1024) if not toy else (24, 16)
    beta = 0.04
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16)
    per_step = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(steps):
        prompt = torch.randint(0, vocab, (groups, prompt_len), device=device).repeat_interleave(gens, 0)
        t0 = time.perf_counter()
        policy.eval()
        policy.config.use_cache = True
        with torch.no_grad(), autocast:
            seqs = policy.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                do_sample=True,
                max_new_tokens=completion_len,
                min_new_tokens=completion_len,
                temperature=1.0,
                top_k=0,
                pad_token_id=0,
            )
        policy.config.use_cache = False
        if device == "cuda":
            torch.cuda.synchronize()
        t_gen = time.perf_counter() - t0
        completion = seqs[:, prompt_len:]
        rewards = torch.rand(completion.shape[0], device=device) * 3  # 2 x accuracy + format, random here
        adv = (rewards.view(groups, gens) - rewards.view(groups, gens).mean(1, keepdim=True)) / (
            rewards.view(groups, gens).std(1, keepdim=True) + 1e-4
        )
        adv = adv.view(-1, 1)
        before = [p.detach().float().clone() for _, p in trainable]
        t1 = time.perf_counter()
        policy.train()
        with torch.no_grad(), autocast:
            ref_logits = ref(input_ids=seqs).logits[:, prompt_len - 1 : -1].float()
            ref_logp = torch.gather(ref_logits.log_softmax(-1), 2, completion.unsqueeze(-1)).squeeze(-1)
            del ref_logits
        with autocast:
            logits = policy(input_ids=seqs).logits[:, prompt_len - 1 : -1].float()
        logp = torch.gather(logits.log_softmax(-1), 2, completion.unsqueeze(-1)).squeeze(-1)
        del logits
        kl = torch.exp(ref_logp - logp) - (ref_logp - logp) - 1
        loss = (-(torch.exp(logp - logp.detach()) * adv) + beta * kl).mean(1).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        t_update = time.perf_counter() - t1
        moved = total = 0
        for (_, p), b in zip(trainable, before):
            moved += int((p.detach().float() != b).sum())
            total += b.numel()
        del before
        per_step.append(
            {
                "step": step + 1,
                "s_generate": round(t_gen, 3),
                "s_update": round(t_update, 3),
                "fraction_params_changed": moved / total,
                "loss": float(loss),
            }
        )
    out = {
        "master_weights": master_weights,
        "param_dtype": str(trainable[0][1].dtype),
        "params": sum(p.numel() for p in policy.parameters()),
        "trainable": sum(p.numel() for _, p in trainable),
        "completions_per_step": groups * gens,
        "prompt_tokens": prompt_len,
        "completion_tokens": completion_len,
        "lr": 1e-6,
        "per_step": per_step,
        "s_per_step": round(sum(s["s_generate"] + s["s_update"] for s in per_step) / len(per_step), 3),
    }
    if device == "cuda":
        out["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    del policy, ref, opt
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON file of the figures")
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--toy", action="store_true", help="toy sizes (the CPU test of this script)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: a,b")
    args = ap.parse_args(argv)
    import torch

    device = _device(args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "toy": args.toy,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for pkg in ("transformers", "accelerate", "trl", "datasets", "vllm"):
        try:
            from importlib.metadata import version

            report[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - not installed
            report[pkg] = None

    def part(name, fn):
        t0 = time.time()
        try:
            report[name] = fn()
        except Exception as e:  # noqa: BLE001 - one part failing must not lose the others' figures
            report[name] = {"error": f"{type(e).__name__}: {e}"[:2000], "traceback": traceback.format_exc()[-3000:]}
        report[name + "_wall_s"] = round(time.time() - t0, 2)
        out.write_text(json.dumps(report, indent=1))

    skip = set(filter(None, args.skip.split(",")))
    if "b" not in skip:
        part("b_grpo_fp32_masters", lambda: grpo_steps(device, args.toy, "fp32", args.steps))
        part("b_grpo_bf16_params", lambda: grpo_steps(device, args.toy, "model", max(2, args.steps - 1)))
    if "a" not in skip:
        if report["trl"] is None:
            report["a_tiny_pilot"] = {"error": "TRL is not importable: carry its wheels (scripts/device_check.sh)"}
        else:
            part("a_tiny_pilot", lambda: tiny_pilot(out.parent, device))
    from harness.protocols.memory_plan import plan
    from harness.protocols.gpu import load_protocol

    report["memory_plan_paper_protocol"] = plan(load_protocol("paper-qwen2vl-2b")).to_dict()
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if not isinstance(v, dict)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
