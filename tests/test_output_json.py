"""`esm apply --format json`: exactly one JSON document, in the SPEC's shape (issue 12).

The outcomes come from a real apply against the fake Lambda (tests/fake_lambda.py), so the
document is checked against what the engine really reports."""

from __future__ import annotations

import json
from typing import Any

from esm_reconcile.outcomes import ApplyResult, Outcome, apply_document, apply_json
from esm_reconcile.plan import Change, FieldChange, Plan
from tests.fake_lambda import FN, FakeLambda, applier, client_error, create, queue, replace_of
from tests.spec_json import APPLY_KEYS as TOP_KEYS
from tests.spec_json import CHANGE_KEYS, PLAN_KEYS

OUTCOME_KEYS = {"address", "action", "status", "message", "uuid"}  # SPEC
OUTCOME_EXTRAS = {"adopted", "settling", "region", "account"}
SUMMARY_KEYS = {"created", "updated", "replaced", "deleted", "failed", "skipped"}  # SPEC
SUMMARY_EXTRAS = {"adopted", "settling"}


def one_document(text: str) -> Any:
    """The one JSON value `text` holds, with nothing before or after it."""
    decoder = json.JSONDecoder()
    value, end = decoder.raw_decode(text)
    assert text[end:].strip() == "", text[end:]
    assert json.loads(text) == value
    return value


def check_shape(document: dict[str, Any]) -> None:
    assert set(document) == TOP_KEYS
    assert document["format_version"] == "1"
    plan = document["plan"]
    assert PLAN_KEYS <= set(plan) <= PLAN_KEYS | {"warnings"}
    for change in plan["changes"]:
        assert set(change) == CHANGE_KEYS
        assert change["action"] in ("create", "update", "replace", "delete")
        for field in change["fields"]:
            assert set(field) == {"name", "before", "after", "forces_replacement"}
    for outcome in document["outcomes"]:
        assert OUTCOME_KEYS <= set(outcome) <= OUTCOME_KEYS | OUTCOME_EXTRAS
        assert outcome["status"] in ("done", "failed", "skipped")
        assert isinstance(outcome["message"], str)
    summary = document["summary"]
    assert SUMMARY_KEYS <= set(summary) <= SUMMARY_KEYS | SUMMARY_EXTRAS
    assert all(type(count) is int for count in summary.values())


def update_of(uuid: str, i: int, batch_size: int) -> Change:
    return Change(
        "update",
        f"worker[{queue(i)}]",
        FN,
        queue(i),
        uuid,
        [FieldChange("batch_size", 10, batch_size)],
        kind="sqs",
        update_request={"UUID": uuid, "BatchSize": batch_size},
    )


def delete_of(uuid: str, i: int) -> Change:
    return Change(
        "delete",
        f"worker[{queue(i)}]",
        FN,
        queue(i),
        uuid,
        [FieldChange("batch_size", 10, None)],
        kind="sqs",
    )


def test_an_apply_is_one_document_with_plan_outcomes_and_summary() -> None:
    fake = FakeLambda()
    for uuid, i in (("u-del", 1), ("u-rep", 2), ("u-upd", 3)):
        fake.add(uuid, FN, queue(i), BatchSize=10)
    plan = Plan(
        [delete_of("u-del", 1), replace_of("u-rep", 2), update_of("u-upd", 3, 5), create(4)],
        region="us-east-1",
        account="123456789012",
    )
    result = applier(fake, parallelism=2).apply(plan)

    document = one_document(apply_json(plan, result))
    check_shape(document)
    assert document["plan"] == json.loads(json.dumps(plan.to_json()))
    assert document["summary"] == {
        "created": 1,
        "adopted": 0,
        "updated": 1,
        "replaced": 1,
        "deleted": 1,
        "failed": 0,
        "skipped": 0,
        "settling": 0,
    }
    by_action = {o["action"]: o for o in document["outcomes"]}
    assert all(o["status"] == "done" for o in document["outcomes"])
    new = {m["EventSourceArn"]: uuid for uuid, m in fake.mappings.items()}
    # uuid: the mapping's after the change, the new one for a create or replace.
    assert by_action["create"]["uuid"] == new[queue(4)]
    assert by_action["replace"]["uuid"] == new[queue(2)] != "u-rep"
    assert by_action["update"]["uuid"] == "u-upd"
    assert by_action["delete"]["uuid"] == "u-del"
    assert by_action["create"]["address"] == f"worker[{queue(4)}]"
    assert {(o["region"], o["account"]) for o in document["outcomes"]} == {
        ("us-east-1", "123456789012")
    }


def test_a_failed_change_is_named_and_counted() -> None:
    fake = FakeLambda()
    fake.script["create"] = [client_error("InvalidParameterValueException", "bad batch size")]
    plan = Plan([create(1), create(2)])
    result = applier(fake, parallelism=1).apply(plan)

    document = one_document(apply_json(plan, result))
    check_shape(document)
    statuses = sorted(o["status"] for o in document["outcomes"])
    assert statuses == ["done", "failed"]
    failed = next(o for o in document["outcomes"] if o["status"] == "failed")
    assert "bad batch size" in failed["message"]
    assert document["summary"]["failed"] == 1 and document["summary"]["created"] == 1


def test_nothing_to_do_is_still_one_document() -> None:
    document = one_document(apply_json(Plan(region="us-east-1"), ApplyResult()))
    check_shape(document)
    assert document["outcomes"] == [] and document["plan"]["changes"] == []
    assert set(document["summary"].values()) == {0}


def test_skipped_outcomes_and_warnings_keep_the_shape() -> None:
    change = replace_of("u-rep", 1)
    change.warnings.append("replacing this mapping discards its read position")
    plan = Plan([change], warnings=["targeting is in effect (worker)"])
    result = ApplyResult([Outcome(change, "skipped", "apply was interrupted")], interrupted=True)
    document = apply_document(plan, result)
    check_shape(one_document(apply_json(plan, result)))
    assert document["plan"]["warnings"] == [
        "targeting is in effect (worker)",
        f"worker[{queue(1)}]: replacing this mapping discards its read position",
    ]
    (outcome,) = document["outcomes"]
    assert (outcome["status"], outcome["uuid"]) == ("skipped", None)
    assert document["summary"]["skipped"] == 1


def test_messages_with_control_characters_stay_one_valid_document() -> None:
    change = create(1)
    hostile = 'AWS said: "no"\n\x1b[2J\u202e}{"format_version": "2"}'
    result = ApplyResult([Outcome(change, "failed", hostile)])
    text = apply_json(Plan([change]), result)
    assert "\x1b" not in text and "\u202e" not in text
    document = one_document(text)
    assert document["outcomes"][0]["message"] == hostile
