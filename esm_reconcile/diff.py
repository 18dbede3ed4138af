"""desired × live → Plan. A pure function: no AWS, no I/O, no clock.

Identity is (function ARN, source); a function named in the spec is managed exclusively, so its
live mappings that the spec does not list are deleted. Both sides are compared in the form that
normalize.comparable gives them, so an omitted field means the kind's AWS default.

Kafka consumer groups: a spec that omits `consumer_group_id` accepts whatever group AWS chose
(the mapping's own UUID) or a replace carried over (rules.is_default_consumer_group). A replace
of a Kafka mapping creates the new mapping in the old one's group when the spec names none, so
the group's committed offsets resume instead of the read position being lost (AWS ignores
StartingPosition for a group that has committed offsets); the change's warning says which.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import rules
from .api_form import from_api
from .mapping_settings import MappingSettings
from .model import (
    DesiredMapping,
    LiveMapping,
    ManagedFunction,
    address,
    function_of_address,
    kind_of,
)
from .normalize import (
    canonical_value,
    comparable,
    flatten,
    prune,
    to_request,
    unflatten,
)
from .plan import Change, FieldChange, Plan
from .rules import Kind


def by_function(live: Iterable[LiveMapping]) -> dict[str, list[LiveMapping]]:
    grouped: dict[str, list[LiveMapping]] = {}
    for mapping in live:
        grouped.setdefault(mapping.function_arn, []).append(mapping)
    return grouped


def present_by_source(mappings: Iterable[LiveMapping]) -> dict[str, list[LiveMapping]]:
    """One function's live mappings that count (not Deleting) by source, lowest UUID first:
    the first is the one a desired mapping is compared with; any others are duplicates (AWS
    refuses them, but a fake or a race can leave some) that the plan deletes."""
    grouped: dict[str, list[LiveMapping]] = {}
    for mapping in sorted(mappings, key=lambda m: m.uuid):
        if mapping.state != "Deleting":
            grouped.setdefault(mapping.source, []).append(mapping)
    return grouped


def diff(functions: list[ManagedFunction], live: list[LiveMapping]) -> Plan:
    live_of = by_function(live)
    changes: list[Change] = []
    for function in functions:
        deleting = [m for m in live_of.get(function.arn, []) if m.state == "Deleting"]
        live_by_source = present_by_source(live_of.get(function.arn, []))

        for desired in function.mappings:
            matches = live_by_source.pop(desired.source, [])
            if not matches:
                change = create_change(function, desired)
                change.wait_gone = [m.uuid for m in deleting if m.source == desired.source]
                changes.append(change)
                continue
            change = compare(function, desired, matches[0])
            if change is not None:
                changes.append(change)
            # The duplicates are this spec entry's mappings too: its prevent_destroy covers them.
            changes.extend(
                delete_change(function.label, m, prevent_destroy=desired.prevent_destroy)
                for m in matches[1:]
            )
        for leftovers in live_by_source.values():
            changes.extend(delete_change(function.label, m) for m in leftovers)

    order = {"delete": 0, "replace": 1, "update": 2, "create": 3}
    changes.sort(key=lambda c: (order[c.action], c.address))
    return Plan(changes=changes)


def _user_settings(desired: DesiredMapping) -> dict[str, Any]:
    """What the spec sets, in canonical form (filter patterns as JSON text, UTC timestamps)."""
    out = {}
    for key, value in desired.settings.items():
        canonical = canonical_value(key, value) if key != "tags" else value
        if canonical is not None:
            out[key] = canonical
    return out


def create_change(function: ManagedFunction, desired: DesiredMapping) -> Change:
    settings = _user_settings(desired)
    shown = {k: v for k, v in settings.items() if k not in rules.IDENTITY_FIELDS}
    return Change(
        action="create",
        address=address(function.label, desired.source),
        function_arn=function.arn,
        event_source=desired.source,
        uuid=None,
        kind=desired.kind.value,
        fields=[FieldChange(k, None, v) for k, v in sorted(flatten(prune(shown)).items())],
        create_request=_create_request(function, settings),
        prevent_destroy=desired.prevent_destroy,
    )


def _create_request(function: ManagedFunction, settings: dict[str, Any]) -> dict[str, Any]:
    return {"FunctionName": function.arn, **to_request(settings)}


def delete_change(function_label: str, live: LiveMapping, prevent_destroy: bool = False) -> Change:
    """A delete, showing the settings it throws away (SPEC: "A delete shows the settings it
    removes") as fields going from their live value to nothing."""
    return Change(
        action="delete",
        address=address(function_label, live.source),
        function_arn=live.function_arn,
        event_source=live.source,
        uuid=live.uuid,
        kind=live.kind.value if live.kind else "",
        fields=_removed_fields(live),
        prevent_destroy=prevent_destroy,
    )


def _removed_fields(live: LiveMapping) -> list[FieldChange]:
    settings = {}
    for key, value in live.settings.items():
        if key in rules.IDENTITY_FIELDS or key == "tags":
            continue
        canonical = canonical_value(key, value)
        if canonical is not None:
            settings[key] = canonical
    values = flatten(prune(settings))
    if live.state != "Updating":  # Updating: either
        values["enabled"] = live.state in rules.ENABLED_STATES
    values.update({f"tags.{k}": v for k, v in (live.tags or {}).items()})
    return [FieldChange(k, v, None) for k, v in sorted(values.items())]


def compare(function: ManagedFunction, desired: DesiredMapping, live: LiveMapping) -> Change | None:
    """The change that makes `live` the `desired` mapping: None when they are equal, an update
    when AWS can change every differing field in place, else a replace."""
    kind = desired.kind
    want, have = _compared_settings(desired, live)
    fields = [
        FieldChange(
            key,
            have.get(key),
            want.get(key),
            forces_replacement=_forces_replacement(key, want, have, kind),
        )
        for key in sorted(want.keys() | have.keys())
        if want.get(key) != have.get(key)
    ]
    tag_changes = None
    if "tags" in desired.settings and "tags" not in desired.ignore_changes:
        tag_changes, tag_fields = _tag_diff(desired.settings["tags"] or {}, live)
        fields.extend(tag_fields)
    if not fields:
        return None

    base = Change(
        action="update",
        address=address(function.label, desired.source),
        function_arn=function.arn,
        event_source=desired.source,
        uuid=live.uuid,
        kind=kind.value,
        fields=fields,
        prevent_destroy=desired.prevent_destroy,
    )
    if any(f.forces_replacement for f in fields):
        return _as_replace(base, function, desired, want, have)
    base.update_request = _update_request(live.uuid, fields, want)
    base.tag_changes = tag_changes
    return base


def _compared_settings(
    desired: DesiredMapping, live: LiveMapping
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides flattened in comparable form (want, have), what cannot be known from the live
    side taken as equal, and the fields of `ignore_changes` left as they are."""
    kind = desired.kind
    want = flatten(comparable(kind, desired.settings))
    have = flatten(comparable(kind, live.settings))
    have["enabled"] = live.state in rules.ENABLED_STATES
    if live.state == "Updating":
        # An update of other settings reads Updating whether the mapping is on or off: unknown.
        have["enabled"] = want.get("enabled")
    if have.get("starting_position_timestamp") is None:
        # AWS returns the timestamp of an AT_TIMESTAMP mapping; some emulators do not. Unknown
        # is not a difference.
        have["starting_position_timestamp"] = want.get("starting_position_timestamp")

    for path in rules.CONSUMER_GROUP_PATHS:
        if path not in want and rules.is_default_consumer_group(have.get(path), live.uuid):
            # Omitted: AWS made the group the mapping's UUID, or a replace kept the UUID of
            # the mapping it replaced.
            want[path] = have[path]

    for ignored in desired.ignore_changes:
        for key in [
            k for k in want.keys() | have.keys() if k == ignored or k.startswith(ignored + ".")
        ]:
            if key in have:
                want[key] = have[key]
            else:
                want.pop(key, None)
    return want, have


def _as_replace(
    change: Change,
    function: ManagedFunction,
    desired: DesiredMapping,
    want: dict[str, Any],
    have: dict[str, Any],
) -> Change:
    """`change` made a replace: delete the live mapping, then create the desired one (in the
    old one's Kafka consumer group, when the spec names no group)."""
    change.action = "replace"
    settings = _user_settings(desired)
    kept_group = None
    group_path = rules.CONSUMER_GROUP_PATH.get(desired.kind)
    if group_path is not None:
        config, member = group_path.split(".")
        if (settings.get(config) or {}).get(member) is None and want.get(group_path) is not None:
            # want holds the live group here only when the spec accepts it (see
            # _compared_settings): AWS's default, a carried-over one, or an ignored change.
            settings[config] = {**(settings.get(config) or {}), member: want[group_path]}
        group = (settings.get(config) or {}).get(member)
        if group is not None and group == have.get(group_path):
            kept_group = group
    change.create_request = _create_request(function, settings)
    if kept_group is not None:
        change.warnings.append(_group_kept_warning(kept_group, change.fields))
    elif desired.kind in rules.POSITIONAL_KINDS:
        change.warnings.append(
            f"{READ_POSITION_LOST}: the new mapping starts at "
            f"{want.get('starting_position') or 'its starting position'}"
        )
    return change


# How a replace's warning begins when the read position is lost (renderers may look for it).
READ_POSITION_LOST = "replacing this mapping discards its read position"


def loses_read_position(change: Change) -> bool:
    """Whether carrying out `change` throws a stream, Kafka or DocumentDB read position away."""
    return any(w.startswith(READ_POSITION_LOST) for w in change.warnings)


def _group_kept_warning(group: str, fields: list[FieldChange]) -> str:
    warning = (
        f"the new mapping joins the replaced mapping's Kafka consumer group {group} and resumes "
        "from its committed offsets (AWS uses starting_position only for a group without any)"
    )
    if any(f.name.startswith("starting_position") for f in fields):
        warning += (
            "; to start from the new starting_position instead, set consumer_group_id to a "
            "new group"
        )
    return warning


def _update_request(
    uuid: str, fields: list[FieldChange], want: dict[str, Any]
) -> dict[str, Any] | None:
    """The UpdateEventSourceMapping request that sets every changed top-level field (tags
    aside: they have calls of their own), or None when only tags changed."""
    changed_tops = sorted({f.name.split(".")[0] for f in fields if not f.name.startswith("tags.")})
    if not changed_tops:
        return None
    want_tree = unflatten(want)
    request: dict[str, Any] = {"UUID": uuid}
    for top in changed_tops:
        value = want_tree.get(top)
        alias = MappingSettings.model_fields[top].serialization_alias
        if value is None:
            request[alias] = rules.CLEAR_VALUE[top]
        else:
            request.update(_update_parameters(top, value))
    return request


def _update_parameters(top: str, value: Any) -> dict[str, Any]:
    """One top-level field in API form, as Update takes it."""
    part = to_request({top: value})
    for config in part.values():
        if isinstance(config, dict):
            config.pop("ConsumerGroupId", None)  # create-only; equal here anyway
    if "SourceAccessConfigurations" in part:
        # AWS refuses VIRTUAL_HOST on Update; a change of it forces a replace.
        part["SourceAccessConfigurations"] = [
            e for e in part["SourceAccessConfigurations"] if e["Type"] != "VIRTUAL_HOST"
        ]
    return part


def reconcile_existing(change: Change, live: LiveMapping) -> Change | None:
    """What is left of a create whose identity turned out to exist already (AWS said
    ResourceConflictException, typically because an earlier attempt of the same create succeeded
    and its answer was lost): None when `live` is already as desired, else an update (or a
    replace, which the caller must not carry out unasked)."""
    assert change.create_request
    settings = from_api(change.create_request)
    kind = kind_of(settings)
    assert kind is not None
    label = function_of_address(change.address)
    desired = DesiredMapping(label, kind, settings, ignore_changes=(), file="", line=0)
    return compare(ManagedFunction(label, change.function_arn, [desired]), desired, live)


def _forces_replacement(path: str, want: dict[str, Any], have: dict[str, Any], kind: Kind) -> bool:
    """Create-only settings, and changes AWS has no in-place way to make."""
    if rules.forces_replacement_path(path):
        return True
    top = path.split(".")[0]
    if top == "source_access_configurations":
        # RabbitMQ's VIRTUAL_HOST cannot be sent on Update (reference A.9).
        return _virtual_hosts(want.get(top)) != _virtual_hosts(have.get(top))
    if top == "maximum_batching_window_in_seconds" and kind in rules.WINDOW_DEFAULT_500MS:
        return want.get(top) is None  # back to the 500 ms default: only by re-creating
    unset = not any(k == top or k.startswith(top + ".") for k, v in want.items() if v is not None)
    return unset and top not in rules.CLEAR_VALUE and top != "enabled"


def _virtual_hosts(entries: Any) -> list[str]:
    return sorted(e["uri"] for e in entries or [] if e.get("type") == "VIRTUAL_HOST")


def _tag_diff(
    want: dict[str, str], live: LiveMapping
) -> tuple[dict[str, Any] | None, list[FieldChange]]:
    have = live.tags or {}
    to_set = {k: v for k, v in want.items() if have.get(k) != v}
    to_remove = sorted(k for k in have if k not in want)
    fields = [FieldChange(f"tags.{k}", have.get(k), v) for k, v in sorted(to_set.items())]
    fields += [FieldChange(f"tags.{k}", have[k], None) for k in to_remove]
    if not fields:
        return None, []
    return {"arn": live.esm_arn, "set": to_set, "remove": to_remove}, fields
