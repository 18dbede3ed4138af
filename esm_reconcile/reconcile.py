"""Glue for `plan`: spec + live state → Plan. The deciding is diff.diff's; this only gathers."""

from __future__ import annotations

from typing import Any

from .aws import AwsContext
from .diff import ManagedFunction, diff, function_of_address
from .errors import EsmError
from .live import LiveReader
from .live_state import LiveMapping
from .plan import Plan
from .saved_plan import moved
from .validate import Spec


def check_account(spec: Spec, aws: AwsContext) -> None:
    """The spec's account_id guard, before any mapping is read."""
    account = aws.identity()["account"]
    for spec_file in spec.files:
        if spec_file.account_id and spec_file.account_id != account:
            raise EsmError(
                f"{spec_file.path}: account_id {spec_file.account_id} does not match the "
                f"credentials' account {account}; refusing to run"
            )


def apply_targets(plan: Plan, spec: Spec, targets: tuple[str, ...]) -> Plan:
    """Keep only the changes a --target names: a function as the spec names it, or an address."""
    unknown = [t for t in targets if function_of_address(t) not in spec.functions]
    if unknown:
        raise EsmError(
            "--target names no function of the spec: "
            + ", ".join(unknown)
            + " (use a function as the spec names it, or an address as the plan prints it)"
        )
    plan.changes = [
        c for c in plan.changes if c.address in targets or function_of_address(c.address) in targets
    ]
    plan.warnings.append(
        "targeting is in effect (" + ", ".join(targets) + "): other changes are not shown "
        "and will not be applied"
    )
    return plan


def make_plan(spec: Spec, aws: AwsContext, targets: tuple[str, ...] = ()) -> Plan:
    return plan_with_context(spec, aws, targets)[0]


def plan_with_context(
    spec: Spec, aws: AwsContext, targets: tuple[str, ...] = ()
) -> tuple[Plan, list[LiveMapping], dict[str, str]]:
    """The plan, the live mappings it was made from, and the managed functions (label → ARN)."""
    check_account(spec, aws)
    reader = LiveReader(aws)
    functions = [
        ManagedFunction(label=ref, arn=reader.function_arn(ref), mappings=mappings)
        for ref, mappings in spec.functions.items()
    ]
    live = reader.mappings({f.arn for f in functions})

    # Tags have their own API: read them only for mappings whose spec manages tags.
    live_by_key = {(m.function_arn, m.source): m for m in live if m.state != "Deleting"}
    for function in functions:
        for desired in function.mappings:
            match = live_by_key.get((function.arn, desired.source))
            if match is not None and "tags" in desired.settings:
                reader.read_tags(match)

    plan = diff(functions, live)
    if targets:
        apply_targets(plan, spec, targets)
    plan.region = aws.region
    plan.account = aws.identity()["account"]

    creating = sorted(
        {
            f.label
            for f in functions
            for c in plan.changes
            if c.create_request and c.function_arn == f.arn
        }
    )
    missing = reader.missing_functions(creating)
    if missing:
        raise EsmError(
            "function does not exist in account "
            f"{plan.account} region {plan.region}: " + ", ".join(missing)
        )
    return plan, live, {f.label: f.arn for f in functions}


def check_saved_plan(document: dict[str, Any], aws: AwsContext) -> list[str]:
    """Re-read what a saved plan saw; the differences (empty when nothing moved)."""
    account = aws.identity()["account"]
    if document.get("account") != account or document.get("region") != aws.region:
        return [
            f"the plan was made for account {document.get('account')} region "
            f"{document.get('region')}, these credentials are account {account} region {aws.region}"
        ]
    reader = LiveReader(aws)
    live = reader.mappings(set(document["managed_functions"].values()))
    for mapping in live:
        seen = document["observed_mappings"].get(mapping.uuid)
        if seen is not None and seen.get("tags") is not None:
            reader.read_tags(mapping)
    return moved(document, live)
