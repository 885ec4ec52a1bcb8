"""The lmms-eval model class: a trained checkpoint, vLLM generation, the paper's reasoning prompt.

GPU extra only (`pip install 'modomodo[gpu]'`: lmms-eval needs torchvision, vLLM needs CUDA); import
this module only where those exist. The prompt and extraction logic lives in
`tasks.lmms.prompting`, which the CPU tests cover.

Use: `evaluate_out_of_domain(checkpoint, {"ChartQA": "chartqa", ...}, llm=engine)` -> {score name:
value}: ChartQA, InfoVQA and MMMU through lmms-eval's Python API (`simple_evaluate`) with an instance
of this model class; MathVista on its test-mini set with the same engine and the rule-based scorer
(no API key; see tasks/lmms/prompting.py). Pass the vLLM engine the in-domain evaluation already
built (`llm=`): one engine per process (a second one in the same process does not get the first
one's memory back). Local tasks (a folder per task: YAML + utils.py) are found through
`include_path=`, given to lmms-eval as a `TaskManager`.

Not from lmms-eval's command line: in lmms-eval 0.7.3 `register_model` alone does not make a model
name reachable there (`python -m lmms_eval --model modomodo_r1` fails with "Model 'modomodo_r1' not
found"), which is why the evaluation hands lmms-eval a model instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmms_eval.api.model import lmms  # (GPU extra)
from lmms_eval.api.registry import register_model

from tasks.lmms.prompting import (
    EXACT_MATCH_TASKS,
    LMMS_TASKS,
    MATHVISTA_HUB_ID,
    MATHVISTA_SPLIT,
    build_prompt,
    exact_match_from_samples,
    extract_final_answer,
    is_mathvista,
    mathvista_prompt,
    mathvista_score,
    scores_from_lmms_results,
)

MODEL_NAME = "modomodo_r1"


@register_model(MODEL_NAME)
class ReasoningVLM(lmms):
    """Greedy vLLM generation of `<think>…</think><answer>…</answer>`; lmms-eval gets the answer."""

    def __init__(
        self,
        pretrained: str,
        max_new_tokens: int = 1024,
        batch_size: int | str = 16,
        gpu_memory_utilization: float = 0.8,
        tensor_parallel_size: int = 1,
        trust_remote_code: bool = False,
        llm=None,
        **kwargs: Any,
    ):
        super().__init__()
        from vllm import LLM, SamplingParams

        self.pretrained = str(pretrained)
        # an engine built by the caller (the GPU evaluation's one engine), else this model's own
        self.llm = (
            llm
            if llm is not None
            else LLM(
                model=self.pretrained,
                gpu_memory_utilization=float(gpu_memory_utilization),
                tensor_parallel_size=int(tensor_parallel_size),
                trust_remote_code=bool(trust_remote_code),
                limit_mm_per_prompt={"image": 8},
            )
        )
        self.sampling = SamplingParams(temperature=0.0, max_tokens=int(max_new_tokens))
        self.batch_size_per_gpu = int(batch_size)

    def respond(self, prompts: list[str], images: list[list]) -> list[str]:
        """Raw completions for (prompt, images) pairs, in batches."""
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size_per_gpu):
            batch = []
            for text, visuals in zip(
                prompts[start : start + self.batch_size_per_gpu], images[start : start + self.batch_size_per_gpu]
            ):
                content = [{"type": "image_pil", "image_pil": im} for im in (visuals or [])]
                content.append({"type": "text", "text": text})
                batch.append([{"role": "user", "content": content}])
            out += [o.outputs[0].text for o in self.llm.chat(batch, self.sampling, use_tqdm=False)]
        return out

    def generate_until(self, requests) -> list[str]:
        prompts, images = [], []
        for req in requests:
            context, _gen_kwargs, doc_to_visual, doc_id, task, split = req.args
            prompts.append(build_prompt(context))
            images.append(doc_to_visual(self.task_dict[task][split][doc_id]))
        return [extract_final_answer(t) for t in self.respond(prompts, images)]

    def loglikelihood(self, requests):
        raise NotImplementedError("modomodo_r1 evaluates generative tasks only (ChartQA, InfoVQA, MMMU)")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("modomodo_r1 answers single-round questions only")


def evaluate_mathvista(model: ReasoningVLM, limit: int | None = None, cache_dir: str | None = None) -> float:
    """Rule-scored accuracy on MathVista test-mini."""
    import datasets

    docs = datasets.load_dataset(MATHVISTA_HUB_ID, split=MATHVISTA_SPLIT, cache_dir=cache_dir)
    if limit:
        docs = docs.select(range(min(int(limit), len(docs))))
    docs = list(docs)
    responses = model.respond([mathvista_prompt(d) for d in docs], [[d["decoded_image"].convert("RGB")] for d in docs])
    return mathvista_score(zip(docs, responses))


def evaluate_out_of_domain(
    checkpoint: str,
    tasks: Mapping[str, str] = LMMS_TASKS,
    limit: int | None = None,
    cache_dir: str | None = None,
    llm=None,
    include_path: str | None = None,
    raw_results: dict | None = None,
    **model_kwargs: Any,
) -> dict[str, float]:
    """Out-of-domain scores of a checkpoint: lmms-eval tasks, and MathVista by rules.

    `llm`: a vLLM engine to reuse (else one is built); `include_path`: a folder of local lmms-eval task
    folders; `raw_results`, when given, receives lmms-eval's `results` block."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    model = ReasoningVLM(checkpoint, llm=llm, **model_kwargs)
    through_lmms = {name: task for name, task in tasks.items() if not is_mathvista(task)}
    scores: dict[str, float] = {}
    if through_lmms:
        # the task manager is what finds local task folders; bootstrap_iters=0: no stderr resampling (unused)
        manager = TaskManager(include_path=include_path) if include_path else TaskManager()
        # log_samples: ChartQA and InfoVQA are scored by exact match from the samples, as the paper reports them
        out = simple_evaluate(
            model=model,
            tasks=list(through_lmms.values()),
            limit=limit or None,
            log_samples=True,
            task_manager=manager,
            bootstrap_iters=0,
        )
        if raw_results is not None:
            raw_results["results"] = out["results"]
        scores.update(scores_from_lmms_results(out["results"], through_lmms))
        for name, task in through_lmms.items():
            if task in EXACT_MATCH_TASKS:
                scores[name] = exact_match_from_samples(out.get("samples", {}).get(task, []))
    for name, task in tasks.items():
        if is_mathvista(task):
            scores[name] = evaluate_mathvista(model, limit, cache_dir)
    return scores
