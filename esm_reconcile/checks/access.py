"""source_access_configurations: the entries each kind takes and needs (reference A.3)."""

from __future__ import annotations

from typing import Any

from .. import rules
from ..rules import KIND_NAMES, Kind
from .context import Problem, RuleContext

_FIELD = "source_access_configurations"


def credentials_required(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    needed = rules.REQUIRED_ACCESS.get(kind)
    if needed is None or settings.get(_FIELD):
        return []
    return [(_FIELD, f"required for {KIND_NAMES[kind]} sources: a {needed} entry")]


def entries_fit_kind(settings: dict[str, Any], kind: Kind, context: RuleContext) -> list[Problem]:
    """Each entry has a uri exactly when its type takes one, and a type this kind uses."""
    if not rules.applies(_FIELD, kind):
        return []  # the whole field is refused already
    allowed = rules.ACCESS_TYPES.get(kind, frozenset())
    problems: list[Problem] = []
    for index, entry in enumerate(settings.get(_FIELD) or []):
        entry_type = entry["type"]
        takes_no_uri = entry_type in rules.ACCESS_WITHOUT_URI
        if (entry.get("uri") is None) != takes_no_uri:
            needs = "takes no uri" if takes_no_uri else "needs a uri"
            problems.append((f"{_FIELD}.{index}.uri", f"{entry_type} {needs}"))
        if entry_type not in allowed:
            problems.append(
                (
                    f"{_FIELD}.{index}.type",
                    f"{entry_type} is not used by {KIND_NAMES[kind]} sources "
                    f"(allowed: {', '.join(sorted(allowed))})",
                )
            )
    return problems


def credentials_entry_given(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    """Entries given, but not the credentials one (no entries at all: credentials_required)."""
    needed = rules.REQUIRED_ACCESS.get(kind)
    entries = settings.get(_FIELD) or []
    if not needed or not entries or any(e["type"] == needed for e in entries):
        return []
    return [
        (
            _FIELD,
            f"{KIND_NAMES[kind]} sources need a {needed} entry "
            "(the Secrets Manager secret with the credentials)",
        )
    ]


def single_types_not_repeated(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    entries = settings.get(_FIELD) or []
    return [
        (_FIELD, f"only one {entry_type} entry")
        for entry_type in rules.SINGLE_ACCESS_TYPES
        if sum(e["type"] == entry_type for e in entries) > 1
    ]
