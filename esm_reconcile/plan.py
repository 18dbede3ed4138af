"""The plan: plain data that renderers show and apply executes (so what is shown is what is done)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "replace", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete")
FORMAT_VERSION = "1"


@dataclass(frozen=True)
class FieldChange:
    name: str
    before: Any
    after: Any
    forces_replacement: bool = False


@dataclass
class Change:
    action: Action
    address: str
    function_arn: str
    event_source: str
    uuid: str | None
    fields: list[FieldChange] = field(default_factory=list)
    kind: str = ""
    # Fully concrete API requests; apply sends exactly these.
    create_request: dict[str, Any] | None = None
    update_request: dict[str, Any] | None = None
    tag_changes: dict[str, Any] | None = None  # {"arn": ..., "set": {...}, "remove": [...]}
    warnings: list[str] = field(default_factory=list)
    # Mappings still Deleting that hold this identity: a create must wait until they are gone.
    wait_gone: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The SPEC's per-change JSON shape (requests stay internal)."""
        return {
            "action": self.action,
            "address": self.address,
            "function_arn": self.function_arn,
            "event_source": self.event_source,
            "uuid": self.uuid,
            "fields": [asdict(f) for f in self.fields],
        }


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    region: str | None = None
    account: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "changes": [c.to_json() for c in self.changes],
            "summary": self.summary(),
        }
