"""ignore_changes: each entry a field of this kind that can be left as AWS has it."""

from __future__ import annotations

from typing import Any

from .. import rules
from ..rules import KIND_NAMES, Kind
from ..spec import field_paths
from .context import Problem, RuleContext

_FIELD_PATHS = frozenset(field_paths())


def ignorable_entries(settings: dict[str, Any], kind: Kind, context: RuleContext) -> list[Problem]:
    problems: list[Problem] = []
    for entry in settings.get("ignore_changes") or []:
        message = _why_not_ignorable(entry, kind)
        if message:
            problems.append(("ignore_changes", message))
    return problems


def _why_not_ignorable(entry: str, kind: Kind) -> str | None:
    top = entry.split(".")[0]
    if entry not in _FIELD_PATHS:
        return f"{entry!r} is not a field"
    if top in rules.IDENTITY_FIELDS:
        # Another source is another mapping, not a change to leave alone.
        return f"{entry!r} identifies the mapping; it cannot be ignored"
    if not rules.applies(top, kind):
        return f"{entry!r} does not apply to {KIND_NAMES[kind]} sources"
    return None
