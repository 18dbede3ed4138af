"""Renderers: text (Terraform-style), JSON (SPEC shape), Markdown."""

from __future__ import annotations

import json

from esm_reconcile.plan import Change, FieldChange, Plan
from esm_reconcile.render import render, summary_line

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
    assert set(data) == {"format_version", "changes", "summary"}
    assert data["format_version"] == "1"
    assert data["summary"] == {"create": 1, "update": 1, "replace": 1, "delete": 1}
    update = next(c for c in data["changes"] if c["action"] == "update")
    assert update == {
        "action": "update",
        "address": f"f[{Q}]",
        "function_arn": FN,
        "event_source": Q,
        "uuid": "u-upd",
        "fields": [{"name": "batch_size", "before": 10, "after": 50, "forces_replacement": False}],
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
