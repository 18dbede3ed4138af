"""Plan → text (Terraform-style), JSON (SPEC shape) or Markdown (pull-request comments)."""

from __future__ import annotations

import json
from typing import Any

from .plan import Change, FieldChange, Plan

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
VERBS = {
    "create": "will be created",
    "update": "will be updated in place",
    "replace": "must be replaced",
    "delete": "will be deleted",
}
COLORS = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}


def value_text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, separators=(", ", ": "), sort_keys=True)


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes."
    s = plan.summary()
    return (
        f"Plan: {s['create']} to create, {s['update']} to update, "
        f"{s['replace']} to replace, {s['delete']} to delete."
    )


def _field_line(change: Change, f: FieldChange) -> str:
    if change.action == "create":
        line = f"{f.name} = {value_text(f.after)}"
    else:
        line = f"{f.name}: {value_text(f.before)} -> {value_text(f.after)}"
    if f.forces_replacement:
        line += "   # forces replacement"
    return line


def render_text(plan: Plan, color: bool = False) -> str:
    import click

    def paint(text: str, action: str, bold: bool = False) -> str:
        return click.style(text, fg=COLORS[action], bold=bold) if color else text

    blocks: list[str] = []
    for change in plan.changes:
        head = f"{SYMBOLS[change.action]} {change.address} {VERBS[change.action]}"
        lines = [paint(head, change.action, bold=True)]
        if change.uuid:
            lines.append(f"    uuid: {change.uuid}")
        for f in change.fields:
            lines.append("    " + _field_line(change, f))
        for warning in change.warnings:
            lines.append(f"    ! {warning}")
        blocks.append("\n".join(lines))
    for warning in plan.warnings:
        blocks.append(f"Warning: {warning}")
    blocks.append(summary_line(plan))
    return "\n\n".join(blocks)


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2, default=str)


FOLD_AFTER = 10  # changes shown open before the rest fold into <details>


def _cell(value: Any) -> str:
    return "`" + value_text(value).replace("|", "\\|") + "`"


def render_markdown(plan: Plan) -> str:
    out = [f"**{summary_line(plan)}**", ""]
    for warning in plan.warnings:
        out += [f"> {warning}", ""]
    replaces = [c for c in plan.changes if c.action == "replace"]
    if replaces:
        out.append(
            f"> [!WARNING]\n> {len(replaces)} mapping(s) will be **replaced** (deleted, then "
            "created): stream/Kafka read positions are lost."
        )
        out.append("")
    for index, change in enumerate(plan.changes):
        if index == FOLD_AFTER:
            out.append(f"<details><summary>{len(plan.changes) - FOLD_AFTER} more changes</summary>")
            out.append("")
        out.append(f"#### `{SYMBOLS[change.action]}` {change.action}: `{change.address}`")
        if change.fields:
            out.append("")
            out.append("| field | before | after |")
            out.append("|---|---|---|")
            for f in change.fields:
                note = " (forces replacement)" if f.forces_replacement else ""
                before = "" if change.action == "create" else _cell(f.before)
                out.append(f"| `{f.name}`{note} | {before} | {_cell(f.after)} |")
        for warning in change.warnings:
            out.append(f"\n> {warning}")
        out.append("")
    if len(plan.changes) > FOLD_AFTER:
        out.append("</details>")
    return "\n".join(out).rstrip() + "\n"


def render(plan: Plan, fmt: str, color: bool = False) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    return render_text(plan, color=color)
