"""Where reading starts (starting position and timestamp) and how old a record may get
(reference A.3, A.5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import rules
from ..rules import KIND_NAMES, Kind
from .context import Problem, RuleContext


def timestamp_matches_position(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    """AT_TIMESTAMP needs a timestamp, so a kind that takes a position but no timestamp
    (DynamoDB Streams) cannot start at one; a timestamp goes only with AT_TIMESTAMP."""
    position = settings.get("starting_position")
    timestamp = settings.get("starting_position_timestamp")
    takes_timestamp = rules.applies("starting_position_timestamp", kind)
    if position == "AT_TIMESTAMP" and not takes_timestamp:
        if rules.applies("starting_position", kind):  # else the position is refused already
            return [("starting_position", f"AT_TIMESTAMP is not supported for {KIND_NAMES[kind]}")]
        return []
    if not takes_timestamp:
        return []
    if position == "AT_TIMESTAMP" and timestamp is None:
        return [("starting_position_timestamp", "required with AT_TIMESTAMP")]
    if position != "AT_TIMESTAMP" and timestamp is not None:
        return [
            ("starting_position_timestamp", "only allowed with starting_position: AT_TIMESTAMP")
        ]
    return []


def timestamp_not_in_future(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    timestamp = settings.get("starting_position_timestamp")
    if not isinstance(timestamp, datetime):
        return []
    aware = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
    return (
        [("starting_position_timestamp", "cannot be in the future")] if aware > context.now else []
    )


def record_age_in_range(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    """-1 (no limit) or 60-604800; the model refuses the rest of the range, this the gap."""
    age = settings.get("maximum_record_age_in_seconds")
    if age is not None and 0 <= age < 60:
        return [("maximum_record_age_in_seconds", "must be -1 or between 60 and 604800")]
    return []
