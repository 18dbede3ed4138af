"""filter_criteria: how many filters, and none twice (reference A.6)."""

from __future__ import annotations

from typing import Any

from .. import rules
from ..rules import Kind
from ..spec import canonical_pattern
from .context import Problem, RuleContext

_FILTERS = "filter_criteria.filters"


def _filters(settings: dict[str, Any]) -> list[dict[str, Any]]:
    return (settings.get("filter_criteria") or {}).get("filters") or []


def filter_count_within_quota(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    if len(_filters(settings)) <= rules.FILTER_LIMIT:
        return []
    return [(_FILTERS, f"at most {rules.FILTER_LIMIT} filters (AWS quota; 5 by default)")]


def filters_distinct(settings: dict[str, Any], kind: Kind, context: RuleContext) -> list[Problem]:
    # The same pattern written in another key order or spacing is the same filter.
    patterns = [canonical_pattern(f["pattern"]) for f in _filters(settings)]
    if len(set(patterns)) == len(patterns):
        return []
    return [(_FILTERS, "the same filter pattern is given twice")]
