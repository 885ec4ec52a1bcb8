"""Plain data both ways between the bench and a strategy's sandbox (harness/sandbox/).

Mixtures, observations, budgets and parameters cross as JSON-able plain data, never pickled objects;
what comes back is checked (types, sizes, finite numbers, a valid Mixture) before a study sees it.
"""

from __future__ import annotations

import json
import traceback

from harness.sandbox.text import clean


class StrategyError(Exception):
    """A strategy failed in its sandbox (the message carries the original error, or how it died)."""


class StrategyTimeout(Exception):
    """A strategy call ran past its time limit (in its sandbox, or in-process under an alarm)."""


def short_error(e: BaseException) -> str:
    """An error as one line, "Type: message at file:line" (where a study, a bench or an online run records why a
    strategy or a runner failed); a StrategyError already is that line, from the strategy's process."""
    if isinstance(e, StrategyError):
        return str(e)
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


MAX_NAME_CHARS = 200


def _text(value, default: str) -> str:
    return clean(value, default=default)


# -- plain data both ways ---------------------------------------------------------------------------
def plain_history(history) -> list[dict]:
    return [
        {
            "mixture": [[n, float(w)] for n, w in o.mixture.items()],
            "objective": None if o.objective is None else float(o.objective),
            "scores": {str(k): (float(v) if isinstance(v, (int, float)) else v) for k, v in dict(o.scores).items()},
            "status": str(o.status),
            "fidelity": float(o.fidelity),
        }
        for o in history
    ]


def plain_budget(budget) -> dict:
    cm = getattr(budget, "cost_model", None)  # a multi-fidelity suite's measured price of a pilot
    return {
        "runs": budget.runs,
        "gpu_hours": None if budget.gpu_hours is None else float(budget.gpu_hours),
        "cost_model": None if cm is None else cm.to_card(),
    }


def plain_params(params: dict) -> dict:
    try:
        text = json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"strategy parameters must be plain data (numbers, strings, lists, dicts): {e}") from None
    return json.loads(text)


def _foreign(type_name: str, text: str):
    """An object standing for a non-Mixture value the strategy returned: the study's message names its
    type and repr just as it would in-process."""
    name = "".join(c for c in type_name if c.isalnum() or c == "_")[:60] or "object"
    return type(name, (), {"__repr__": lambda self: text, "__slots__": ()})()


def read_mixture(reply: dict, what: str):
    from harness.mixture import InvalidMixture, Mixture

    if "other" in reply:
        other = reply["other"] if isinstance(reply["other"], dict) else {}
        return _foreign(_text(other.get("type"), "object"), _text(other.get("repr"), "?"))
    pairs = reply.get("mixture")
    if pairs is None:
        return None
    if "fidelity" in reply:  # a Proposal (a pilot at a fidelity)
        f = reply["fidelity"]
        if isinstance(f, bool) or not isinstance(f, (int, float)):
            raise StrategyError(f"{what} sent a malformed fidelity")
        from harness.spec import Proposal

        return Proposal(read_mixture({"mixture": pairs}, what), float(f))
    if not isinstance(pairs, list) or not 0 < len(pairs) <= 10_000:
        raise StrategyError(f"{what} sent a malformed mixture")
    weights: dict[str, float] = {}
    for p in pairs:
        if (
            not isinstance(p, list)
            or len(p) != 2
            or not isinstance(p[0], str)
            or isinstance(p[1], bool)
            or not isinstance(p[1], (int, float))
            or p[0] in weights
            or clean(p[0], limit=MAX_NAME_CHARS) != p[0]
        ):  # a dataset name is printable text
            raise StrategyError(f"{what} sent a malformed mixture")
        weights[p[0]] = float(p[1])
    try:
        return Mixture(weights)
    except InvalidMixture as e:
        raise StrategyError(clean(f"{what} returned an invalid mixture: {e}")) from None
