"""How deep a device's JSON document nests, decided before any decoder recurses into it.

`json` and msgspec both recurse once per level of `[` / `{` and share CPython 3.11's recursion
budget with Python code. A payload of 16 KiB of `[` therefore takes them to the recursion limit,
and a garbage collection that happens there runs other objects' finalizers with no budget left:
they fail with RecursionError ("Exception ignored in …"), which is how a test run found it.
No device document nests deeply (PROTOCOL: flat objects, an event's `detail` a small object), so
anything past `MAX_DEPTH` is refused before it is decoded. The one decoder not guarded is the
heartbeat's typed msgspec decoder: it refuses a wrong type at its first byte and skips unknown
fields without building objects, so it cannot set off a collection on the way down; checking
every heartbeat first would add ~0.3 µs to its ~2.5 µs parse, on the hottest path.

The check is linear and runs in C: a document with fewer opening brackets than `MAX_DEPTH`
passes at once (two `bytes.count`). Otherwise strings are removed by one regular expression (it
cannot fail once started, so no position is scanned twice), brackets become `(` and `)` and all
else is deleted (one `bytes.translate`). A run of more than `MAX_DEPTH` `(` is refused at once. Each
`bytes.replace(b"()", b"")` then removes exactly one level (every `()` is an innermost pair; the
pairs it frees are left for the next pass). After `PEELS` of them a Python loop walks what is
left run by run: every run left stands on at least `PEELS` removed levels, so there are few.
"""

from __future__ import annotations

import re
from typing import Final

MAX_DEPTH: Final = 128  # far below the ~1,000 levels of recursion budget; no device nests past 3
# A JSON string, or what is left of an unterminated one (to the end, a final lone `\` included):
# from any `"` it matches, so no start position is scanned twice.
_STRING = re.compile(rb'"(?:[^"\\]|\\(?:.|\Z))*+(?:"|\Z)', re.S)
_PARENS: Final = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS: Final = bytes(c for c in range(256) if c not in b"[]{}")
_RUNS = re.compile(rb"\(+|\)+")
PEELS: Final = 8  # after 8 peels at most one run in 9 bytes is left for the Python loop


def too_deep(payload: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether `payload` nests arrays and objects more than `limit` levels deep (brackets in
    strings do not count). Exact for JSON; an opening bracket never closed counts as a level, so
    no decoder recurses through a run of them to find out that the document is not JSON."""
    if len(payload) <= limit or payload.count(b"[") + payload.count(b"{") <= limit:
        return False  # the hot path: fewer bytes, or opening brackets, than levels allowed
    text = _STRING.sub(b"", payload) if b'"' in payload else payload
    parens = text.translate(_PARENS, _NOT_BRACKETS)
    if b"(" * (limit + 1) in parens:
        return True  # the usual attack, found at once: a run of opening brackets
    for peeled in range(PEELS):
        if not parens:
            return False
        if peeled == limit:
            return True
        parens = parens.replace(b"()", b"")
    if not parens:
        return False
    # each peel removed exactly one level (every `()` is an innermost pair); count the rest by runs
    level = deepest = 0
    for run in _RUNS.findall(parens):
        if run[0] == 40:  # "("
            level += len(run)
            deepest = max(deepest, level)
        else:
            level -= len(run)
    return PEELS + deepest > limit


def depth_error(limit: int = MAX_DEPTH) -> str:
    """The rejection detail for a document `too_deep` refused."""
    return f"nested deeper than {limit} levels"
