"""destination_config: where discarded batches go (reference A.5)."""

from __future__ import annotations

from typing import Any

from .. import rules
from ..model import parse_arn
from ..rules import KIND_NAMES, Kind
from .context import Problem, RuleContext

_ON_FAILURE = "destination_config.on_failure.destination"
_KAFKA_SCHEME = "kafka://"
# AWS takes these services as on-failure destinations; a Kafka source also a kafka:// topic.
_ARN_SERVICES = ("sqs", "sns", "s3")


def no_on_success(settings: dict[str, Any], kind: Kind, context: RuleContext) -> list[Problem]:
    if (settings.get("destination_config") or {}).get("on_success") is None:
        return []
    return [
        (
            "destination_config.on_success",
            "not supported: AWS accepts no OnSuccess destination for event source mappings",
        )
    ]


def on_failure_destination_fits(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    on_failure = (settings.get("destination_config") or {}).get("on_failure")
    if on_failure is None:
        return []
    message = _on_failure_problem(on_failure.get("destination"), settings, kind)
    return [(_ON_FAILURE, message)] if message else []


def _on_failure_problem(target: str | None, settings: dict[str, Any], kind: Kind) -> str | None:
    if not target:
        return "required for an on_failure configuration"
    if target.startswith(_KAFKA_SCHEME):
        if kind not in rules.KAFKA_KINDS:
            return f"a kafka:// destination is only for Kafka sources, not {KIND_NAMES[kind]}"
        if target.removeprefix(_KAFKA_SCHEME) in (settings.get("topics") or []):
            return "the on-failure topic must differ from the source topic"
        return None
    if getattr(parse_arn(target), "service", None) not in _ARN_SERVICES:
        return "must be an SQS queue, SNS topic or S3 bucket ARN"
    return None
