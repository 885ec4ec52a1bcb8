"""The protocol configuration: one dataclass for every knob of a train-and-evaluate run.

The CPU runner uses the `tiny` presets; the GPU runner (issue 6) builds the same dataclass with a
bigger configuration (`model="Qwen/Qwen2-VL-2B-Instruct"`, `use_vllm=True`, the paper's datasets as
`train_domains`/`ood_sets` served by its loaders). Every field has help text
(`ProtocolConfig.help()`), and a suite card may override any field under `protocol_config:`. The field
machinery (help, strict coercion of a card's values, fingerprint, describe) is the one the GPU protocol
files use too: harness/protocols/fields.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.protocols.fields import ProtocolError, build, describe, fingerprint, result_fields, setting


@dataclass(frozen=True)
class BaseModelConfig:
    """A tiny Qwen2-VL and its supervised warm-up (built once, cached by content hash)."""

    name: str = setting(
        "tiny-h64", "Label of this base model (shown in results; not part of the cache key).", label=True
    )
    hidden: int = setting(64, "Hidden size of the language model (and of the vision merger output).")
    layers: int = setting(2, "Decoder layers of the language model.")
    heads: int = setting(4, "Attention heads (head_dim = hidden / heads; mrope sections derive from it).")
    vision_depth: int = setting(2, "Vision transformer blocks.")
    vocab_size: int = setting(512, "Byte-level BPE vocabulary size of the locally trained tokenizer.")
    init: str = setting(
        "fan_in",
        "Weight init: 'fan_in' (std 1/sqrt(fan_in) for Linear/Conv; makes the model use the "
        "image, see shared/notes/mixture-signal.md) or 'default' (std 0.02).",
    )
    warmup_steps: int = setting(
        150, "Supervised warm-up steps on the separate MiniModo warm-up corpus (0: random model)."
    )
    warmup_batch: int = setting(32, "Warm-up batch size (rows).")
    warmup_lr: float = setting(1e-3, "Warm-up AdamW learning rate (linear warm-up over 20 steps, then constant).")
    label_noise: float = setting(
        0.3,
        "Fraction of warm-up answers replaced by a random valid answer (keeps the base "
        "partly learned and unsure, so GRPO groups have reward variance).",
    )
    warmup_weights: dict = setting(
        {
            "grounding": 1.0,
            "referring": 1.0,
            "geometry": 1.0,
            "spatial": 1.0,
            "science": 1.0,
            "aux_count": 0.6,
            "aux_column": 0.6,
        },
        "Task weights of the warm-up corpus (MiniModo task names; never a test split).",
    )
    curriculum_steps: int = setting(
        0,
        "First warm-up steps drawn from curriculum_weights instead (one-token answers "
        "first switch the vision pathway on; then the full corpus).",
    )
    curriculum_weights: dict = setting(
        {"science": 1.0, "geometry": 1.0, "spatial": 1.0, "aux_column": 1.0, "aux_count": 1.0},
        "Task weights of the curriculum phase.",
    )
    seed: int = setting(0, "Seed of the tokenizer corpus, the init and the warm-up stream.")
    family: str = setting(
        "qwen2vl",
        "Architecture family: 'qwen2vl' (tiny Qwen2-VL) or 'idefics3' (tiny "
        "Idefics3: SigLIP-style vision, pixel-shuffle connector, Llama decoder); "
        "harness/training/bases.py FAMILIES.",
        neutral="qwen2vl",
    )
    task_set: str = setting(
        "minimodo",
        "Task set whose text trains the tokenizer and whose rows make the warm-up "
        "corpus: 'minimodo' (five domains) or 'minimodo8' (eight; tasks/minimodo8.py).",
        neutral="minimodo",
    )

    def key(self) -> dict:
        """What the cache key covers: every field but the label, and fields added later only when they leave
        their neutral value (so the bases built before them keep their hash and cache folder)."""
        d = result_fields(self)
        d.pop("name", None)
        return d


@dataclass(frozen=True)
class ProtocolConfig:
    """Everything that defines one train-and-evaluate run, except the mixture and the seed."""

    name: str = setting("tiny", "Protocol name (a preset name, or free text for a custom protocol).", label=True)
    model: str = setting("tiny", "'tiny' (a BaseModelConfig built locally) or a model id/path (GPU runner).")
    base: BaseModelConfig = setting(BaseModelConfig(), "The tiny base model, when model == 'tiny'.")
    train_domains: tuple = setting(
        ("grounding", "referring", "geometry", "spatial", "science"),
        "Training datasets, in mixture order (the suite's datasets).",
    )
    ood_sets: tuple = setting(
        ("counting", "chart", "novel_referring", "column"), "Out-of-domain test sets (Out-Score is their mean)."
    )
    steps: int = setting(200, "GRPO optimizer steps.")
    prompts_per_step: int = setting(2, "Prompts per step (batch = prompts_per_step × num_generations completions).")
    num_generations: int = setting(8, "Completions per prompt (the GRPO group).")
    max_completion_length: int = setting(24, "Maximum completion tokens (also the evaluation's max_new_tokens).")
    learning_rate: float = setting(3e-4, "GRPO learning rate (constant schedule).")
    beta: float = setting(0.04, "KL coefficient against the reference (base) model; the paper uses 0.04.")
    temperature: float = setting(1.2, "Sampling temperature of the rollouts.")
    loss_type: str = setting("dapo", "TRL loss_type ('grpo', 'dapo', 'dr_grpo', ...).")
    scale_rewards: str = setting("group", "TRL scale_rewards ('group', 'batch', 'none').")
    reward_weights: tuple = setting((2.0, 1.0), "Weights of (accuracy, format) rewards: the paper's 2·acc + 1·format.")
    reward_rule: str = setting(
        "paper",
        "'paper': a failed answer parse zeroes the sample's whole reward, format "
        "included (the paper's rule, the default); 'format_kept': the format reward counts on "
        "its own (the rule the MiniModo recorded suites were made with; presets tiny and "
        "tiny-h128 keep it). See tasks/rewards.py REWARD_RULES.",
        neutral="format_kept",
    )
    stopping_strategy: str = setting(
        "first_exhausted",
        "datasets.interleave_datasets stopping rule: 'first_exhausted' (the paper's) or 'all_exhausted'.",
    )
    pool_per_domain: int = setting(
        0,
        "Training rows generated per domain (0: steps × prompts_per_step, so that one "
        "pass of the mixed stream covers training under first_exhausted).",
    )
    eval_n: int = setting(64, "Test examples per benchmark (in-domain test splits and OOD sets).")
    eval_batch: int = setting(64, "Evaluation batch size (greedy generation).")
    eval_p_correct: bool = setting(
        False,
        "Also score each benchmark by p_correct (teacher-forced probability of "
        "the gold completion; one extra forward pass): adds p_correct_<benchmark>, "
        "In_Score_p, Out_Score_p to the scores (shared/notes/mixture-signal.md).",
        neutral=False,
    )
    eval_checkpoints: tuple = setting(
        (),
        "Fractions of the GRPO steps (each in (0, 1)) at which the policy is also "
        "evaluated during training, beside the final evaluation (e.g. [0.25, 0.5]: three "
        "fidelities per run). Evaluated under a saved and restored RNG state, so the "
        "training trajectory and the final scores do not change.",
        neutral=(),
    )
    threads: int = setting(1, "torch threads per run (the machine is shared; runs parallelise across processes).")
    use_vllm: bool = setting(False, "Generate rollouts with vLLM (GPU runner only).")
    bf16: bool = setting(False, "bfloat16 training (GPU runner only).")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ProtocolConfig:
        """A suite card's `protocol_config:`: `preset` (a name in PRESETS) overridden by the other keys, each
        coerced strictly (harness/protocols/fields.py); `base` is a BASE_MODELS name or a mapping (its own
        `preset` overridden by its keys)."""
        d = dict(d or {})
        preset = d.pop("preset", None)
        if preset is not None and preset not in PRESETS:
            raise ProtocolError(f"unknown protocol preset {preset!r}; valid: {', '.join(PRESETS)}")
        if isinstance(d.get("base"), str):
            if d["base"] not in BASE_MODELS:
                raise ProtocolError(f"unknown base model {d['base']!r}; valid: {', '.join(BASE_MODELS)}")
            d["base"] = BASE_MODELS[d["base"]]
        elif isinstance(d.get("base"), dict):
            b = dict(d["base"])
            start = b.pop("preset", None)
            if start is not None and start not in BASE_MODELS:
                raise ProtocolError(f"unknown base model base.preset {start!r}; valid: {', '.join(BASE_MODELS)}")
            d["base"] = build(BaseModelConfig, b, "base", start=BASE_MODELS[start] if start else BaseModelConfig())
        return build(cls, d, start=PRESETS[preset] if preset else cls())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __post_init__(self):
        from tasks.rewards import REWARD_RULES

        if self.reward_rule not in REWARD_RULES:
            raise ValueError(f"protocol reward_rule {self.reward_rule!r} is unknown; valid: {', '.join(REWARD_RULES)}")
        bad = [f for f in self.eval_checkpoints if not 0.0 < float(f) < 1.0]
        if bad or list(self.eval_checkpoints) != sorted(set(self.eval_checkpoints)):
            raise ValueError(
                f"eval_checkpoints must be distinct increasing fractions in (0, 1) (the final "
                f"evaluation is always made), got {list(self.eval_checkpoints)}"
            )

    def checkpoint_steps(self) -> dict[float, int]:
        """fidelity (fraction of the steps) -> the GRPO step after which that checkpoint is evaluated."""
        import math

        return {float(f): max(1, math.ceil(self.steps * float(f))) for f in self.eval_checkpoints}

    def fingerprint(self) -> str:
        """Hash of what changes results (`result_fields`): a field added later is left out while it holds
        the value that reproduces the behaviour from before it, so a new default-off option leaves
        every existing protocol's fingerprint alone (the ones stored in recorded runs included), and
        any result-changing setting moves it. The labels (`name`, `base.name`) stay in for that same
        reason: the fingerprints of every recorded run were computed with them (and with json's default
        separators), and a renamed preset is rare enough to be a new protocol."""
        return fingerprint(result_fields(self, labels=True), compact=False)

    @property
    def batch_size(self) -> int:
        return self.prompts_per_step * self.num_generations

    @property
    def rollouts(self) -> int:
        return self.steps * self.batch_size

    @classmethod
    def help(cls) -> str:
        """Every setting a card's `protocol_config:` may override, `base.` ones included, with its default."""
        return "\n".join(describe(cls, dotted=True))


BASE_MODELS: dict[str, BaseModelConfig] = {
    # Small and quick to build (CI builds it from an empty cache): hidden 64, 150 warm-up steps. It
    # follows the answer format but is near chance on every task: the smoke protocol's base.
    "tiny-h64": BaseModelConfig(name="tiny-h64", hidden=64, warmup_steps=150),
    # The suite's bases: a 200-step curriculum of one-token tasks, then the full warm-up corpus, with
    # 15% label noise, stopped at 500 steps where the skills are partly learned (see the issue note).
    "tiny-h64-cur": BaseModelConfig(
        name="tiny-h64-cur", hidden=64, warmup_steps=500, curriculum_steps=200, label_noise=0.15
    ),
    # Twice the width (0.6M parameters), a longer warm-up (it learns more slowly: at 500 steps it was still
    # at chance): the second base, to compare strategies across bases.
    "tiny-h128-cur": BaseModelConfig(
        name="tiny-h128-cur", hidden=128, warmup_steps=800, curriculum_steps=300, label_noise=0.15
    ),
}
BASE_MODELS["tiny-h128"] = BASE_MODELS["tiny-h128-cur"]

# Issue 27: a second family and the eight-domain task set, each base built by the recipe of its
# five-domain counterpart (a one-token curriculum, then the whole warm-up corpus, 15% label noise).
DOMAINS8 = ("grounding", "referring", "geometry", "spatial", "science", "tally", "bars", "maze")  # tasks/minimodo8.py
OOD8 = ("counting", "chart", "novel_referring", "column", "bar_compare")
_WARMUP8 = {**{d: 1.0 for d in DOMAINS8}, "aux_count": 0.6, "aux_column": 0.6}
_CURRICULUM8 = {
    "science": 1.0,
    "geometry": 1.0,
    "spatial": 1.0,
    "aux_column": 1.0,
    "aux_count": 1.0,
    "bars": 1.0,
    "maze": 1.0,
    "tally": 1.0,
}
BASE_MODELS.update(
    {
        # tiny Idefics3 (harness/training/family_idefics3.py), hidden 64, on the five MiniModo domains
        "tiny-idf64-cur": BaseModelConfig(
            name="tiny-idf64-cur",
            family="idefics3",
            hidden=64,
            warmup_steps=500,
            curriculum_steps=200,
            label_noise=0.15,
        ),
        # the same on the eight MiniModo-8 domains
        "tiny-idf64-8cur": BaseModelConfig(
            name="tiny-idf64-8cur",
            family="idefics3",
            task_set="minimodo8",
            hidden=64,
            warmup_steps=500,
            curriculum_steps=200,
            label_noise=0.15,
            warmup_weights=_WARMUP8,
            curriculum_weights=_CURRICULUM8,
        ),
        # the current family (tiny Qwen2-VL) at both widths on the eight domains
        "tiny-h64-8cur": BaseModelConfig(
            name="tiny-h64-8cur",
            task_set="minimodo8",
            hidden=64,
            warmup_steps=500,
            curriculum_steps=200,
            label_noise=0.15,
            warmup_weights=_WARMUP8,
            curriculum_weights=_CURRICULUM8,
        ),
        "tiny-h128-8cur": BaseModelConfig(
            name="tiny-h128-8cur",
            task_set="minimodo8",
            hidden=128,
            warmup_steps=800,
            curriculum_steps=300,
            label_noise=0.15,
            warmup_weights=_WARMUP8,
            curriculum_weights=_CURRICULUM8,
        ),
    }
)

PRESETS: dict[str, ProtocolConfig] = {
    # A few GRPO steps and a few evaluation items: the CI end-to-end path.
    "smoke": ProtocolConfig(
        name="smoke", base=BASE_MODELS["tiny-h64"], steps=4, prompts_per_step=2, num_generations=4, eval_n=8
    ),
    # The minimodo-tiny suite's protocol.
    # A preset's meaning never changes once suites are recorded with it: these keep the reward rule
    # those runs used (format_kept), the paper's rule being the default only since; a new protocol
    # that wants it sets `reward_rule: paper` in its card.
    "tiny": ProtocolConfig(name="tiny", base=BASE_MODELS["tiny-h64-cur"], reward_rule="format_kept"),
    "tiny-h128": ProtocolConfig(name="tiny-h128", base=BASE_MODELS["tiny-h128-cur"], reward_rule="format_kept"),
    # Issue 27's protocols: the `tiny` training recipe (reward rule included, so that only the family or
    # the task set varies between suites) on the new bases; `tiny8*` train on the eight domains.
    "tiny-idf": ProtocolConfig(name="tiny-idf", base=BASE_MODELS["tiny-idf64-cur"], reward_rule="format_kept"),
    "tiny8": ProtocolConfig(
        name="tiny8",
        base=BASE_MODELS["tiny-h64-8cur"],
        train_domains=DOMAINS8,
        ood_sets=OOD8,
        reward_rule="format_kept",
    ),
    "tiny8-h128": ProtocolConfig(
        name="tiny8-h128",
        base=BASE_MODELS["tiny-h128-8cur"],
        train_domains=DOMAINS8,
        ood_sets=OOD8,
        reward_rule="format_kept",
    ),
    "tiny8-idf": ProtocolConfig(
        name="tiny8-idf",
        base=BASE_MODELS["tiny-idf64-8cur"],
        train_domains=DOMAINS8,
        ood_sets=OOD8,
        reward_rule="format_kept",
    ),
}
