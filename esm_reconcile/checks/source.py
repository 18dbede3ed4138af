"""One source of a known kind, and the fields that kind takes and needs (reference A.1, A.3)."""

from __future__ import annotations

from typing import Any

from .. import rules
from ..model import kind_of
from ..rules import KIND_NAMES, Kind
from .context import Problem, RuleContext, member


def source_problems(settings: dict[str, Any]) -> list[Problem]:
    """Exactly one source, of a kind this tool knows. Every other rule needs the kind, so they
    run only when this finds nothing."""
    arn, self_managed = settings.get("event_source_arn"), settings.get("self_managed_event_source")
    if arn and self_managed:
        return [
            (
                "self_managed_event_source",
                "give event_source_arn or self_managed_event_source, not both",
            )
        ]
    if not arn and not self_managed:
        return [
            (
                "event_source_arn",
                "required: the source's ARN (or self_managed_event_source for self-managed Kafka)",
            )
        ]
    if kind_of(settings) is None:
        return [
            (
                "event_source_arn",
                "unrecognised event source: expected an SQS queue, Kinesis "
                "stream, DynamoDB stream, MSK cluster, Amazon MQ broker or DocumentDB cluster ARN",
            )
        ]
    return []


def fields_not_for_kind(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    problems: list[Problem] = []
    for key in settings:
        if key in rules.APPLIES_TO and not rules.applies(key, kind):
            why = rules.NOT_SUPPORTED_WHY.get((key, kind))
            reason = f" ({why})" if why else ""
            problems.append((key, f"not supported for {KIND_NAMES[kind]} sources{reason}"))
    return problems


def members_not_for_kind(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    """A member of an object this kind takes that the kind does not (an object the kind does
    not take at all is reported whole by fields_not_for_kind)."""
    return [
        (path, f"not supported for {KIND_NAMES[kind]} sources")
        for path, kinds in rules.MEMBER_APPLIES_TO.items()
        if kind not in kinds and rules.applies(path.split(".")[0], kind) and member(settings, path)
    ]


def required_fields(settings: dict[str, Any], kind: Kind, context: RuleContext) -> list[Problem]:
    return [
        (key, f"required for {KIND_NAMES[kind]} sources")
        for key in rules.REQUIRED.get(kind, ())
        if not settings.get(key)
    ]


def required_members(settings: dict[str, Any], kind: Kind, context: RuleContext) -> list[Problem]:
    """Members an object cannot do without once it is given (a missing object is reported by
    required_fields where the kind needs it)."""
    return [
        (path, f"required for {KIND_NAMES[kind]} sources")
        for path in rules.REQUIRED_MEMBERS.get(kind, ())
        if settings.get(path.split(".")[0]) and not member(settings, path)
    ]
