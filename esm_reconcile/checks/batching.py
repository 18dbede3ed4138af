"""Batch size per kind, and the batching window large SQS batches need (reference A.3, A.5)."""

from __future__ import annotations

from typing import Any

from .. import rules
from ..rules import KIND_NAMES, Kind
from .context import Problem, RuleContext


def batch_size_within_kind_limit(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    batch, limit = settings.get("batch_size"), rules.MAX_BATCH_SIZE.get(kind)
    if batch is None or limit is None or batch <= limit:
        return []  # the model's 1-10000 range covers kinds without a limit of their own
    return [("batch_size", f"at most {limit} for {KIND_NAMES[kind]} sources")]


def large_batch_needs_window(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    above = rules.WINDOW_NEEDED_ABOVE_BATCH.get(kind)
    if (
        above is None
        or (settings.get("batch_size") or 0) <= above
        or settings.get("maximum_batching_window_in_seconds")
    ):
        return []
    return [
        (
            "maximum_batching_window_in_seconds",
            f"must be at least 1 when batch_size is greater than {above} (AWS: Maximum batch "
            "window in seconds must be greater than 0 if maximum batch size is greater "
            f"than {above})",
        )
    ]
