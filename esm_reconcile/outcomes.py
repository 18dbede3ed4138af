"""What became of the changes of an apply: one Outcome per change, the ApplyResult of a run, and
the end-of-apply report in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .plan import FORMAT_VERSION, Change, Plan
from .render import json_text, terminal_safe


@dataclass
class Outcome:
    """What became of one change. "done": AWS accepted every call the change needs (its mapping
    exists, changed, or is being deleted), even if apply stopped watching before it settled;
    "failed": a call was refused or could not be made; "skipped": not (fully) carried out
    because apply was interrupted."""

    change: Change
    status: str  # "done", "failed", "skipped"
    message: str = ""
    step: str = ""  # for a replace: which half failed
    created_uuid: str | None = None  # the plan stays as it was made; new UUIDs land here
    # A create met ResourceConflictException and made the mapping already there the desired one.
    adopted: bool = False
    # Done, but still in transition (Creating, Updating, Deleting...) when apply stopped watching
    # it: interrupted, timed out, or its state could not be read.
    settling: bool = False

    @property
    def uuid(self) -> str | None:
        """The mapping's UUID after the change (the new one for a create or replace)."""
        return (
            self.created_uuid if self.change.action in ("create", "replace") else self.change.uuid
        )

    def to_json(self) -> dict[str, Any]:
        """The SPEC's per-outcome shape, plus `adopted` and `settling`."""
        return {
            "address": self.change.address,
            "action": self.change.action,
            "status": self.status,
            "message": self.message,
            "uuid": self.uuid,
            "adopted": self.adopted,
            "settling": self.settling,
        }


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def settling(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "done" and o.settling]

    @property
    def adopted(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "done" and o.adopted]

    @property
    def ok(self) -> bool:
        """Everything done and settled: an apply that stopped watching a mapping mid-transition
        has not shown that it converged."""
        return not (
            self.interrupted
            or self.by_status("failed")
            or self.by_status("skipped")
            or self.settling
        )

    @property
    def changed(self) -> bool:
        return bool(self.by_status("done"))

    def summary(self) -> dict[str, int]:
        """Counts of what AWS accepted, by action; adopted mappings are counted apart (not as
        created or replaced); `settling` counts the done ones still in transition."""
        done = self.by_status("done")
        made = [o for o in done if not o.adopted]
        return {
            "created": sum(o.change.action == "create" for o in made),
            "adopted": len(self.adopted),
            "updated": sum(o.change.action == "update" for o in done),
            "replaced": sum(o.change.action == "replace" for o in made),
            "deleted": sum(o.change.action == "delete" for o in done),
            "failed": len(self.by_status("failed")),
            "skipped": len(self.by_status("skipped")),
            "settling": len(self.settling),
        }


def apply_document(plan: Plan, result: ApplyResult) -> dict[str, Any]:
    """What `esm apply --format json` prints: the plan shown (SPEC plan object), what became of
    each change, and the counts. Each outcome also names its region and account (addresses of
    several regions can coincide)."""
    return {
        "format_version": FORMAT_VERSION,
        "plan": plan.to_json(),
        "outcomes": [
            {
                **outcome.to_json(),
                "region": outcome.change.region or plan.region,
                "account": outcome.change.account or plan.account,
            }
            for outcome in result.outcomes
        ],
        "summary": result.summary(),
    }


def apply_json(plan: Plan, result: ApplyResult) -> str:
    """`apply_document` as the one JSON document stdout gets (text as written, terminal-unsafe
    characters escaped, as the plan JSON is)."""
    return json_text(apply_document(plan, result))


def report_lines(result: ApplyResult) -> list[str]:
    """The end-of-apply report: counts, then what needs a reader's attention, change by change.
    Each line is one line, safe for a terminal: messages carry whatever an endpoint answered."""
    lines = [_headline(result)]
    for outcome in result.adopted:
        lines.append(f"  adopted: {outcome.change.address}: {outcome.message}")
    for outcome in result.settling:
        lines.append(
            f"  still settling: {outcome.change.address} ({outcome.step}): {outcome.message}"
        )
    for outcome in result.by_status("failed"):
        lines.append(f"  failed: {outcome.change.address} ({outcome.step}): {outcome.message}")
    for outcome in result.by_status("skipped"):
        lines.append(f"  not done: {outcome.change.address}: {outcome.message}")
    if result.interrupted:
        lines.append("Interrupted: re-run apply to converge.")
    elif result.settling:
        lines.append("Still settling: re-run apply (or plan) to see them settle and converge.")
    return [terminal_safe(line) for line in lines]


def _headline(result: ApplyResult) -> str:
    """The counts line ("Apply complete: 1 created, ... 0 deleted."), naming adopted and still
    settling mappings only when there are any."""
    counts = result.summary()
    head = f"Apply {'complete' if result.ok else 'incomplete'}: {counts['created']} created, "
    if counts["adopted"]:
        head += f"{counts['adopted']} adopted, "
    head += (
        f"{counts['updated']} updated, {counts['replaced']} replaced, {counts['deleted']} deleted"
    )
    if counts["settling"]:
        head += f" ({counts['settling']} still settling)"
    return head + "."
