"""Which changes of a plan must wait for which: only where AWS needs an order (reference B).

- A replace's create waits until its own old mapping is gone: AWS refuses a second mapping of
  one (function, source), and a Deleting one still holds it.
- A create waits for the deletes (plain, or a replace's) of mappings that could hold what it
  asks for: the same function on the same source (its identity), or, for Kafka, any mapping of
  the same source (a consumer group is unique per Kafka source, whichever function holds it).
  Sources are the same when their ARNs are, or, for self-managed Kafka, when their bootstrap
  servers overlap (AWS refuses overlapping broker lists too).
- A create waits for the mappings still Deleting at plan time that hold its identity
  (`Change.wait_gone`).
Everything else runs at once: updates and deletes of different mappings do not interact.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import rules
from ..plan import Change

KAFKA_PREFIX = "kafka://"


@dataclass(frozen=True)
class Source:
    """A mapping's source as AWS compares it: an ARN, or a set of bootstrap servers."""

    arn: str | None
    brokers: frozenset[str]

    @classmethod
    def of(cls, change: Change) -> Source:
        base = change.event_source.split("#", 1)[0]
        if base.startswith(KAFKA_PREFIX):
            servers = frozenset(s for s in base[len(KAFKA_PREFIX) :].split(",") if s)
            return cls(None, servers)
        return cls(base, frozenset())

    def overlaps(self, other: Source) -> bool:
        if self.arn is not None or other.arn is not None:
            return self.arn == other.arn
        return bool(self.brokers & other.brokers)


def is_kafka(change: Change) -> bool:
    return change.kind in rules.KAFKA_KINDS or Source.of(change).arn is None


def must_wait(create: Change, delete: Change) -> bool:
    """Whether `create` (a create, or a replace's create half) must wait until the mapping
    `delete` removes (a delete, or a replace's old mapping) is gone."""
    if create is delete:
        return True  # a replace: its own old mapping first
    if not Source.of(create).overlaps(Source.of(delete)):
        return False
    return create.function_arn == delete.function_arn or is_kafka(create) or is_kafka(delete)


def create_waits(changes: list[Change]) -> dict[int, list[Change]]:
    """For each create or replace (by index in `changes`): the deletes it must wait for."""
    deletes = [c for c in changes if c.action in ("delete", "replace") and c.uuid]
    waits: dict[int, list[Change]] = {}
    for index, change in enumerate(changes):
        if change.action in ("create", "replace"):
            found = [d for d in deletes if must_wait(change, d)]
            if found:
                waits[index] = found
    return waits
