"""metrics_config: which metrics a kind publishes, and none twice (reference A.8)."""

from __future__ import annotations

from typing import Any

from .. import rules
from ..rules import Kind
from .context import Problem, RuleContext

_METRICS = "metrics_config.metrics"
_FOR_EVERY_KIND = "EventCount"  # ErrorCount and KafkaMetrics are Kafka's only


def _metrics(settings: dict[str, Any]) -> list[str]:
    return (settings.get("metrics_config") or {}).get("metrics") or []


def metrics_for_kind(settings: dict[str, Any], kind: Kind, context: RuleContext) -> list[Problem]:
    if kind in rules.KAFKA_KINDS:
        return []
    return [
        (_METRICS, f"{metric} is only for Kafka sources")
        for metric in _metrics(settings)
        if metric != _FOR_EVERY_KIND
    ]


def metrics_distinct(settings: dict[str, Any], kind: Kind, context: RuleContext) -> list[Problem]:
    metrics = _metrics(settings)
    return [(_METRICS, "a metric is listed twice")] if len(set(metrics)) != len(metrics) else []
