"""Put desired and live settings into one comparable form (pure; no AWS).

Both sides go through `comparable`: fields the kind does not have are dropped, AWS's "empty"
read-backs become unset, unset fields take the kind's AWS default, and values whose text can
differ while the meaning is the same (filter patterns, sets) get one canonical form.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .api_form import SETTING_FIELDS, to_api
from .filter_patterns import canonical_pattern
from .rules import DEFAULTS, IDENTITY_FIELDS, NESTED_DEFAULTS, Kind, applies

# Settings that are compared between desired and live (tags have their own path).
COMPARED_FIELDS: tuple[str, ...] = tuple(
    f for f in SETTING_FIELDS if f not in IDENTITY_FIELDS and f != "tags"
)


def prune(value: Any) -> Any:
    """Drop None members and members that are empty containers, recursively."""
    if isinstance(value, dict):
        out = {k: prune(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def _timestamp(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:  # a naive time in a spec means UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pattern_text(pattern: Any) -> str:
    try:
        return canonical_pattern(pattern)
    except (ValueError, RecursionError):
        # Live text that is not JSON, or nests past what json.loads can (an emulator accepted
        # it): compare as text.
        return json.dumps(pattern)


def canonical_value(field: str, value: Any) -> Any:
    """One form per meaning for one top-level field, or None for "unset"."""
    if value is None:
        return None
    if field == "starting_position_timestamp":
        return _timestamp(value)
    if isinstance(value, dict | list):
        value = prune(value)
    if field == "filter_criteria":
        # Parsed objects compare by meaning; sorted by canonical text, they compare as a multiset.
        patterns = sorted(_pattern_text(f["pattern"]) for f in value.get("filters", []))
        return {"filters": [{"pattern": json.loads(p)} for p in patterns]} if patterns else None
    if field == "destination_config":
        # AWS reads back {"OnFailure": {}} for "no destination" and accepts "" to clear one.
        dest = (value.get("on_failure") or {}).get("destination")
        return {"on_failure": {"destination": dest}} if dest else None
    if field == "source_access_configurations":
        items = sorted(value, key=lambda i: (i.get("type", ""), i.get("uri", "")))
        return items or None
    if field == "self_managed_event_source":
        servers = value.get("endpoints", {}).get("KAFKA_BOOTSTRAP_SERVERS", [])
        return {"endpoints": {"KAFKA_BOOTSTRAP_SERVERS": sorted(servers)}}
    if field == "metrics_config":
        metrics = sorted(value.get("metrics", []))
        return {"metrics": metrics} if metrics else None
    if field == "kms_key_arn" and value == "":
        return None
    if value in ({}, []):
        return None
    return value


def comparable(kind: Kind, settings: dict[str, Any]) -> dict[str, Any]:
    """Every compared field the kind has, with AWS defaults filled in; None means unset."""
    defaults = DEFAULTS[kind]
    out: dict[str, Any] = {}
    for field in COMPARED_FIELDS:
        if not applies(field, kind):
            continue
        value = canonical_value(field, settings.get(field))
        out[field] = defaults.get(field) if value is None else value
    for path, default in NESTED_DEFAULTS.get(kind, {}).items():
        parent, leaf = path.split(".")
        if isinstance(out.get(parent), dict) and out[parent].get(leaf) is None:
            out[parent] = {**out[parent], leaf: default}
    return out


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}; lists, scalars and None are leaves."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out.update(flatten(item, path + "."))
        else:
            out[path] = item
    return out


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, item in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):  # "x": None beside "x.y": the leaf wins
                node[part] = {}
            node = node[part]
        if item is None and isinstance(node.get(leaf), dict):
            continue
        node[leaf] = item
    return out


def to_request(settings: dict[str, Any]) -> dict[str, Any]:
    """Canonical spec-form settings → API parameters (filter patterns become JSON text)."""
    out = to_api(settings)
    criteria = out.get("FilterCriteria")
    if criteria and criteria.get("Filters"):
        criteria["Filters"] = [
            {"Pattern": canonical_pattern(f["Pattern"])} for f in criteria["Filters"]
        ]
    return out
