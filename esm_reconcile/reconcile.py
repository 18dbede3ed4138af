"""Glue for `plan`: spec + live state → Plan. The deciding is diff.diff's; this only gathers."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from . import saved_plan
from .aws import AwsContext, describe_error, error_code
from .diff import diff
from .errors import EsmError, SpecError, SpecErrors
from .live import LiveReader
from .loader import LoadedFile, load_text
from .model import LiveMapping, ManagedFunction, function_of_address, parse_function_ref
from .plan import Plan
from .saved_plan import SavedScopePlan
from .validate import Spec, SpecFile, region_errors, spec_from_loaded


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


def mappings_with_managed_tags(
    functions: list[ManagedFunction], live: list[LiveMapping]
) -> list[LiveMapping]:
    """The live mappings whose tags plan reads: those a desired mapping with `tags` matches."""
    live_by_key = {(m.function_arn, m.source): m for m in live if m.state != "Deleting"}
    found: list[LiveMapping] = []
    for function in functions:
        for desired in function.mappings:
            match = live_by_key.get((function.arn, desired.source))
            if match is not None and "tags" in desired.settings:
                found.append(match)
    return found


def derive_plan(
    spec: Spec,
    functions: list[ManagedFunction],
    live: list[LiveMapping],
    targets: tuple[str, ...] = (),
    checked: bool = False,
) -> Plan:
    """Spec and live state → the plan. `plan` and the check of a saved plan both derive it
    here, so a rule added here holds for saved plans too."""
    plan = diff(functions, live)
    if targets:
        apply_targets(plan, spec, targets, checked)
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
    identity = aws.identity()
    functions = managed_functions(spec, aws.region, identity["account"], identity["partition"])
    live = reader.mappings({f.arn for f in functions})

    # Tags have their own API: read them only for mappings whose spec manages tags.
    for mapping in mappings_with_managed_tags(functions, live):
        reader.read_tags(mapping)

    plan = derive_plan(spec, functions, live, targets, checked)
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
    misplaced: list[SpecError] = []
    for spec_file in spec.files:
        file_profile = spec_file.profile or profile
        file_region = spec_file.region or region or region_of_profile(file_profile)
        grouped.setdefault((file_region, file_profile), []).append(spec_file)
        if not spec_file.region:
            # Offline validation could not know where this file goes; now it is known.
            misplaced += region_errors(spec_file, file_region)
    if misplaced:
        raise SpecErrors(misplaced)
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


# -- saved plans: written with what they were derived from, checked by deriving again ---------


def saved_plan_text(
    out: str,
    scopes: list[Scope],
    contexts: list[AwsContext],
    planned: list[tuple[Plan, list[LiveMapping], dict[str, str]]],
    targets: tuple[str, ...],
) -> str:
    """What `plan --out` writes: each scope's plan with its spec files' text and every live
    mapping of its managed functions. Uses the identities looked up while planning (no AWS
    call). Refuses (EsmError) to write a plan that `apply` would refuse."""
    parts = []
    for scope, aws, (plan, live, _managed) in zip(scopes, contexts, planned, strict=True):
        identity = aws.identity()
        parts.append(
            saved_plan.record(
                spec_files=[(f.path, _spec_text(out, f.path)) for f in scope.spec.files],
                region=aws.region,
                account=identity["account"],
                partition=identity["partition"],
                # Only a profile the spec names is part of the plan; --profile is the runner's.
                profile=next((f.profile for f in scope.spec.files if f.profile), None),
                targets=targets,
                observed=live,
                changes=plan.changes,
            )
        )
    text = saved_plan.dumps(parts)
    # Check the file as apply will, now: a spec file edited while planning would otherwise
    # give a saved plan that no apply accepts.
    try:
        rederived_plans(out, saved_plan.parse(text.encode("utf-8"), out))
    except EsmError as exc:
        raise EsmError(f"cannot save the plan: {exc}") from None
    return text


def _spec_text(out: str, path: str) -> str:
    # The text the spec was loaded from (read_text translates newlines as load_file does).
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EsmError(f"cannot save the plan to {out}: cannot read {path}: {exc}") from None


def _edited(source: str, where: str, what: str) -> EsmError:
    return EsmError(
        f"{source}: the saved plan is not what esm plan writes (edited or damaged?); "
        f"nothing was changed; plan again: {where}: {what}"
    )


def rederived_plans(source: str, saved: list[SavedScopePlan]) -> list[Plan]:
    """Each part's plan derived again, offline, from the spec and live state it recorded, as
    `plan` derives it; EsmError (one line) when a part's stored changes differ in any field,
    or when the parts together are not what one `plan` run writes. No AWS call (so `esm show`
    can render a saved plan as apply would carry it out)."""
    return [plan for plan, _, _ in _rederive_all(source, saved)]


def _rederive_all(
    source: str, saved: list[SavedScopePlan]
) -> list[tuple[Plan, list[ManagedFunction], Spec]]:
    prefixes = [f"plans[{i}]." if len(saved) > 1 else "" for i in range(len(saved))]
    if len({tuple(part.targets) for part in saved}) > 1:
        raise _edited(source, "plans[*].targets", "the parts have different targets")
    derived = [
        _rederived(source, part, prefix) for part, prefix in zip(saved, prefixes, strict=True)
    ]
    # One owner per function across the parts, as plan_scopes checks (check_one_owner).
    owners: dict[str, int] = {}
    for index, (_plan, functions, _spec) in enumerate(derived):
        for function in functions:
            first = owners.setdefault(function.arn, index)
            if first != index:
                raise _edited(
                    source,
                    f"plans[{index}].spec_files",
                    f"function {function.arn} is also managed in plans[{first}]",
                )
    targets = tuple(saved[0].targets)
    if targets:
        try:
            check_targets(Spec([f for _, _, spec in derived for f in spec.files]), targets)
        except EsmError as exc:
            raise _edited(source, f"{prefixes[0]}targets", str(exc)) from None
    return derived


def _recorded_spec(source: str, part: SavedScopePlan, prefix: str) -> Spec:
    """The recorded spec files, loaded and validated as `esm validate` would."""
    if len({f.path for f in part.spec_files}) != len(part.spec_files):
        raise _edited(source, f"{prefix}spec_files", "one file is recorded twice")
    loaded: list[LoadedFile] = []
    try:
        for recorded in part.spec_files:
            loaded.append(load_text(recorded.path, recorded.text))
        return spec_from_loaded(loaded)
    except SpecErrors as exc:
        more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        first = " ".join(str(exc.errors[0]).split())
        raise EsmError(
            f"{source}: the spec recorded in the saved plan is not valid (edited, or made by "
            f"another esm?); nothing was changed; plan again: {first}{more}"
        ) from None


def _check_recorded_scope(source: str, part: SavedScopePlan, spec: Spec, prefix: str) -> None:
    """The spec's own region, account_id and profile agree with what the plan recorded."""
    for index, spec_file in enumerate(spec.files):
        where = f"{prefix}spec_files[{index}]"
        if spec_file.region and spec_file.region != part.region:
            raise _edited(
                source,
                where,
                f"the spec says region {spec_file.region}, the plan says {part.region}",
            )
        if spec_file.account_id and spec_file.account_id != part.account:
            raise _edited(
                source,
                where,
                f"the spec says account_id {spec_file.account_id}, the plan says {part.account}",
            )
    profile = next((f.profile for f in spec.files if f.profile), None)
    if profile != part.profile:
        raise _edited(
            source,
            f"{prefix}profile",
            f"the plan says {saved_plan.shown(part.profile)}, the spec {saved_plan.shown(profile)}",
        )


def _check_observation(
    source: str,
    part: SavedScopePlan,
    functions: list[ManagedFunction],
    live: list[LiveMapping],
    prefix: str,
) -> None:
    """The observation holds what `plan` records: every live mapping of the managed functions
    once, nothing else, and tags exactly where plan reads them."""
    arns = {f.arn for f in functions}
    seen: set[str] = set()
    for index, observed in enumerate(part.observed_mappings):
        where = f"{prefix}observed_mappings[{index}]"
        if observed.uuid in seen:
            raise _edited(source, f"{where}.uuid", f"{observed.uuid} is recorded twice")
        seen.add(observed.uuid)
        if observed.function_arn not in arns:
            raise _edited(
                source,
                f"{where}.function_arn",
                f"{saved_plan.shown(observed.function_arn)} is not a function the spec "
                f"manages in account {part.account} region {part.region}",
            )
    tags_read = {id(m) for m in mappings_with_managed_tags(functions, live)}
    for index, mapping in enumerate(live):
        if (mapping.tags is not None) != (id(mapping) in tags_read):
            raise _edited(
                source,
                f"{prefix}observed_mappings[{index}].tags",
                "recorded where the spec does not manage tags"
                if mapping.tags is not None
                else "not recorded, but the spec manages this mapping's tags",
            )


def _rederived(
    source: str, part: SavedScopePlan, prefix: str
) -> tuple[Plan, list[ManagedFunction], Spec]:
    spec = _recorded_spec(source, part, prefix)
    _check_recorded_scope(source, part, spec, prefix)
    functions = managed_functions(spec, part.region, part.account, part.partition)
    live = [observed.to_live() for observed in part.observed_mappings]
    _check_observation(source, part, functions, live, prefix)
    try:
        plan = derive_plan(spec, functions, live, tuple(part.targets), checked=True)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        # diff reads settings in the shapes LiveMapping.from_response gives; esm never writes
        # others (saved_plan_text checks each file it writes), so these were edited.
        raise _edited(
            source, f"{prefix}observed_mappings", f"settings not in the form esm records ({exc})"
        ) from None
    plan.region, plan.account = part.region, part.account
    difference = saved_plan.changes_difference(part.changes, plan.changes)
    if difference:
        raise EsmError(
            f"{source}: the saved plan's changes are not what its spec and observed state give "
            f"(edited or damaged?); nothing was changed; plan again: {prefix}{difference}"
        )
    return plan, functions, spec


def verified_plans(
    source: str,
    saved: list[SavedScopePlan],
    connect: Callable[[SavedScopePlan], AwsContext],
) -> list[tuple[Plan, AwsContext]]:
    """What to apply for a saved plan file (`source`), each part with its credentials: the
    plans derived again from what the file recorded, refused (EsmError) when its stored changes
    differ; only then `connect` each part and check it is for the credentials' account and
    region, and that no managed mapping moved since. All parts or none."""
    derived = _rederive_all(source, saved)
    contexts = [connect(part) for part in saved]
    elsewhere: list[str] = []
    reasons: list[str] = []
    for part, aws, (_plan, functions, _spec) in zip(saved, contexts, derived, strict=True):
        prefix = f"{part.name}: " if len(saved) > 1 else ""
        identity = aws.identity()
        here = (identity["account"], aws.region, identity["partition"])
        if here != (part.account, part.region, part.partition):
            elsewhere.append(
                f"{prefix}the plan was made for account {part.account} region {part.region}, "
                f"these credentials are account {identity['account']} region {aws.region}"
                + (f" (partition {identity['partition']})" if here[2] != part.partition else "")
            )
            continue
        reasons += [prefix + reason for reason in _moved_since(part, functions, aws)]
    if elsewhere:
        raise EsmError(f"{source}: nothing was changed: " + "; ".join(elsewhere))
    if reasons:
        raise EsmError(
            f"{source} is stale, nothing was changed; plan again. Changed outside esm "
            "since the plan was made:\n  " + "\n  ".join(reasons)
        )
    return [(plan, aws) for (plan, _, _), aws in zip(derived, contexts, strict=True)]


def _moved_since(
    part: SavedScopePlan, functions: list[ManagedFunction], aws: AwsContext
) -> list[str]:
    """Read the managed functions' mappings again (tags where the plan read them); how they
    differ from what the plan recorded."""
    reader = LiveReader(aws)
    live = reader.mappings({f.arn for f in functions})
    recorded = {m.uuid: m for m in part.observed_mappings}
    for mapping in live:
        then = recorded.get(mapping.uuid)
        if then is not None and then.tags is not None and mapping.state != "Deleting":
            reader.read_tags(mapping)
    reasons = saved_plan.moved(part.observed_mappings, live)
    # A mapping recorded as being deleted is one a create waits for. If it is not among the
    # managed functions' mappings now, it must be gone, not another function's.
    listed = {m.uuid for m in live}
    for then in part.observed_mappings:
        if then.state == "Deleting" and then.uuid not in listed:
            found = _mapping_if_any(aws, then.uuid)
            if found is not None:
                reasons.append(
                    f"mapping {then.uuid}: was being deleted from {then.function_arn}; now it "
                    f"is a mapping of {found.get('FunctionArn')} ({found.get('State')})"
                )
    return reasons


def _mapping_if_any(aws: AwsContext, uuid: str) -> dict | None:
    try:
        return aws.lambda_client.get_event_source_mapping(UUID=uuid)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise describe_error(f"mapping {uuid}", exc) from None
    except BotoCoreError as exc:
        raise describe_error(f"mapping {uuid}", exc) from None
