"""Renderers: text (Terraform-style), JSON (SPEC shape), Markdown."""

from __future__ import annotations

import json
import re

import pytest

from esm_reconcile.plan import Change, FieldChange, Plan
from esm_reconcile.render import code_span, render, summary_line, value_text
from tests.spec_json import CHANGE_KEYS

FN = "arn:aws:lambda:us-east-1:123456789012:function:f"
Q = "arn:aws:sqs:us-east-1:123456789012:q"
S = "arn:aws:kinesis:us-east-1:123456789012:stream/s"


def sample_plan() -> Plan:
    return Plan(
        changes=[
            Change("delete", f"f[{Q}2]", FN, Q + "2", "u-del"),
            Change(
                "replace",
                f"f[{S}]",
                FN,
                S,
                "u-rep",
                [FieldChange("starting_position", "LATEST", "TRIM_HORIZON", True)],
                warnings=["replacing this mapping discards its read position"],
            ),
            Change("update", f"f[{Q}]", FN, Q, "u-upd", [FieldChange("batch_size", 10, 50)]),
            Change("create", f"f[{Q}3]", FN, Q + "3", None, [FieldChange("batch_size", None, 5)]),
        ]
    )


def test_text_has_symbols_before_after_and_summary() -> None:
    text = render(sample_plan(), "text")
    assert f"- f[{Q}2] will be deleted" in text
    assert f"-/+ f[{S}] must be replaced" in text
    assert f"~ f[{Q}] will be updated in place" in text
    assert f"+ f[{Q}3] will be created" in text
    assert 'starting_position: "LATEST" -> "TRIM_HORIZON"   # forces replacement' in text
    assert "batch_size: 10 -> 50" in text
    assert "batch_size = 5" in text
    assert "read position" in text
    assert text.splitlines()[-1] == "Plan: 1 to create, 1 to update, 1 to replace, 1 to delete."


def test_no_changes_line() -> None:
    assert render(Plan(), "text") == "No changes."
    assert summary_line(Plan()) == "No changes."


def test_json_shape_matches_spec() -> None:
    data = json.loads(render(sample_plan(), "json"))
    # The replace's read-position warning makes `warnings` appear.
    assert set(data) == {"format_version", "changes", "summary", "warnings"}
    assert data["format_version"] == "1"
    assert data["summary"] == {"create": 1, "update": 1, "replace": 1, "delete": 1}
    assert all(set(c) == CHANGE_KEYS for c in data["changes"])
    update = next(c for c in data["changes"] if c["action"] == "update")
    assert update == {
        "action": "update",
        "address": f"f[{Q}]",
        "function_arn": FN,
        "event_source": Q,
        "uuid": "u-upd",
        "fields": [{"name": "batch_size", "before": 10, "after": 50, "forces_replacement": False}],
        "region": "us-east-1",
        "account": "123456789012",
    }
    create = next(c for c in data["changes"] if c["action"] == "create")
    assert create["uuid"] is None


def test_markdown_summary_first_and_replacement_called_out() -> None:
    md = render(sample_plan(), "markdown")
    assert md.startswith("**Plan: 1 to create, 1 to update, 1 to replace, 1 to delete.**")
    assert "replaced" in md and "(forces replacement)" in md
    assert "| `batch_size` | `10` | `50` |" in md


def test_markdown_escapes_pipes_and_folds_long_plans() -> None:
    many = Plan(
        changes=[
            Change("update", f"f[{Q}{i}]", FN, Q, f"u{i}", [FieldChange("x", "a|b", "c")])
            for i in range(15)
        ]
    )
    md = render(many, "markdown")
    assert "a\\|b" in md
    assert "<details><summary>5 more changes</summary>" in md and md.rstrip().endswith("</details>")


# -- what values may hold: any text, controls, backticks, HTML -----------------------------------

# Characters that act instead of showing: NUL, ESC (starts an escape sequence), BEL, DEL, CSI
# (U+009B, a one-character escape sequence), RIGHT-TO-LEFT OVERRIDE, LINE SEPARATOR, and a
# lone surrogate (not encodable as UTF-8). A raw LF is checked by where lines break.
UNSAFE = ["\x00", "\x1b", "\x07", "\x7f", "\x9b", "\u202e", "\u2028", "\ud800"]
HOSTILE = "clear\x1b[2J\x1b]0;owned\x07 \x7f\x9b31m \u202egnp.exe\u2028\ud800 line\nbreak"


def one_change(value: object, name: str = "batch_size", address: str = f"f[{Q}]") -> Plan:
    return Plan(
        changes=[Change("update", address, FN, Q, "u-1", [FieldChange(name, "old", value)])]
    )


def test_non_ascii_is_shown_as_written_in_every_format() -> None:
    plan = one_change({"body": {"名前": ["値"]}, "note": "café"}, name="tags.チーム")
    plan.warnings.append("targeting is in effect (注文)")
    text = render(plan, "text")
    assert 'tags.チーム: "old" -> {"body": {"名前": ["値"]}, "note": "café"}' in text
    assert "Warning: targeting is in effect (注文)" in text
    markdown = render(plan, "markdown")
    assert '`{"body": {"名前": ["値"]}, "note": "café"}`' in markdown
    assert "`tags.チーム`" in markdown and "注文" in markdown
    raw_json = render(plan, "json")
    assert "値" in raw_json and "\\u" not in raw_json
    assert json.loads(raw_json)["changes"][0]["fields"][0]["after"]["body"] == {"名前": ["値"]}
    assert value_text("値") == '"値"'


def test_controls_escape_sequences_and_bidi_overrides_stay_escaped() -> None:
    plan = one_change(HOSTILE, name="tags.k\x1b[1m", address=f"f[{Q}\u202e]")
    plan.changes[0].warnings.append("warning\x1b[31m\u202e")
    plan.warnings.append("plan warning\x9b2J")
    for fmt in ("text", "markdown", "json"):
        output = render(plan, fmt)
        shown = [char for char in UNSAFE if char in output]
        assert shown == [], (fmt, shown)
        assert not any(line.startswith("break") for line in output.splitlines()), fmt
    text = render(plan, "text")
    assert "\\u001b[2J" in text and "\\u009b31m" in text and "\\u202egnp.exe" in text
    assert "\\u2028\\ud800 line\\nbreak" in text
    assert f"~ f[{Q}\\u202e] will be updated in place" in text
    assert "tags.k\\u001b[1m:" in text and "! warning\\u001b[31m\\u202e" in text
    assert "Warning: plan warning\\u009b2J" in text
    # JSON stays valid and means the same data.
    data = json.loads(render(plan, "json"))
    assert data["changes"][0]["fields"][0]["after"] == HOSTILE
    assert data["changes"][0]["address"] == f"f[{Q}\u202e]"


def test_color_styles_the_heading_but_not_what_values_hold() -> None:
    text = render(one_change("\x1b[2J"), "text", color=True)
    assert "\x1b[2J" not in text and "\\u001b[2J" in text
    assert "\x1b[" in text  # the action colour itself


def code_spans(line: str) -> list[str]:
    """The contents of the code spans in one line, by CommonMark's rules (spec 6.1)."""
    spans: list[str] = []
    position = 0
    while (start := line.find("`", position)) >= 0:
        opener_end = start
        while opener_end < len(line) and line[opener_end] == "`":
            opener_end += 1
        opener = opener_end - start
        # The span ends at the next backtick run of exactly the opener's length.
        search = opener_end
        closer = -1
        while (run := line.find("`", search)) >= 0:
            run_end = run
            while run_end < len(line) and line[run_end] == "`":
                run_end += 1
            if run_end - run == opener:
                closer = run
                break
            search = run_end
        if closer < 0:  # an unmatched run is literal backticks
            position = opener_end
            continue
        content = line[opener_end:closer]
        if content.startswith(" ") and content.endswith(" ") and content.strip(" "):
            content = content[1:-1]
        spans.append(content)
        position = closer + opener
    return spans


def table_cells(row: str) -> list[str]:
    """A GFM table row's cells: split at unescaped pipes, then `\\|` means `|`."""
    assert row.startswith("| ") and row.endswith(" |"), row
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row[1:-1])]


@pytest.mark.parametrize(
    "value",
    ["a`b", "`", "``x``", "x```", "pipe | and ` tick", {"pattern": "`{}`"}, " spaced "],
)
def test_backticks_in_values_make_valid_code_spans(value: object) -> None:
    name = "tags.`odd`|key"
    address = f"f[{Q}`x`]"
    markdown = render(one_change(value, name=name, address=address), "markdown")
    row = next(line for line in markdown.splitlines() if line.startswith("| ") and "old" in line)
    field, before, after = table_cells(row)
    assert code_spans(field) == [name]
    assert code_spans(before) == ['"old"']
    assert code_spans(after) == [value_text(value)]
    heading = next(line for line in markdown.splitlines() if line.startswith("#### "))
    assert code_spans(heading) == ["~", address]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "`plain`"),
        ("a`b", "``a`b``"),
        ("`x", "`` `x ``"),
        ("x``", "``` x`` ```"),
        (" a ", "`  a  `"),
        ("", "`  `"),
    ],
)
def test_code_span_delimiters(text: str, expected: str) -> None:
    assert code_span(text) == expected
    if text:  # an empty code span cannot exist; a blank one stands in
        assert code_spans(expected) == [text]


def test_html_and_markdown_in_warnings_are_shown_as_text() -> None:
    plan = one_change(5)
    plan.warnings.append("targeting is in effect (<details><summary>x</summary>): a & b")
    plan.changes[0].warnings.append("<script>alert(1)</script> *bold* [link](http://x) `c`")
    markdown = render(plan, "markdown")
    assert "<details><summary>x" not in markdown and "<script>" not in markdown
    assert (
        "> targeting is in effect (&lt;details&gt;&lt;summary&gt;x&lt;/summary&gt;): a &amp; b"
        in (markdown)
    )
    assert "> &lt;script&gt;alert(1)&lt;/script&gt; \\*bold\\* \\[link\\](http://x) \\`c\\`" in (
        markdown
    )


# -- region and account, warnings (issue 12) ----------------------------------------------------

EU_FN = "arn:aws:lambda:eu-west-1:210987654321:function:f"
EU_Q = "arn:aws:sqs:eu-west-1:210987654321:q"


def test_json_warnings_are_always_a_list() -> None:
    quiet = Plan([Change("update", f"f[{Q}]", FN, Q, "u-1", [FieldChange("batch_size", 1, 2)])])
    keys = {"format_version", "changes", "summary", "warnings"}
    assert set(json.loads(render(quiet, "json"))) == keys
    assert json.loads(render(Plan(), "json"))["warnings"] == []

    data = json.loads(render(sample_plan(), "json"))
    # A change's warning (read position lost) is named by the change's address.
    assert data["warnings"] == [f"f[{S}]: replacing this mapping discards its read position"]

    targeted = sample_plan()
    targeted.warnings.append("targeting is in effect (f): other changes are not shown")
    assert json.loads(render(targeted, "json"))["warnings"] == [
        "targeting is in effect (f): other changes are not shown",
        f"f[{S}]: replacing this mapping discards its read position",
    ]


def test_json_region_and_account_fall_back_to_the_plans_own() -> None:
    # A function ARN that does not name them (a fake endpoint's answer): the plan's scope.
    odd = Plan(
        [Change("delete", "f[q]", "", "q", "u-1")], region="ap-south-1", account="111122223333"
    )
    (change,) = json.loads(render(odd, "json"))["changes"]
    assert (change["region"], change["account"]) == ("ap-south-1", "111122223333")
    (unknown,) = json.loads(render(Plan([Change("delete", "f[q]", "", "q", "u-1")]), "json"))[
        "changes"
    ]
    assert set(unknown) == CHANGE_KEYS and unknown["region"] is None and unknown["account"] is None


def two_scope_plan() -> Plan:
    """Two regions' plans merged as `plan` shows them (planning.merge_plans)."""
    from esm_reconcile.planning import merge_plans

    us = Plan(
        [Change("update", f"f[{Q}]", FN, Q, "u-us", [FieldChange("batch_size", 1, 2)])],
        region="us-east-1",
        account="123456789012",
        warnings=["mapping u-us: PROBLEM: Function timed out"],
    )
    eu = Plan(
        [Change("delete", f"f[{EU_Q}]", EU_FN, EU_Q, "u-eu", [FieldChange("batch_size", 7, None)])],
        region="eu-west-1",
        account="210987654321",
    )
    return merge_plans([us, eu])


def test_a_merged_plan_keeps_each_changes_region_and_account() -> None:
    merged = two_scope_plan()
    assert merged.region is None and merged.account is None
    data = json.loads(render(merged, "json"))
    assert set(data) == {"format_version", "changes", "summary", "warnings"}
    assert [(c["uuid"], c["region"], c["account"]) for c in data["changes"]] == [
        ("u-us", "us-east-1", "123456789012"),
        ("u-eu", "eu-west-1", "210987654321"),
    ]
    assert data["warnings"] == ["us-east-1: mapping u-us: PROBLEM: Function timed out"]


def test_text_and_markdown_headers_name_region_and_account() -> None:
    plan = sample_plan()
    plan.region, plan.account = "us-east-1", "123456789012"
    text = render(plan, "text")
    assert text.splitlines()[0] == "Region us-east-1, account 123456789012"
    assert text.splitlines()[-1].startswith("Plan: ")
    markdown = render(plan, "markdown")
    lines = markdown.splitlines()
    assert lines[0].startswith("**Plan: ")
    assert lines[2] == "Region `us-east-1`, account `123456789012`"

    nothing = Plan(region="us-east-1", account="123456789012")
    assert render(nothing, "text") == "Region us-east-1, account 123456789012\n\nNo changes."
    assert "Region `us-east-1`, account `123456789012`" in render(nothing, "markdown")


def test_several_regions_are_named_in_the_header_and_per_change() -> None:
    merged = two_scope_plan()
    text = render(merged, "text")
    assert text.splitlines()[0] == (
        "2 regions/accounts: region us-east-1, account 123456789012; "
        "region eu-west-1, account 210987654321"
    )
    eu_block = next(b for b in text.split("\n\n") if b.startswith(f"- f[{EU_Q}]"))
    assert "    in: region eu-west-1, account 210987654321" in eu_block.splitlines()
    markdown = render(merged, "markdown")
    assert (
        "2 regions/accounts: region `us-east-1`, account `123456789012`; "
        "region `eu-west-1`, account `210987654321`"
    ) in markdown
    assert "region `eu-west-1`, account `210987654321`; uuid `u-eu`" in markdown

    # A scope without changes is still named once merge_plans records the scopes.
    merged.scopes = [("us-east-1", "123456789012"), ("eu-west-1", "210987654321")]
    merged.changes = []
    assert render(merged, "text").startswith("2 regions/accounts: region us-east-1")


# -- a delete shows what it throws away ----------------------------------------------------------


def delete_with_settings() -> Change:
    """A delete as diff makes it once it records the live settings (before, after None)."""
    return Change(
        "delete",
        f"f[{Q}2]",
        FN,
        Q + "2",
        "u-del",
        [
            FieldChange("batch_size", 10, None),
            FieldChange("enabled", False, None),
            FieldChange("filter_criteria.filters", [{"pattern": '{"a": [1]}'}], None),
            FieldChange("tags.team", "orders", None),
        ],
        kind="sqs",
    )


def test_a_delete_shows_the_settings_it_removes_in_text() -> None:
    text = render(Plan([delete_with_settings()]), "text")
    header, block, _summary = text.split("\n\n")
    assert header == "Region us-east-1, account 123456789012"  # from the function ARN
    assert block.splitlines() == [
        f"- f[{Q}2] will be deleted",
        "    uuid: u-del",
        "    batch_size = 10",
        "    enabled = false",
        '    filter_criteria.filters = [{"pattern": "{\\"a\\": [1]}"}]',
        '    tags.team = "orders"',
    ]
    assert "->" not in text


def test_a_delete_shows_the_settings_it_removes_in_markdown() -> None:
    markdown = render(Plan([delete_with_settings()]), "markdown")
    assert "uuid `u-del`" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert [table_cells(row) for row in rows] == [
        ["`batch_size`", "`10`", ""],
        ["`enabled`", "`false`", ""],
        ["`filter_criteria.filters`", '`[{"pattern": "{\\"a\\": [1]}"}]`', ""],
        ["`tags.team`", '`"orders"`', ""],
    ]


def test_a_delete_json_carries_the_removed_settings_as_before_values() -> None:
    (change,) = json.loads(render(Plan([delete_with_settings()]), "json"))["changes"]
    assert set(change) == CHANGE_KEYS
    assert change["fields"][0] == {
        "name": "batch_size",
        "before": 10,
        "after": None,
        "forces_replacement": False,
    }


def test_a_replace_shows_the_values_its_delete_throws_away() -> None:
    text = render(sample_plan(), "text")
    block = next(b for b in text.split("\n\n") if b.startswith(f"-/+ f[{S}]"))
    assert (
        block.splitlines()[1] == "    uuid: u-rep (deleted first; the new mapping gets a new uuid)"
    )
    assert '    starting_position: "LATEST" -> "TRIM_HORIZON"   # forces replacement' in block
    markdown = render(sample_plan(), "markdown")
    assert "uuid `u-rep`; deleted first; the new mapping gets a new uuid" in markdown
    assert '| `starting_position` (forces replacement) | `"LATEST"` | `"TRIM_HORIZON"` |' in (
        markdown
    )
