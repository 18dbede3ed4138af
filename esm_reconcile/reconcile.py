"""Glue for `plan`: spec + live state → Plan. The deciding is diff.diff's; this only gathers."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .aws import AwsContext
from .diff import ManagedFunction, diff, function_of_address
from .errors import EsmError
from .functions import parse_function_ref
from .live import LiveReader
from .live_state import LiveMapping
from .plan import Plan
from .saved_plan import moved
from .validate import Spec, SpecFile


def check_account(spec: Spec, aws: AwsContext) -> None:
    """The spec's account_id guard, before any mapping is read."""
    account = aws.identity()["account"]
    for spec_file in spec.files:
        if spec_file.account_id and spec_file.account_id != account:
            raise EsmError(
                f"{spec_file.path}: account_id {spec_file.account_id} does not match the "
                f"credentials' account {account}; refusing to run"
            )


def check_targets(spec: Spec, targets: tuple[str, ...]) -> None:
    unknown = [t for t in targets if function_of_address(t) not in spec.functions]
    if unknown:
        raise EsmError(
            "--target names no function of the spec: "
            + ", ".join(unknown)
            + " (use a function as the spec names it, or an address as the plan prints it)"
        )


def apply_targets(plan: Plan, spec: Spec, targets: tuple[str, ...], checked: bool = False) -> Plan:
    """Keep only the changes a --target names: a function as the spec names it, or an address."""
    if not checked:
        check_targets(spec, targets)
    plan.changes = [
        c for c in plan.changes if c.address in targets or function_of_address(c.address) in targets
    ]
    plan.warnings.append(
        "targeting is in effect (" + ", ".join(targets) + "): other changes are not shown "
        "and will not be applied"
    )
    return plan


def make_plan(
    spec: Spec, aws: AwsContext, targets: tuple[str, ...] = (), checked: bool = False
) -> Plan:
    return plan_with_context(spec, aws, targets, checked)[0]


def plan_with_context(
    spec: Spec, aws: AwsContext, targets: tuple[str, ...] = (), checked: bool = False
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
        apply_targets(plan, spec, targets, checked)
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


# -- several regions or accounts in one run ---------------------------------------------------


@dataclass
class Scope:
    """The files of one run that go to one region with one set of credentials."""

    region: str | None  # None: boto3 finds none; connect() says so
    profile: str | None
    spec: Spec

    @property
    def name(self) -> str:
        return (self.region or "(no region)") + (
            f" (profile {self.profile})" if self.profile else ""
        )


def split_by_scope(
    spec: Spec,
    region: str | None,
    profile: str | None,
    region_of_profile: Callable[[str | None], str | None],
) -> list[Scope]:
    """Group files by where they go: a file's own region and profile, else the command line's,
    else the AWS config's (`region_of_profile`, no API call)."""
    grouped: dict[tuple[str | None, str | None], list[SpecFile]] = {}
    for spec_file in spec.files:
        file_profile = spec_file.profile or profile
        file_region = spec_file.region or region or region_of_profile(file_profile)
        grouped.setdefault((file_region, file_profile), []).append(spec_file)
    scopes = [Scope(r, p, Spec(files)) for (r, p), files in grouped.items()]
    _check_owners(scopes)
    return scopes


def _check_owners(scopes: list[Scope]) -> None:
    """Two files of one region (once regions are resolved) managing one function would fight."""
    owners: dict[tuple[str | None, str | None, str], str] = {}
    for scope in scopes:
        for spec_file in scope.spec.files:
            for function in spec_file.functions:
                key = (scope.region, scope.profile, function)
                first = owners.setdefault(key, spec_file.path)
                if first != spec_file.path:
                    raise EsmError(
                        f"{spec_file.path}: function {function} in {scope.name} is also managed "
                        f"by {first}; one file must own it"
                    )


def check_one_owner(scopes: list[Scope], contexts: list[AwsContext]) -> None:
    """One owner per function, by the ARN it resolves to: `orders` and its full ARN are one
    function, and two profiles may reach one account. Two owners would delete each other's
    mappings on every apply."""
    owners: dict[str, tuple[str, str]] = {}  # function ARN -> (label, where)
    for scope, aws in zip(scopes, contexts, strict=True):
        identity = aws.identity()
        for spec_file in scope.spec.files:
            for label in spec_file.functions:
                arn = parse_function_ref(label).arn(
                    aws.region, identity["account"], identity["partition"]
                )
                where = f"{spec_file.path} ({scope.name})"
                first = owners.setdefault(arn, (label, where))
                if first != (label, where):
                    raise EsmError(
                        f"function {arn} is managed as {first[0]} in {first[1]} and as {label} "
                        f"in {where}; one file must own it, under one name"
                    )


def plan_scopes(
    scopes: list[Scope], contexts: list[AwsContext], targets: tuple[str, ...] = ()
) -> list[Plan]:
    return [plan for plan, _, _ in plan_scopes_with_context(scopes, contexts, targets)]


def plan_scopes_with_context(
    scopes: list[Scope], contexts: list[AwsContext], targets: tuple[str, ...] = ()
) -> list[tuple[Plan, list[LiveMapping], dict[str, str]]]:
    """Plan every scope, concurrently: each has its own clients and rate limit."""
    if targets:
        check_targets(Spec([f for s in scopes for f in s.spec.files]), targets)
    check_one_owner(scopes, contexts)
    if len(scopes) == 1:
        return [plan_with_context(scopes[0].spec, contexts[0], targets, checked=True)]
    with ThreadPoolExecutor(max_workers=len(scopes), thread_name_prefix="esm-plan") as pool:
        futures = [
            pool.submit(plan_with_context, scope.spec, aws, targets, True)
            for scope, aws in zip(scopes, contexts, strict=True)
        ]
        return [f.result() for f in futures]


def merge_plans(plans: list[Plan]) -> Plan:
    """One plan to show for several regions: changes in scope order, warnings named by region."""
    if len(plans) == 1:
        return plans[0]
    merged = Plan(region=None, account=None)
    for plan in plans:
        merged.changes.extend(plan.changes)
        merged.warnings.extend(f"{plan.region}: {w}" for w in plan.warnings)
    return merged
