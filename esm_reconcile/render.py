"""Plan → text (Terraform-style), JSON (SPEC shape) or Markdown (pull-request comments)."""

from __future__ import annotations

import json
import re
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
# After a replace's uuid: the delete half throws this mapping (and its UUID) away.
REPLACED_UUID = " (deleted first; the new mapping gets a new uuid)"

# Values come from spec files anyone can propose and from live mappings anyone with access can
# edit, so they are shown as written (non-ASCII included) except for characters that would act
# instead of showing: DEL and the C1 controls (U+009B is a one-character CSI: colours, cursor
# moves, window titles), bidi formatting characters (they reorder what the reader sees, as in
# "Trojan Source"), U+2028/U+2029 (line breaks to some viewers only) and lone surrogates (not
# encodable as UTF-8 at all). JSON string syntax escapes the C0 controls itself.
_UNSAFE_BEYOND_ASCII = (
    "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
)
_UNSAFE_IN_JSON = re.compile(f"[{_UNSAFE_BEYOND_ASCII}]")
_UNSAFE_IN_TEXT = re.compile(f"[\x00-\x1f{_UNSAFE_BEYOND_ASCII}]")


def _escape_code_point(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def terminal_safe(text: str) -> str:
    """`text` with control, escape and bidi characters written as \\uXXXX, all else as is."""
    return _UNSAFE_IN_TEXT.sub(_escape_code_point, text)


def _json_dumps(data: Any, **options: Any) -> str:
    # Terminal-unsafe characters can only occur inside JSON strings, where \uXXXX means the
    # same character: the result stays valid JSON and decodes to the same data.
    encoded = json.dumps(data, default=str, ensure_ascii=False, **options)
    return _UNSAFE_IN_JSON.sub(_escape_code_point, encoded)


def json_text(data: Any) -> str:
    """Indented JSON that shows text as written, yet keeps terminal-unsafe characters escaped."""
    return _json_dumps(data, indent=2)


def value_text(value: Any) -> str:
    """One value on one line: JSON with text as written, or "(none)"."""
    if value is None:
        return "(none)"
    return _json_dumps(value, separators=(", ", ": "), sort_keys=True)


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes."
    s = plan.summary()
    return (
        f"Plan: {s['create']} to create, {s['update']} to update, "
        f"{s['replace']} to replace, {s['delete']} to delete."
    )


def scope_text(region: str | None, account: str | None) -> str:
    """`region us-east-1, account 123456789012`, leaving out what is not known."""
    parts = [f"region {region}" if region else "", f"account {account}" if account else ""]
    return ", ".join(p for p in parts if p)


def scope_line(plan: Plan) -> str:
    """The header naming the region(s) and account(s) a plan is for; "" when none is known."""
    scopes = [scope_text(r, a) for r, a in plan.scopes_covered()]
    scopes = [s for s in scopes if s]
    if not scopes:
        return ""
    if len(scopes) == 1:
        return terminal_safe(scopes[0][0].upper() + scopes[0][1:])
    return terminal_safe(f"{len(scopes)} regions/accounts: " + "; ".join(scopes))


def _several_scopes(plan: Plan) -> bool:
    return len(plan.scopes_covered()) > 1


def _field_line(change: Change, f: FieldChange) -> str:
    name = terminal_safe(f.name)  # tag keys are data
    if change.action == "create":
        line = f"{name} = {value_text(f.after)}"
    elif change.action == "delete":
        line = f"{name} = {value_text(f.before)}"  # what the delete throws away
    else:
        line = f"{name}: {value_text(f.before)} -> {value_text(f.after)}"
    if f.forces_replacement:
        line += "   # forces replacement"
    return line


def render_text(plan: Plan, color: bool = False) -> str:
    import click

    def paint(text: str, action: str, bold: bool = False) -> str:
        return click.style(text, fg=COLORS[action], bold=bold) if color else text

    blocks: list[str] = []
    header = scope_line(plan)
    if header:
        blocks.append(header)
    several = _several_scopes(plan)
    for change in plan.changes:
        head = f"{SYMBOLS[change.action]} {terminal_safe(change.address)} {VERBS[change.action]}"
        lines = [paint(head, change.action, bold=True)]
        if several:
            where = scope_text(change.region, change.account) or "(region not known)"
            lines.append(f"    in: {terminal_safe(where)}")
        if change.uuid:
            note = REPLACED_UUID if change.action == "replace" else ""
            lines.append(f"    uuid: {terminal_safe(change.uuid)}{note}")
        for f in change.fields:
            lines.append("    " + _field_line(change, f))
        for warning in change.warnings:
            lines.append(f"    ! {terminal_safe(warning)}")
        blocks.append("\n".join(lines))
    for warning in plan.warnings:
        blocks.append(f"Warning: {terminal_safe(warning)}")
    blocks.append(summary_line(plan))
    return "\n\n".join(blocks)


def render_json(plan: Plan) -> str:
    return json_text(plan.to_json())


FOLD_AFTER = 10  # changes shown open before the rest fold into <details>


def code_span(text: str) -> str:
    """A CommonMark code span showing `text` literally, whatever backticks it holds.

    The delimiter is one backtick longer than the longest run inside; a space pads content
    that starts or ends with a backtick (or with spaces on both ends, which CommonMark would
    strip), and CommonMark removes exactly that one space again.
    """
    longest_run = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest_run + 1)
    padded = (
        not text
        or text.startswith("`")
        or text.endswith("`")
        or (text.startswith(" ") and text.endswith(" "))
    )
    return f"{fence} {text} {fence}" if padded else f"{fence}{text}{fence}"


def _table_cell(text: str) -> str:
    # GFM splits table rows at unescaped pipes before it looks for code spans.
    return code_span(terminal_safe(text)).replace("|", "\\|")


_MARKDOWN_INLINE_SYNTAX = re.compile(r"([\\`*_\[\]~|])")


def markdown_text(text: str) -> str:
    """Plain text for Markdown outside code spans: no emphasis, links, code or HTML from it."""
    escaped = _MARKDOWN_INLINE_SYNTAX.sub(r"\\\1", terminal_safe(text))
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _markdown_scope(region: str | None, account: str | None) -> str:
    parts = [f"region {code_span(terminal_safe(region))}" if region else ""]
    parts.append(f"account {code_span(terminal_safe(account))}" if account else "")
    return ", ".join(p for p in parts if p)


def render_markdown(plan: Plan) -> str:
    out = [f"**{summary_line(plan)}**", ""]
    scopes = [s for s in (_markdown_scope(r, a) for r, a in plan.scopes_covered()) if s]
    if len(scopes) == 1:
        out += [scopes[0][0].upper() + scopes[0][1:], ""]
    elif scopes:
        out += [f"{len(scopes)} regions/accounts: " + "; ".join(scopes), ""]
    several = len(scopes) > 1
    for warning in plan.warnings:
        out += [f"> {markdown_text(warning)}", ""]
    from .diff import loses_read_position

    replaces = [c for c in plan.changes if c.action == "replace"]
    losing = [c for c in replaces if loses_read_position(c)]
    if replaces:
        lost = f": {len(losing)} of them lose their read position" if losing else ""
        out.append(
            f"> [!WARNING]\n> {len(replaces)} mapping(s) will be **replaced** (deleted, then "
            f"created){lost}."
        )
        out.append("")
    for index, change in enumerate(plan.changes):
        if index == FOLD_AFTER:
            out.append(f"<details><summary>{len(plan.changes) - FOLD_AFTER} more changes</summary>")
            out.append("")
        address = code_span(terminal_safe(change.address))
        out.append(f"#### {code_span(SYMBOLS[change.action])} {change.action}: {address}")
        about = [_markdown_scope(change.region, change.account)] if several else []
        if change.uuid:
            about.append(f"uuid {code_span(terminal_safe(change.uuid))}")
        if change.action == "replace":
            about.append(REPLACED_UUID.strip(" ()"))
        if about:
            out += ["", "; ".join(a for a in about if a)]
        if change.fields:
            out.append("")
            out.append("| field | before | after |")
            out.append("|---|---|---|")
            for f in change.fields:
                note = " (forces replacement)" if f.forces_replacement else ""
                before = "" if change.action == "create" else _table_cell(value_text(f.before))
                after = "" if change.action == "delete" else _table_cell(value_text(f.after))
                out.append(f"| {_table_cell(f.name)}{note} | {before} | {after} |")
        for warning in change.warnings:
            out.append(f"\n> {markdown_text(warning)}")
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
