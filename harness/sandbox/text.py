"""Text from a strategy's sandbox made safe to print and store (failure reasons, names, output tails).

Everything a sandboxed strategy says reaches the operator's terminal, summary.csv and the leaderboard,
so a message could carry terminal escape sequences (erase the screen, write the clipboard with OSC 52,
conceal text), bidirectional overrides that reorder what is shown, or 200,000 characters. `clean`
removes escape sequences whole (not just their ESC byte: the rest of a CSI or OSC sequence is noise),
turns every other control or format character into a space, collapses runs of white space and caps the
length. It imports nothing of the harness: the sandbox's child process uses it too.
"""

from __future__ import annotations

import re
import unicodedata

MAX_REASON = 500

# ESC (or its 8-bit C1 form) sequences: CSI ... final byte; OSC/DCS/SOS/PM/APC ... up to BEL or ST (or the
# end of the text, for a sequence left open); any other two-byte ESC sequence.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?",
)


def _printable(ch: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cf: format characters (bidi overrides, zero-width joiners);
    # Zl/Zp: line and paragraph separators; Cs/Co/Cn: surrogates, private use, unassigned.
    return unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def clean(value: object, limit: int = MAX_REASON, default: str = "") -> str:
    """`value` as one line of printable text, escape sequences removed, at most `limit` characters."""
    if not isinstance(value, str):
        return default
    value = value[: limit * 8]  # bound the work on a huge text before the regex runs
    value = _ESCAPES.sub(" ", value)
    value = "".join(ch if _printable(ch) else " " for ch in value)
    value = " ".join(value.split())
    if not value:
        return default
    return value if len(value) <= limit else value[: limit - 3] + "..."
