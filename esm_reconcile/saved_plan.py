"""Saved plans: the Plan plus what it was computed from, so `apply PLANFILE` can refuse a stale one.

A saved plan records, per managed function, which mappings existed and, per mapping, the
settings and on/off state it saw (and tags where they were read). Before applying, the same
facts are read again; any difference means the world moved since review. Pure: no AWS here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import rules
from .errors import EsmError
from .live_state import LiveMapping
from .plan import Change, FieldChange, Plan

KIND = "esm-saved-plan"
BUNDLE_KIND = "esm-saved-plans"  # several regions or accounts: one document each
VERSION = 1


def spec_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def snapshot(mapping: LiveMapping) -> dict[str, Any]:
    """What a reviewer saw of one mapping, in a form that survives JSON."""
    enabled: bool | None = mapping.state in rules.ENABLED_STATES
    if mapping.state == "Updating":
        enabled = None  # unknowable mid-update; see diff.compare
    return json.loads(
        json.dumps(
            {
                "function_arn": mapping.function_arn,
                "settings": mapping.settings,
                "enabled": enabled,
                "tags": mapping.tags,
            },
            default=str,
            sort_keys=True,
        )
    )


def observe(
    live: list[LiveMapping], managed_arns: set[str]
) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """Per managed function the mapping UUIDs, and per mapping its snapshot."""
    present = [m for m in live if m.function_arn in managed_arns and m.state != "Deleting"]
    by_function = {
        arn: sorted(m.uuid for m in present if m.function_arn == arn) for arn in managed_arns
    }
    return by_function, {m.uuid: snapshot(m) for m in present}


def to_document(
    plan: Plan,
    managed: dict[str, str],
    observed_functions: dict[str, list[str]],
    observed_mappings: dict[str, dict[str, Any]],
    digest: str,
    targets: tuple[str, ...],
) -> dict[str, Any]:
    return {
        "kind": KIND,
        "version": VERSION,
        "region": plan.region,
        "account": plan.account,
        "spec_digest": digest,
        "targets": list(targets),
        "managed_functions": managed,
        "observed_functions": observed_functions,
        "observed_mappings": observed_mappings,
        "warnings": plan.warnings,
        "changes": [asdict(c) for c in plan.changes],
    }


def from_document(document: Any, source: str) -> tuple[Plan, dict[str, Any]]:
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise EsmError(f"{source}: not a saved plan (write one with: esm plan --out FILE)")
    if document.get("version") != VERSION:
        raise EsmError(f"{source}: saved plan version {document.get('version')} is not supported")
    try:
        changes = [
            Change(**{**c, "fields": [FieldChange(**f) for f in c["fields"]]})
            for c in document["changes"]
        ]
    except (KeyError, TypeError) as exc:
        raise EsmError(f"{source}: damaged saved plan ({exc})") from None
    plan = Plan(
        changes=changes,
        region=document.get("region"),
        account=document.get("account"),
        warnings=list(document.get("warnings") or []),
    )
    return plan, document


def bundle(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """What `plan --out` writes: one region's document as is, several in a bundle."""
    if len(documents) == 1:
        return documents[0]
    return {"kind": BUNDLE_KIND, "version": VERSION, "plans": documents}


def load(path: str) -> list[tuple[Plan, dict[str, Any]]]:
    """Each region's plan and document from a saved plan file."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise EsmError(f"{path}: cannot read saved plan: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EsmError(f"{path}: not a saved plan (not JSON)") from None
    if isinstance(document, dict) and document.get("kind") == BUNDLE_KIND:
        if document.get("version") != VERSION or not isinstance(document.get("plans"), list):
            raise EsmError(f"{path}: saved plan version {document.get('version')} is not supported")
        return [from_document(part, path) for part in document["plans"]]
    return [from_document(document, path)]


def moved(document: dict[str, Any], live: list[LiveMapping]) -> list[str]:
    """How the live state differs from what the saved plan saw; empty when it did not move."""
    managed = set(document["managed_functions"].values())
    now_functions, now_mappings = observe(live, managed)
    reasons: list[str] = []
    then_mappings: dict[str, dict[str, Any]] = document["observed_mappings"]
    for arn, then_uuids in sorted(document["observed_functions"].items()):
        now_uuids = now_functions.get(arn, [])
        for uuid in sorted(set(now_uuids) - set(then_uuids)):
            reasons.append(f"{arn}: mapping {uuid} appeared since the plan was made")
        for uuid in sorted(set(then_uuids) - set(now_uuids)):
            reasons.append(f"{arn}: mapping {uuid} is gone since the plan was made")
    for uuid, then in sorted(then_mappings.items()):
        now = now_mappings.get(uuid)
        if now is None:
            continue  # reported above
        if now["tags"] is None:
            now["tags"] = then["tags"]  # tags are compared only where the plan read them
        for key in ("function_arn", "enabled", "tags"):
            if then[key] != now[key] and None not in (then[key], now[key]):
                reasons.append(f"mapping {uuid}: {key} changed from {then[key]} to {now[key]}")
        before, after = then["settings"], now["settings"]
        for field in sorted(before.keys() | after.keys()):
            if before.get(field) != after.get(field):
                reasons.append(
                    f"mapping {uuid}: {field} changed from {json.dumps(before.get(field))} "
                    f"to {json.dumps(after.get(field))}"
                )
    return reasons
