"""Out-of-domain evaluation through lmms-eval with the paper's reasoning prompt.

`tasks.lmms.prompting` (pure Python, tested on CPU): the reasoning prompt, answer extraction from
`<answer>` tags, and a rule-based MathVista prompt, answer extraction and scorer (no paid API key).
`tasks.lmms.model` (GPU extra only: imports lmms-eval and vLLM): the lmms-eval model class.
"""

from tasks.lmms.prompting import (
    LMMS_TASKS,
    build_prompt,
    extract_final_answer,
    mathvista_correct,
    mathvista_extract,
    mathvista_prompt,
    mathvista_score,
)

__all__ = [
    "LMMS_TASKS",
    "build_prompt",
    "extract_final_answer",
    "mathvista_correct",
    "mathvista_extract",
    "mathvista_prompt",
    "mathvista_score",
]
