"""Live mappings → a version-1 spec document and its YAML (pure; no AWS).

The exported spec is minimal: a mapping carries its identity (source, topic or queue), the
settings whose comparable value differs from the kind's AWS default, `enabled: false` when the
mapping is off, the starting position where the kind requires one, and its tags when they were
read. Planning the exported file against the same live state gives no changes, because every
setting is chosen by the same `normalize.comparable` the diff uses.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from . import rules
from .errors import EsmError
from .filter_patterns import canonical_pattern
from .model import LiveMapping
from .normalize import COMPARED_FIELDS, canonical_value, comparable
from .rules import Kind

# Key order of an exported mapping: identity, then where it starts, then whether it is on; the
# other settings follow in the model's (CreateEventSourceMapping's) order, tags last.
_FIRST = ("starting_position", "starting_position_timestamp", "enabled")
_DISABLED_STATES = frozenset({"Disabled", "Disabling"})


def label_for(function_arn: str, region: str | None, account: str | None) -> str:
    """`name` or `name:qualifier` when the ARN is in this region and account; else the ARN."""
    parts = function_arn.split(":")
    # arn:partition:lambda:region:account:function:name[:qualifier]
    if (
        len(parts) in (7, 8)
        and parts[0] == "arn"
        and parts[2] == "lambda"
        and parts[5] == "function"
        and region is not None
        and account is not None
        and parts[3] == region
        and parts[4] == account
    ):
        return ":".join(parts[6:])
    return function_arn


def export_spec(
    mappings: list[LiveMapping],
    function_labels: dict[str, str],
    region: str | None,
    account_id: str | None,
) -> dict[str, Any]:
    """A version-1 spec document for these live mappings.

    `function_labels` maps each requested function ARN to the key to write for it; a requested
    function with no mappings exports as `label: []` (managed, must have none). Mappings of
    other functions get `label_for`'s label. Mappings being deleted are left out; of two live
    mappings with one identity (AWS refuses these; emulators allow them) the one the diff keeps
    (lowest UUID) is exported.
    """
    by_function = _by_function(mappings, function_labels)
    labels = {
        arn: function_labels.get(arn) or label_for(arn, region, account_id) for arn in by_function
    }
    requested = list(function_labels)
    others = sorted(
        (arn for arn in by_function if arn not in function_labels),
        key=lambda arn: (labels[arn].startswith("arn:"), labels[arn]),  # short labels first
    )

    functions: dict[str, list[dict[str, Any]]] = {}
    for arn in requested + others:
        exported = _exported_mappings(arn, by_function[arn])
        label = labels[arn]
        if label in functions:
            raise EsmError(f"two functions export under one key {label!r}")
        functions[label] = exported

    doc: dict[str, Any] = {"version": 1}
    if region:
        doc["region"] = region
    if account_id:
        doc["account_id"] = account_id
    doc["functions"] = functions
    return doc


def _by_function(
    mappings: list[LiveMapping], function_labels: dict[str, str]
) -> dict[str, list[LiveMapping]]:
    """The mappings not being deleted, by function ARN in UUID order; every requested function
    is there, with or without mappings."""
    by_function: dict[str, list[LiveMapping]] = {arn: [] for arn in function_labels}
    for mapping in sorted(mappings, key=lambda m: m.uuid):
        if mapping.state == "Deleting":
            continue
        by_function.setdefault(mapping.function_arn, []).append(mapping)
    return by_function


def _exported_mappings(arn: str, mappings: list[LiveMapping]) -> list[dict[str, Any]]:
    """One function's mappings in spec form, one per identity (the first, by UUID), ordered by
    source."""
    exported: dict[str, dict[str, Any]] = {}
    for mapping in mappings:
        if mapping.kind is None:
            raise EsmError(
                f"mapping {mapping.uuid} of {arn}: unrecognised event source "
                f"{mapping.source!r}; cannot export it"
            )
        exported.setdefault(mapping.source, export_mapping(mapping))
    return [exported[source] for source in sorted(exported)]


def export_mapping(mapping: LiveMapping) -> dict[str, Any]:
    """One live mapping in minimal spec form (see the module docstring)."""
    kind = mapping.kind
    if kind is None:
        raise EsmError(f"mapping {mapping.uuid}: unrecognised event source {mapping.source!r}")
    out = _identity(mapping.settings)
    chosen = _chosen_settings(mapping, kind)
    for field in _FIRST:
        if field in chosen:
            out[field] = chosen.pop(field)
    out.update(chosen)
    if mapping.tags:
        out["tags"] = dict(sorted(mapping.tags.items()))
    return out


def _identity(settings: dict[str, Any]) -> dict[str, Any]:
    """What identifies a mapping: its source (ARN or Kafka brokers), and its topic or queue."""
    out: dict[str, Any] = {}
    if settings.get("event_source_arn"):
        out["event_source_arn"] = settings["event_source_arn"]
    else:
        out["self_managed_event_source"] = canonical_value(
            "self_managed_event_source", settings.get("self_managed_event_source")
        )
    for key in ("topics", "queues"):
        if settings.get(key):
            out[key] = list(settings[key])
    return out


def _chosen_settings(mapping: LiveMapping, kind: Kind) -> dict[str, Any]:
    """The settings that differ from what AWS would store if they were omitted (those the kind
    requires always), and `enabled: false` for a mapping that is off. Filters have no default;
    they are taken as they are (comparable would choke on an unparsable pattern)."""
    settings = mapping.settings
    have = comparable(kind, {k: v for k, v in settings.items() if k != "filter_criteria"})
    default = comparable(kind, {})
    chosen: dict[str, Any] = {}
    for field in COMPARED_FIELDS:
        if field not in have or field == "enabled":
            continue  # not applicable to the kind; enabled comes from State below
        if field == "filter_criteria":
            value = _filters(settings.get(field))
        elif have[field] == default.get(field) and field not in rules.REQUIRED.get(kind, ()):
            continue
        else:
            value = _spec_value(field, settings.get(field), kind, mapping.uuid)
        if value is not None:
            chosen[field] = value
    if mapping.state in _DISABLED_STATES:
        chosen["enabled"] = False
    return chosen


def _pattern_object(pattern: Any) -> dict[str, Any] | None:
    if isinstance(pattern, dict):
        return pattern
    try:
        parsed = json.loads(pattern)
    except (TypeError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _spec_value(field: str, value: Any, kind: Kind, uuid: str) -> Any:
    """A live value as the spec writes it: canonical, without nested AWS defaults."""
    value = canonical_value(field, value)
    if not isinstance(value, dict):
        return value
    if field in (
        "amazon_managed_kafka_event_source_config",
        "self_managed_kafka_event_source_config",
    ):
        if rules.is_default_consumer_group(value.get("consumer_group_id"), uuid):
            # AWS's default, or one a replace carried over: a spec omitting it accepts it.
            value = {k: v for k, v in value.items() if k != "consumer_group_id"}
        return value or None
    nested = {
        path.split(".", 1)[1]: default
        for path, default in rules.NESTED_DEFAULTS.get(kind, {}).items()
        if path.split(".", 1)[0] == field
    }
    trimmed = {k: v for k, v in value.items() if not (k in nested and nested[k] == v)}
    # An object of nothing but defaults must stay whole: an empty one means "not set".
    return trimmed if trimmed else value


def _filters(criteria: dict[str, Any] | None) -> dict[str, Any] | None:
    """Filters with their patterns as YAML mappings, in a stable order. A pattern that is not a
    JSON object stays text, so that validating the export says what is wrong with it."""
    entries = []
    for item in (criteria or {}).get("filters") or []:
        pattern = item.get("pattern")
        parsed = _pattern_object(pattern)
        entries.append(
            {"pattern": pattern if parsed is None else json.loads(canonical_pattern(parsed))}
        )
    if not entries:
        return None
    entries.sort(key=lambda e: json.dumps(e["pattern"], sort_keys=True))
    return {"filters": entries}


# -- YAML -----------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, as the SPEC's examples are."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    # Short lists of scalars (topics, response types, a pattern's values) read best inline.
    inline = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_Dumper.add_representer(list, _represent_list)


def dump_yaml(doc: dict[str, Any]) -> str:
    """The document as readable YAML, keys in the document's order, with a header comment."""
    where = []
    if doc.get("region"):
        where.append(f"region {doc['region']}")
    if doc.get("account_id"):
        where.append(f"account {doc['account_id']}")
    header = "# Exported by `esm export` from the live event source mappings"
    header += f"\n# of {', '.join(where)}." if where else "."
    header += "\n# Settings equal to the AWS defaults are omitted.\n"
    body = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return header + body
