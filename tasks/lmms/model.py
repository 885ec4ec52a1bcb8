"""The lmms-eval model class: a trained checkpoint, vLLM generation, the paper's reasoning prompt.

GPU extra only (`pip install 'modomodo[gpu]'`: lmms-eval needs torchvision, vLLM needs CUDA); import
this module only where those exist. The prompt and extraction logic lives in
`tasks.lmms.prompting`, which the CPU tests cover.

Use: `evaluate_out_of_domain(checkpoint, {"ChartQA": "chartqa", ...})` -> {score name: value},
or from the command line `python -m lmms_eval --model modomodo_r1 --model_args pretrained=CKPT`
after importing this module (it registers the name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmms_eval.api.model import lmms  # noqa: E402  (GPU extra)
from lmms_eval.api.registry import register_model

from tasks.lmms.prompting import LMMS_TASKS, build_prompt, extract_final_answer, mathvista_score, \
    scores_from_lmms_results

MODEL_NAME = "modomodo_r1"


@register_model(MODEL_NAME)
class ReasoningVLM(lmms):
    """Greedy vLLM generation; answers are the content of `<answer>` tags. MathVista items and raw
    responses are kept (`mathvista_samples`) so the rule-based scorer can score them."""

    def __init__(self, pretrained: str, max_new_tokens: int = 1024, batch_size: int | str = 16,
                 gpu_memory_utilization: float = 0.8, tensor_parallel_size: int = 1, trust_remote_code: bool = False,
                 **kwargs: Any):
        super().__init__()
        from vllm import LLM, SamplingParams

        self.llm = LLM(model=str(pretrained), gpu_memory_utilization=float(gpu_memory_utilization),
                       tensor_parallel_size=int(tensor_parallel_size), trust_remote_code=bool(trust_remote_code),
                       limit_mm_per_prompt={"image": 8})
        self.sampling = SamplingParams(temperature=0.0, max_tokens=int(max_new_tokens))
        self.batch_size_per_gpu = int(batch_size)
        self.mathvista_samples: list[tuple[dict, str]] = []

    def _messages(self, context: str, visuals) -> list[dict]:
        content = [{"type": "image_pil", "image_pil": im} for im in (visuals or [])]
        content.append({"type": "text", "text": build_prompt(context)})
        return [{"role": "user", "content": content}]

    def generate_until(self, requests) -> list[str]:
        answers: list[str] = []
        for start in range(0, len(requests), self.batch_size_per_gpu):
            chunk = requests[start:start + self.batch_size_per_gpu]
            batch, docs = [], []
            for req in chunk:
                context, _gen_kwargs, doc_to_visual, doc_id, task, split = req.args
                doc = self.task_dict[task][split][doc_id]
                batch.append(self._messages(context, doc_to_visual(doc)))
                docs.append((task, doc))
            outputs = self.llm.chat(batch, self.sampling, use_tqdm=False)
            for (task, doc), out in zip(docs, outputs):
                text = out.outputs[0].text
                if task.startswith("mathvista"):
                    self.mathvista_samples.append((dict(doc), text))
                answers.append(extract_final_answer(text))
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError("modomodo_r1 evaluates generative tasks only (ChartQA, InfoVQA, MathVista, MMMU)")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("modomodo_r1 answers single-round questions only")


def evaluate_out_of_domain(checkpoint: str, tasks: Mapping[str, str] = LMMS_TASKS, limit: int | None = None,
                           **model_kwargs: Any) -> dict[str, float]:
    """Out-of-domain scores of a checkpoint, MathVista scored by rules (no API key)."""
    from lmms_eval.evaluator import simple_evaluate

    model = ReasoningVLM(checkpoint, **model_kwargs)
    out = simple_evaluate(model=model, tasks=list(tasks.values()), limit=limit or None, log_samples=False)
    mathvista = [name for name, task in tasks.items() if task.startswith("mathvista")]
    scores = scores_from_lmms_results(out["results"], tasks, skip=mathvista)
    for name in mathvista:
        scores[name] = mathvista_score(model.mathvista_samples)
    return scores
