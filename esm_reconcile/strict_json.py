"""JSON from untrusted hands (saved plans, filter patterns written as JSON strings): read as
strictly as esm writes it, and measured without recursion."""

from __future__ import annotations

import json
from typing import Any

from .errors import one_line


def loads(text: str) -> Any:
    """json.loads, refusing what JSON's grammar does not allow or says nothing of: NaN and
    Infinity (Python reads them), and a key given twice in one object (Python keeps the last,
    silently). Raises ValueError (json.JSONDecodeError for syntax; RecursionError when deep)."""
    return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {one_line(key)} is given twice")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def depth(value: Any) -> int:
    """Levels of objects and arrays in a parsed value (a scalar is 0), without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            members = item.values() if isinstance(item, dict) else item
            pending.extend((member, level) for member in members)
    return deepest
