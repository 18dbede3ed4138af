"""Guards for unattended runs: checks of whole plans that refuse them before anything is applied.
Pure: no AWS, no I/O, no clock.

- `prevent_destroy: true` on a mapping (spec): a plan that deletes or replaces that mapping
  fails, naming the mapping and the fields that force the replacement. `plan` and `apply` both
  refuse it (apply before changing anything, `apply PLANFILE` on the re-derived plans).
- `--max-destroy N` (apply; ESM_APPLY_MAX_DESTROY): a plan whose deletes plus replaces exceed
  N is refused, changing nothing; the message gives both numbers.

What prevent_destroy covers. esm keeps no state: the spec entry is the only place the flag
lives, so it guards what its entry still describes. That is
  - a replace (the entry's mapping is re-created: a create-only field changed, or a change AWS
    can only make by re-creating), and
  - a delete of a duplicate: a second live mapping with the entry's identity (function and
    source), which AWS normally refuses but a race can leave; which of the two holds the read
    position the flag protects is unknowable, so neither is deleted unasked.
Removing the entry from the spec (or the function's whole list, or changing its source, which
makes it another mapping) removes the guard with it, as removing a resource block does in
Terraform: the delete is planned, and reviewing the spec change is what guards it. For
unattended runs, `--max-destroy` bounds such deletes (`--max-destroy 0`: none at all). A Kafka
replace that keeps its consumer group (diff.py) still counts as a replace: the mapping is
deleted, and prevent_destroy means "never", as in Terraform.

Wiring: `check(plans, max_destroy)` raises GuardError (an EsmError) whose message has one line
per problem; call it on the plans that would be shown or applied (after --target), before
rendering an `--out` file or applying anything; `plan` passes no limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .errors import EsmError, one_line
from .plan import Change, FieldChange, Plan

DESTROYING = ("delete", "replace")


class GuardError(EsmError):
    """A plan a guard refuses; `problems` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _plans(plans: Plan | Iterable[Plan]) -> list[Plan]:
    return [plans] if isinstance(plans, Plan) else list(plans)


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return one_line(text)


def _forcing(fields: list[FieldChange]) -> str:
    forcing = [f for f in fields if f.forces_replacement]
    if not forcing:  # every replace diff makes has one; a plan from elsewhere may not
        return "it is to be replaced"
    named = [
        f"{f.name} ({_value(f.before)} -> {_value(f.after)})"
        if f.before is not None or f.after is not None
        else f.name
        for f in forcing
    ]
    verb = "forces" if len(named) == 1 else "force"
    return f"{', '.join(named)} {verb} replacement"


def _destroy_error(change: Change) -> str:
    where = one_line(change.address)
    if change.action == "replace":
        return (
            f"{where}: prevent_destroy is set, but the plan replaces mapping {change.uuid}: "
            f"{_forcing(change.fields)}; set the spec to the live value, or remove "
            "prevent_destroy to allow the replace"
        )
    return (
        f"{where}: prevent_destroy is set, but the plan deletes mapping {change.uuid}, a second "
        "live mapping with this function and source; delete the one to drop by hand, or remove "
        "prevent_destroy to allow the delete"
    )


def destroy_guard_errors(plans: Plan | Iterable[Plan]) -> list[str]:
    """One line per change that deletes or replaces a mapping whose spec entry says
    `prevent_destroy: true`, naming the mapping and what forces the replacement; [] when none.
    With several plans (regions, accounts), each line starts with its plan's region."""
    found = _plans(plans)
    errors: list[str] = []
    for plan in found:
        prefix = f"{plan.region}: " if plan.region and len(found) > 1 else ""
        errors.extend(
            prefix + _destroy_error(change)
            for change in plan.changes
            if change.prevent_destroy and change.action in DESTROYING
        )
    return errors


def destroy_counts(plans: Plan | Iterable[Plan]) -> dict[str, int]:
    """How many mappings the plans delete and replace: {"delete": n, "replace": m}."""
    counts = dict.fromkeys(DESTROYING, 0)
    for plan in _plans(plans):
        for change in plan.changes:
            if change.action in counts:
                counts[change.action] += 1
    return counts


def max_destroy_error(plans: Plan | Iterable[Plan], limit: int | None) -> str | None:
    """The refusal when the plans delete or replace more than `limit` mappings (deletes and
    replaces together, across every plan of the run); None within the limit or without one."""
    if limit is None:
        return None
    if limit < 0:
        raise ValueError(f"max_destroy must be 0 or more, not {limit}")
    counts = destroy_counts(plans)
    total = sum(counts.values())
    if total <= limit:
        return None
    noun = "mapping" if total == 1 else "mappings"
    return (
        f"refusing to apply: the plan deletes or replaces {total} {noun} ({counts['delete']} "
        f"to delete, {counts['replace']} to replace), more than --max-destroy {limit} allows; "
        "nothing was changed"
    )


def check(plans: Plan | Iterable[Plan], max_destroy: int | None = None) -> None:
    """Raise GuardError when a guard refuses the plans: prevent_destroy (always), and the
    --max-destroy limit when one is given (apply). Call it before anything is applied."""
    if max_destroy is not None and max_destroy < 0:
        raise GuardError([f"--max-destroy must be 0 or more, not {max_destroy}"])
    found = _plans(plans)
    problems = destroy_guard_errors(found)
    too_many = max_destroy_error(found, max_destroy)
    if too_many:
        problems.append(too_many)
    if problems:
        raise GuardError(problems)
