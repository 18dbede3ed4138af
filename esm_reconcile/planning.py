"""Spec + live state → a Plan per scope (region and credentials). The deciding is diff.diff's;
this gathers what it needs (the account guard, the live mappings, tags where managed, which new
mappings' functions exist) and runs the scopes of one run concurrently."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from .aws import AwsContext
from .diff import by_function, diff, present_by_source
from .errors import EsmError
from .live import LiveReader, orphaned, unqualified_function_arn
from .model import DesiredMapping, LiveMapping, ManagedFunction, Spec, parse_function_ref
from .ownership import Scope, apply_targets, check_one_owner, check_targets
from .plan import Plan


@dataclass
class ScopePlan:
    """One scope's plan with what it was made from (a saved plan records these).

    Beside them, what `esm status` reports from the same reads: `unmanaged`, the region's
    mappings of functions this scope's spec does not list (the rest of the List pages that
    `live` came from); `orphans`, when asked for (None otherwise), the region's mappings,
    managed or not, whose function no longer exists; `missing_functions`, when allowed (see
    plan_scope), the spec's functions that would get a mapping but do not exist."""

    scope: Scope
    aws: AwsContext
    plan: Plan
    live: list[LiveMapping]
    functions: list[ManagedFunction]
    unmanaged: list[LiveMapping] = field(default_factory=list)
    orphans: list[LiveMapping] | None = None
    missing_functions: list[str] = field(default_factory=list)


def check_account(spec: Spec, aws: AwsContext) -> None:
    """The spec's account_id guard, before any mapping is read."""
    account = aws.identity()["account"]
    for spec_file in spec.files:
        if spec_file.account_id and spec_file.account_id != account:
            raise EsmError(
                f"{spec_file.path}: account_id {spec_file.account_id} does not match the "
                f"credentials' account {account}; refusing to run"
            )


def managed_functions(
    spec: Spec, region: str, account: str, partition: str
) -> list[ManagedFunction]:
    """The spec's functions with the ARNs they resolve to in this region and account."""
    return [
        ManagedFunction(
            label=ref,
            arn=parse_function_ref(ref).arn(region, account, partition),
            mappings=mappings,
        )
        for ref, mappings in spec.functions.items()
    ]


def paired(
    functions: list[ManagedFunction], live: list[LiveMapping]
) -> Iterator[tuple[ManagedFunction, DesiredMapping, LiveMapping | None]]:
    """Each desired mapping with the live mapping diff compares it with (diff's own pairing,
    diff.present_by_source), None when diff would create it."""
    live_of = by_function(live)
    for function in functions:
        by_source = present_by_source(live_of.get(function.arn, []))
        for desired in function.mappings:
            matches = by_source.pop(desired.source, [])
            yield function, desired, matches[0] if matches else None


def mappings_with_managed_tags(
    functions: list[ManagedFunction], live: list[LiveMapping]
) -> list[LiveMapping]:
    """The live mappings whose tags plan reads: those a desired mapping with `tags` matches."""
    return [
        match
        for _function, desired, match in paired(functions, live)
        if match is not None and "tags" in desired.settings
    ]


def derive_plan(
    functions: list[ManagedFunction], live: list[LiveMapping], targets: tuple[str, ...] = ()
) -> Plan:
    """Spec and live state → the plan. `plan` and the check of a saved plan both derive it
    here, so a rule added here holds for saved plans too."""
    plan = diff(functions, live)
    if targets:
        apply_targets(plan, targets)
    return plan


def plan_scope(
    scope: Scope,
    aws: AwsContext,
    targets: tuple[str, ...] = (),
    *,
    orphans: bool = False,
    allow_missing_functions: bool = False,
) -> ScopePlan:
    """Read one scope's live state and plan it. `targets` were checked (check_targets).

    `orphans`: also read the region's functions (ListFunctions pages, only while a mapping's
    function is still unaccounted for) to find the mappings whose function is gone.
    `allow_missing_functions`: a function the plan would create a mapping for that does not
    exist is recorded in `missing_functions` instead of failing the plan (status reports it)."""
    spec = scope.spec
    check_account(spec, aws)
    reader = LiveReader(aws)
    identity = aws.identity()
    functions = managed_functions(spec, aws.region, identity["account"], identity["partition"])
    unmanaged: list[LiveMapping] = []
    live = reader.mappings({f.arn for f in functions}, others=unmanaged)

    # Tags have their own API: read them only for mappings whose spec manages tags.
    for mapping in mappings_with_managed_tags(functions, live):
        reader.read_tags(mapping)

    plan = derive_plan(functions, live, targets)
    plan.region = aws.region
    plan.account = identity["account"]

    labels: dict[str, list[str]] = {}  # ARN -> the labels naming it (one, unless refused)
    for function in functions:
        labels.setdefault(function.arn, []).append(function.label)
    creating = sorted(
        {
            label
            for c in plan.changes
            if c.create_request
            for label in labels.get(c.function_arn, ())
        }
    )
    missing = reader.missing_functions(creating)
    if missing and not allow_missing_functions:
        raise EsmError(
            "function does not exist in account "
            f"{plan.account} region {plan.region}: " + ", ".join(missing)
        )
    found_orphans = None
    if orphans:
        everything = live + unmanaged
        wanted = {unqualified_function_arn(m.function_arn) for m in everything}
        found_orphans = orphaned(everything, reader.existing_functions(wanted))
    return ScopePlan(scope, aws, plan, live, functions, unmanaged, found_orphans, missing)


def plan_scopes(
    scopes: list[Scope],
    contexts: list[AwsContext],
    targets: tuple[str, ...] = (),
    *,
    orphans: bool = False,
    allow_missing_functions: bool = False,
) -> list[ScopePlan]:
    """Plan every scope, concurrently: each has its own clients and rate limit.

    The one-owner check needs every scope's account (sts:GetCallerIdentity, one call each).
    Reading changes nothing, so no scope waits for the others' accounts before it reads: each
    reads as soon as its own is known, the check runs once the last one is, and a conflict is
    raised before any plan is returned. Errors come as they would one scope after another: the
    first scope (in order) that could not say who it is, else a one-owner conflict, else the
    first scope whose plan failed. `orphans` and `allow_missing_functions`: see plan_scope."""
    reading = {"orphans": orphans, "allow_missing_functions": allow_missing_functions}
    if targets:
        check_targets(Spec([f for s in scopes for f in s.spec.files]), targets)
    if len(scopes) == 1:
        check_one_owner([_resolved(scopes[0], contexts[0], contexts[0].identity())])
        return [plan_scope(scopes[0], contexts[0], targets, **reading)]

    identified: list[Future[dict[str, str]]] = [Future() for _ in scopes]
    failed = threading.Event()  # the run fails: scopes that have not begun reading don't

    def work(index: int) -> ScopePlan | None:
        try:
            identity = contexts[index].identity()
        except BaseException as exc:
            failed.set()
            identified[index].set_exception(exc)
            raise
        identified[index].set_result(identity)
        if failed.is_set():
            return None  # never returned: the run raises
        return plan_scope(scopes[index], contexts[index], targets, **reading)

    with ThreadPoolExecutor(max_workers=len(scopes), thread_name_prefix="esm-plan") as pool:
        futures = [pool.submit(work, index) for index in range(len(scopes))]
        try:
            check_one_owner(
                [
                    _resolved(scope, aws, known.result())
                    for scope, aws, known in zip(scopes, contexts, identified, strict=True)
                ]
            )
            planned = [future.result() for future in futures]
        except BaseException:
            failed.set()
            raise
    return [made for made in planned if made is not None]


def _resolved(
    scope: Scope, aws: AwsContext, identity: dict[str, str]
) -> tuple[Scope, str, str, str]:
    return scope, aws.region, identity["account"], identity["partition"]


def merge_plans(plans: list[Plan]) -> Plan:
    """One plan to show for several regions: changes in scope order, warnings named by region."""
    if len(plans) == 1:
        return plans[0]
    merged = Plan(region=None, account=None)
    for plan in plans:
        merged.changes.extend(plan.changes)
        merged.warnings.extend(f"{plan.region}: {w}" for w in plan.warnings)
    return merged
