"""The mappings moto cannot host (MSK, self-managed Kafka, MQ, DocumentDB, Kinesis consumers),
kept by the sandbox itself and answered with AWS's per-kind answers (`aws_answers`).

Plain state, no WSGI: `fidelity.AwsLikeMappings` routes requests here and holds the lock.
"""

from __future__ import annotations

import time
import uuid as uuids
from dataclasses import dataclass, field
from typing import Any

from . import aws_answers
from .aws_answers import Refusal


@dataclass
class HostedMapping:
    region: str
    kind: str
    record: dict[str, Any]  # as Get shows it (FunctionArn, State, ... included)
    tags: dict[str, str] = field(default_factory=dict)
    order: int = 0  # creation order: List shows hosted mappings in it, after moto's


@dataclass
class HostedMappings:
    """Mappings by UUID, each in its region, with its tags."""

    account: str
    mappings: dict[str, HostedMapping] = field(default_factory=dict)
    _made: int = 0

    def create(
        self, region: str, kind: str, body: dict[str, Any], function_arn: str
    ) -> HostedMapping:
        """Check and store a Create (the caller has checked the function and duplicates)."""
        aws_answers.check_create(kind, body)
        tags = body.get("Tags") or {}
        if not isinstance(tags, dict):
            raise Refusal("Tags must be a map.")
        uuid = str(uuids.uuid4())
        esm_arn = f"arn:aws:lambda:{region}:{self.account}:event-source-mapping:{uuid}"
        record = aws_answers.created(
            kind, body, uuid=uuid, function_arn=function_arn, esm_arn=esm_arn, now=time.time()
        )
        self._made += 1
        mapping = HostedMapping(region, kind, record, dict(tags), self._made)
        self.mappings[uuid] = mapping
        return mapping

    def get(self, region: str, uuid: str) -> HostedMapping | None:
        mapping = self.mappings.get(uuid)
        return mapping if mapping is not None and mapping.region == region else None

    def update(
        self, mapping: HostedMapping, body: dict[str, Any], function_arn: str | None
    ) -> None:
        aws_answers.check_update(mapping.kind, mapping.record, body)
        record = aws_answers.updated(mapping.kind, mapping.record, body, now=time.time())
        if function_arn is not None:
            record["FunctionArn"] = function_arn
        mapping.record = record

    def listed(
        self, region: str, source_arn: str | None, function_arn: str | None
    ) -> list[dict[str, Any]]:
        """The region's mappings a List with these filters shows, in creation order."""
        found = sorted(
            (m for m in self.mappings.values() if m.region == region), key=lambda m: m.order
        )
        return [
            m.record
            for m in found
            if (source_arn is None or m.record.get("EventSourceArn") == source_arn)
            and (function_arn is None or m.record.get("FunctionArn") == function_arn)
        ]

    def by_esm_arn(self, arn: str) -> HostedMapping | None:
        """The mapping an EventSourceMappingArn names, None when not one of these."""
        prefix, _, uuid = arn.rpartition(":event-source-mapping:")
        mapping = self.mappings.get(uuid) if prefix else None
        if mapping is None or mapping.record.get("EventSourceMappingArn") != arn:
            return None
        return mapping

    def forget(self, uuid: str) -> None:
        self.mappings.pop(uuid, None)
