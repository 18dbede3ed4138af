"""The plan: plain data that renderers show and apply executes (so what is shown is what is done)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .model import function_scope

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
    # The spec entry of this mapping says `prevent_destroy: true`: a plan that deletes or
    # replaces it must fail (guards.destroy_guard_errors). Internal, like the requests.
    prevent_destroy: bool = False

    @property
    def region(self) -> str | None:
        """The region the change is made in: its function's (a mapping lives in its function's
        region and account). Derived, not stored, so merged plans and saved plans keep it."""
        return function_scope(self.function_arn)[0]

    @property
    def account(self) -> str | None:
        """The account the change is made in: its function's."""
        return function_scope(self.function_arn)[1]

    def to_json(self, region: str | None = None, account: str | None = None) -> dict[str, Any]:
        """The SPEC's per-change JSON shape (requests stay internal). `region` and `account`
        stand in when the function ARN does not name them (the plan's own scope)."""
        return {
            "action": self.action,
            "address": self.address,
            "function_arn": self.function_arn,
            "event_source": self.event_source,
            "uuid": self.uuid,
            "fields": [asdict(f) for f in self.fields],
            "region": self.region or region,
            "account": self.account or account,
        }


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    region: str | None = None
    account: str | None = None
    warnings: list[str] = field(default_factory=list)
    # (region, account) of every scope a merged plan covers, changes or not (merge_plans sets
    # it); empty: this plan's own region and account, else its changes' (`scopes_covered`).
    scopes: list[tuple[str | None, str | None]] = field(default_factory=list)

    def scopes_covered(self) -> list[tuple[str | None, str | None]]:
        """The (region, account) pairs this plan is for, in order, each once: `scopes` when
        set (a merged plan), else the plan's own, else those its changes name."""
        if self.scopes:
            found = list(self.scopes)
        elif self.region or self.account:
            found = [(self.region, self.account)]
        else:
            found = [(c.region, c.account) for c in self.changes if c.region or c.account]
        return list(dict.fromkeys(found))

    def all_warnings(self) -> list[str]:
        """The plan's warnings (targeting, unhealthy mappings...), then each change's (read
        positions lost...) named by its address, and by its region when the plan has several."""
        several = len(self.scopes_covered()) > 1
        out = list(self.warnings)
        for change in self.changes:
            where = f"{change.region}: " if several and change.region else ""
            out += [f"{where}{change.address}: {warning}" for warning in change.warnings]
        return out

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        """The SPEC's plan object, `warnings` always there (an empty list when there are none),
        so that a reader need not test for the key."""
        return {
            "format_version": FORMAT_VERSION,
            "changes": [c.to_json(self.region, self.account) for c in self.changes],
            "summary": self.summary(),
            "warnings": self.all_warnings(),
        }
