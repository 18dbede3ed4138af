"""Saved plans as untrusted input: written with what they were derived from, checked by
deriving them again.

`esm apply FILE` never carries out what the file says to do. It derives the plan again, offline,
from the spec text and the live state the file recorded, as `plan` derives it, and refuses the
file when its stored changes differ in any field; then it checks that the credentials are for
the recorded account and region and that no managed mapping moved since. So applying a saved
plan never does anything that `esm apply -f` on the recorded spec would not do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import rules, saved_plan
from .aws import AwsContext
from .errors import EsmError, SpecErrors
from .live import LiveReader
from .loader import LoadedFile, load_text
from .model import LiveMapping, ManagedFunction, Spec
from .ownership import check_targets
from .plan import Change, Plan
from .planning import ScopePlan, derive_plan, managed_functions, mappings_with_managed_tags
from .saved_plan import (
    ObservedMapping,
    SavedChange,
    SavedScopePlan,
    saved_change,
    shown,
    with_article,
)
from .validate import spec_from_loaded


def saved_plan_text(out: str, planned: list[ScopePlan], targets: tuple[str, ...]) -> str:
    """What `plan --out` writes: each scope's plan with its spec files' text and every live
    mapping of its managed functions. Uses the identities looked up while planning (no AWS
    call). Refuses (EsmError) to write a plan that `apply` would refuse."""
    parts = []
    for scope_plan in planned:
        scope, aws, plan, live = scope_plan.scope, scope_plan.aws, scope_plan.plan, scope_plan.live
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
    try:
        _check_observation(source, part, functions, live, prefix)
        plan = derive_plan(functions, live, tuple(part.targets))
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        # diff reads settings in the shapes LiveMapping.from_response gives; esm never writes
        # others (saved_plan_text checks each file it writes), so these were edited.
        raise _edited(
            source, f"{prefix}observed_mappings", f"settings not in the form esm records ({exc})"
        ) from None
    plan.region, plan.account = part.region, part.account
    difference = changes_difference(part.changes, plan.changes)
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
    reasons = moved(part.observed_mappings, live)
    # A mapping recorded as being deleted is one a create waits for. If it is not among the
    # managed functions' mappings now, it must be gone, not another function's.
    listed = {m.uuid for m in live}
    for then in part.observed_mappings:
        if then.state == "Deleting" and then.uuid not in listed:
            found = reader.mapping_if_any(then.uuid)
            if found is not None:
                reasons.append(
                    f"mapping {then.uuid}: was being deleted from {then.function_arn}; now it "
                    f"is a mapping of {found.get('FunctionArn')} ({found.get('State')})"
                )
    return reasons


# -- comparing ------------------------------------------------------------------------------

_ABSENT = object()


def _first_difference(stored: Any, derived: Any, path: str) -> tuple[str, Any, Any] | None:
    """Where two JSON values first differ, types included (true is not 1, 1 is not 1.0)."""
    if type(stored) is not type(derived):
        return path, stored, derived
    if isinstance(stored, dict):
        for key in sorted(stored.keys() | derived.keys()):
            if key not in stored or key not in derived:
                return f"{path}.{key}", stored.get(key, _ABSENT), derived.get(key, _ABSENT)
            found = _first_difference(stored[key], derived[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(stored, list):
        for index in range(max(len(stored), len(derived))):
            if index >= len(stored) or index >= len(derived):
                return (
                    f"{path}[{index}]",
                    stored[index] if index < len(stored) else _ABSENT,
                    derived[index] if index < len(derived) else _ABSENT,
                )
            found = _first_difference(stored[index], derived[index], f"{path}[{index}]")
            if found:
                return found
        return None
    return None if stored == derived else (path, stored, derived)


def _described(value: Any) -> str:
    return "nothing" if value is _ABSENT else shown(value)


def changes_difference(stored: list[SavedChange], derived: list[Change]) -> str | None:
    """The first way the stored changes differ from the re-derived ones, in words; None when
    they are equal in every field (requests, uuid, tag changes and wait_gone included)."""
    stored_json = [c.model_dump(mode="json") for c in stored]
    derived_json = [saved_change(c) for c in derived]
    for index in range(max(len(stored_json), len(derived_json))):
        if index >= len(derived_json):
            extra = stored_json[index]
            return (
                f"changes[{index}]: the file has {with_article(extra['action'])} of "
                f"{shown(extra['address'])} that the spec and observed state do not give"
            )
        if index >= len(stored_json):
            missing = derived_json[index]
            return (
                f"changes[{index}]: the spec and observed state give {with_article(missing['action'])} of "
                f"{missing['address']} that the file does not have"
            )
        found = _first_difference(stored_json[index], derived_json[index], "")
        if found:
            path, in_file, given = found
            return (
                f"changes[{index}] ({derived_json[index]['address']}){path}: the file says "
                f"{_described(in_file)}, the spec and observed state give {_described(given)}"
            )
    return None


def _enabled(state: str) -> bool | None:
    if state == "Updating":
        return None  # unknowable mid-update; see diff.compare
    return state in rules.ENABLED_STATES


def moved(observed: list[ObservedMapping], live: list[LiveMapping]) -> list[str]:
    """How the live mappings of the managed functions differ from what the saved plan observed;
    empty when nothing moved. Mappings being deleted may finish meanwhile: not compared."""
    then = {m.uuid: m for m in observed if m.state != "Deleting"}
    now = {m.uuid: ObservedMapping.of(m) for m in live if m.state != "Deleting"}
    reasons: list[str] = []
    for uuid in sorted(now.keys() - then.keys()):
        reasons.append(f"{now[uuid].function_arn}: mapping {uuid} appeared since the plan was made")
    for uuid in sorted(then.keys() - now.keys()):
        reasons.append(f"{then[uuid].function_arn}: mapping {uuid} is gone since the plan was made")
    for uuid in sorted(then.keys() & now.keys()):
        before, after = then[uuid], now[uuid]
        if before.function_arn != after.function_arn:
            reasons.append(
                f"mapping {uuid}: function changed from {before.function_arn} to "
                f"{after.function_arn}"
            )
        if before.esm_arn != after.esm_arn:
            reasons.append(
                f"mapping {uuid}: ARN changed from {_described(before.esm_arn)} to "
                f"{_described(after.esm_arn)}"
            )
        enabled_then, enabled_now = _enabled(before.state), _enabled(after.state)
        if None not in (enabled_then, enabled_now) and enabled_then != enabled_now:
            reasons.append(f"mapping {uuid}: enabled changed from {enabled_then} to {enabled_now}")
        if before.tags is not None and before.tags != after.tags:
            reasons.append(
                f"mapping {uuid}: tags changed from {shown(before.tags)} to {shown(after.tags)}"
            )
        for field in sorted(before.settings.keys() | after.settings.keys()):
            was, now_is = before.settings.get(field), after.settings.get(field)
            if _first_difference(was, now_is, "") is not None:
                reasons.append(
                    f"mapping {uuid}: {field} changed from {shown(was)} to {shown(now_is)}"
                )
    return reasons
