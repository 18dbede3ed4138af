"""AWS's rules for one mapping, as small named functions run from one table.

Each rule takes a mapping's merged settings (spec form), its source kind and a RuleContext, and
returns [(field path, message)]. What differs between kinds (the fields each takes and needs,
limits, names) is data in rules.py: a new source kind is rows there, plus at most one rule here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..model import kind_of
from . import (
    access,
    batching,
    destinations,
    filters,
    ignore_changes,
    kafka,
    metrics,
    pollers,
    source,
    streams,
)
from .context import MappingRule, Problem, RuleContext

__all__ = ["MAPPING_RULES", "MappingRule", "Problem", "RuleContext", "check_mapping"]

# Every rule of a mapping whose source is known; each finds its own problems, so all are reported.
MAPPING_RULES: tuple[MappingRule, ...] = (
    source.fields_not_for_kind,
    source.members_not_for_kind,
    source.required_fields,
    access.credentials_required,
    access.entries_fit_kind,
    access.credentials_entry_given,
    access.single_types_not_repeated,
    source.required_members,
    kafka.error_handling_needs_provisioned_mode,
    batching.batch_size_within_kind_limit,
    batching.large_batch_needs_window,
    streams.timestamp_matches_position,
    streams.timestamp_not_in_future,
    streams.record_age_in_range,
    filters.filter_count_within_quota,
    filters.filters_distinct,
    destinations.no_on_success,
    destinations.on_failure_destination_fits,
    pollers.poller_counts_in_range,
    pollers.pollers_exclude_max_concurrency,
    metrics.metrics_for_kind,
    metrics.metrics_distinct,
    ignore_changes.ignorable_entries,
)


def check_mapping(settings: dict[str, Any], now: datetime | None = None) -> list[Problem]:
    """AWS's per-kind and cross-field rules for one merged mapping: [(field path, message)]."""
    problems = source.source_problems(settings)
    kind = kind_of(settings)
    if problems or kind is None:
        return problems
    context = RuleContext(now=now or datetime.now(UTC))
    return [problem for rule in MAPPING_RULES for problem in rule(settings, kind, context)]
