"""Kafka sources (Amazon MSK, self-managed): error handling needs provisioned mode, and a
consumer group serves one mapping per source."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import rules
from ..errors import SpecError
from ..loader import dotted
from ..model import DesiredMapping
from ..rules import KIND_NAMES, Kind
from .context import Problem, RuleContext, member

# What on-demand mode does anyway: unset or AWS's defaults (-1, False, []). 0 == False in
# Python, so 0 passes too.
_ON_DEMAND_VALUES = (None, [], -1, False)


def error_handling_needs_provisioned_mode(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    if kind not in rules.KAFKA_KINDS or settings.get("provisioned_poller_config"):
        return []
    return [
        (
            key,
            f"{KIND_NAMES[kind]} error handling needs provisioned mode: set "
            "provisioned_poller_config",
        )
        for key in rules.KAFKA_PROVISIONED_ONLY
        if settings.get(key) not in _ON_DEMAND_VALUES
    ]


def consumer_group_errors(mappings: Iterable[DesiredMapping]) -> list[SpecError]:
    """A consumer group id is unique per Kafka source (AWS: "... consumerGroupId ... already
    exists"), across every file of a run."""
    first_by_group: dict[tuple[str, str], DesiredMapping] = {}
    errors: list[SpecError] = []
    for desired in mappings:
        found = _consumer_group(desired)
        if found is None:
            continue
        path, group = found
        first = first_by_group.setdefault((desired.source.split("#")[0], group), desired)
        if first is not desired:
            errors.append(
                SpecError(
                    desired.file,
                    desired.key_lines.get(path, desired.line),
                    dotted(("functions", desired.function, desired.index, *path.split("."))),
                    f"consumer_group_id {group!r} is already used on this Kafka source by "
                    f"{first.function} ({first.file}:{first.line})",
                )
            )
    return errors


def _consumer_group(desired: DesiredMapping) -> tuple[str, str] | None:
    """(path, group id) of the consumer group the mapping names; None when it names none."""
    for path in rules.CONSUMER_GROUP_PATHS:
        if desired.settings.get(path.split(".")[0]):
            group = member(desired.settings, path)
            return (path, group) if group else None
    return None
