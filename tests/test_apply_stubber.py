"""Applier against a real boto3 Lambda client with botocore's Stubber (no network, no sleeping).

Responses follow the AWS state machine of reference B: Create → Creating → Enabled (or Disabled
with Enabled false), Update → Updating/Enabling/Disabling → settled, Delete → Deleting → gone
(Get raises ResourceNotFoundException).

With parallelism 1 the engine sends every call inline, so a Stubber can script its order: the
ready calls first, then the looks at what waits. Deletes go first; updates and creates wait
until every deleted mapping is gone (SPEC), then go out together (updates ranked first).
Where several mappings wait at once, the `steady` fixture takes the ±20 % jitter out of the
looks, so that they fall due together (a poll's Gets go out in UUID order) or a sweep of the
List answers for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from esm_reconcile.apply import ApplyResult, report_lines
from esm_reconcile.diff import diff
from esm_reconcile.model import DesiredMapping, LiveMapping, ManagedFunction
from esm_reconcile.plan import Change, FieldChange, Plan
from esm_reconcile.rules import Kind
from tests.aws_shapes import (
    ACCOUNT,
    FN,
    LAST_MODIFIED,
    NOT_FOUND,
    QUEUE,
    REGION,
    STREAM,
    ApplyHarness,
    U,
    esm_arn,
    stubbed_lambda,
)
from tests.aws_shapes import sqs_readback as mapping  # every mapping here reads back as SQS

QUEUE2 = f"arn:aws:sqs:{REGION}:{ACCOUNT}:refunds"

IN_USE_UPDATE = "Cannot update the event source mapping because it is in use."
IN_USE_DELETE = "Cannot delete the event source mapping because it is in use."


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def h() -> Iterator[ApplyHarness]:
    with stubbed_lambda() as harness:
        yield harness


@pytest.fixture
def steady(monkeypatch: pytest.MonkeyPatch) -> None:
    """Looks without jitter: waits that began together fall due together."""
    monkeypatch.setattr("esm_reconcile.engine.watcher._jitter", lambda seconds: seconds)


def change(action: str, source: str, uuid: str | None, kind: str = "sqs", **rest: Any) -> Change:
    """A change of orders-handler's mapping of `source`."""
    address = f"orders-handler[{source}]"
    return Change(action, address, FN, source, uuid, kind=kind, **rest)


def create(source: str = QUEUE, *, wait_gone: list[str] | None = None, **request: Any) -> Change:
    return change(
        "create",
        source,
        None,
        fields=[FieldChange("event_source_arn", None, source)],
        create_request={"FunctionName": FN, "EventSourceArn": source, **request},
        wait_gone=wait_gone or [],
    )


def update(uuid: str, source: str = QUEUE, tags: dict | None = None, **request: Any) -> Change:
    return change(
        "update",
        source,
        uuid,
        fields=[FieldChange("batch_size", 20, 10)],
        update_request={"UUID": uuid, **request} if request else None,
        tag_changes=tags,
    )


def delete(uuid: str, source: str = QUEUE) -> Change:
    return change("delete", source, uuid)


def replace(uuid: str, source: str = STREAM, position: str = "LATEST") -> Change:
    return change(
        "replace",
        source,
        uuid,
        kind="kinesis",
        fields=[FieldChange("starting_position", "TRIM_HORIZON", position, True)],
        create_request={"FunctionName": FN, "EventSourceArn": source, "StartingPosition": position},
    )


def create_settles(h: ApplyHarness, change: Change, uuid: str) -> None:
    """AWS accepts the next Create, of `change`, as `uuid`; the first Get finds it Enabled."""
    h.ok(
        "create_event_source_mapping",
        mapping(uuid, "Creating", change.event_source),
        **change.create_request,
    )
    h.get(mapping(uuid, "Enabled", change.event_source))


def update_settles(h: ApplyHarness, uuid: str, **request: Any) -> None:
    """AWS accepts the next Update, of `uuid` with `request`; the first Get finds it Enabled."""
    h.ok("update_event_source_mapping", mapping(uuid, "Updating"), UUID=uuid, **request)
    h.get(mapping(uuid, "Enabled"))


def gets_in_order(h: ApplyHarness, *responses: dict[str, Any]) -> None:
    """The next Gets, of mappings whose looks fall due together: one poll asks them in UUID
    order."""
    for response in sorted(responses, key=lambda r: r["UUID"]):
        h.get(response)


def sweep(h: ApplyHarness, *items: dict[str, Any]) -> None:
    """The next ListEventSourceMappings (a sweep: one page, unfiltered) lists `items`."""
    h.ok("list_event_source_mappings", {"EventSourceMappings": list(items)}, MaxItems=100)


def mutating(h: ApplyHarness) -> list[tuple[str, str]]:
    """The calls that change something, in order, each with the UUID or source it concerns."""
    return [
        (op.removesuffix("EventSourceMapping"), p.get("UUID") or p.get("EventSourceArn"))
        for op, p in h.calls
        if op.startswith(("Create", "Update", "Delete"))
    ]


def statuses(result: ApplyResult) -> list[str]:
    return [o.status for o in result.outcomes]


# -- create ---------------------------------------------------------------------------------------


def test_create_waits_until_enabled_with_backoff(h: ApplyHarness) -> None:
    change = create()
    h.ok("create_event_source_mapping", mapping(U("new-1"), "Creating"), **change.create_request)
    for _ in range(3):
        h.get(mapping(U("new-1"), "Creating"))
    h.get(mapping(U("new-1"), "Enabled"))

    result = h.apply(change)

    assert statuses(result) == ["done"]
    assert result.ok and result.changed and not result.interrupted
    assert h.ops == ["CreateEventSourceMapping"] + ["GetEventSourceMapping"] * 4
    assert result.outcomes[0].created_uuid == U("new-1")
    assert change.uuid is None  # the plan is not rewritten by apply
    # A sleep before every Get (Create just said Creating: no point asking at once), growing
    # (1 s, 2 s, 4 s, 8 s ± 20 % jitter).
    assert len(h.time.sleeps) == 4
    first, second, third, fourth = h.time.sleeps
    assert 0.8 <= first <= 1.2
    assert 1.6 <= second <= 2.4
    assert 3.2 <= third <= 4.8
    assert 6.4 <= fourth <= 9.6


def test_create_backoff_is_capped(h: ApplyHarness) -> None:
    change = create()
    h.ok("create_event_source_mapping", mapping(U("new-1"), "Creating"))
    for _ in range(8):
        h.get(mapping(U("new-1"), "Creating"))
    h.get(mapping(U("new-1"), "Enabled"))

    result = h.apply(change)

    assert statuses(result) == ["done"]
    assert len(h.time.sleeps) == 9
    assert max(h.time.sleeps) <= 10 * 1.2
    assert h.time.sleeps[-1] >= 10 * 0.8


def test_create_disabled_settles_as_disabled(h: ApplyHarness) -> None:
    change = create(Enabled=False)
    h.ok(
        "create_event_source_mapping",
        mapping(U("new-1"), "Disabled"),
        FunctionName=FN,
        EventSourceArn=QUEUE,
        Enabled=False,
    )

    result = h.apply(change)

    # AWS answers a disabled create with Disabled: settled already, nothing to poll.
    assert statuses(result) == ["done"]
    assert h.ops == ["CreateEventSourceMapping"]
    assert h.time.sleeps == []


def test_create_waits_for_deleting_mapping_of_same_identity_first(h: ApplyHarness) -> None:
    """A mapping still Deleting at plan time is looked at once apply starts (no call of this
    apply said anything about it), and the create goes only once it is gone."""
    change = create(wait_gone=[U("old-1")])
    h.get(mapping(U("old-1"), "Deleting"))
    h.gone(U("old-1"))
    create_settles(h, change, U("new-1"))

    result = h.apply(change)

    assert statuses(result) == ["done"]
    assert h.ops == [
        "GetEventSourceMapping",
        "GetEventSourceMapping",
        "CreateEventSourceMapping",
        "GetEventSourceMapping",
    ]
    assert [p["UUID"] for op, p in h.calls if op == "GetEventSourceMapping"] == [
        U("old-1"),
        U("old-1"),
        U("new-1"),
    ]
    # No sleep before the first look at old-1; ~1 s before the second, and before new-1's.
    assert len(h.time.sleeps) == 2 and all(0.8 <= s <= 1.2 for s in h.time.sleeps)


# -- update ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_fields", "transition", "settled"),
    [
        ({"BatchSize": 10}, "Updating", "Enabled"),
        ({"Enabled": True}, "Enabling", "Enabled"),
        ({"Enabled": False}, "Disabling", "Disabled"),
    ],
)
def test_update_waits_until_settled(
    h: ApplyHarness, request_fields: dict[str, Any], transition: str, settled: str
) -> None:
    change = update(U("u-1"), **request_fields)
    h.ok(
        "update_event_source_mapping",
        mapping(U("u-1"), transition),
        UUID=U("u-1"),
        **request_fields,
    )
    h.get(mapping(U("u-1"), transition))
    h.get(mapping(U("u-1"), settled))

    result = h.apply(change)

    assert statuses(result) == ["done"]
    assert h.ops == [
        "UpdateEventSourceMapping",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
    ]
    assert len(h.time.sleeps) == 2  # Update said it is in transition: no Get at once


def test_update_in_use_is_sent_again_after_a_backoff(h: ApplyHarness) -> None:
    """ResourceInUseException: the mapping is mid-transition. The same Update is sent again
    after a backoff (its next answer is the look at its state: no Gets in between)."""
    change = update(U("u-1"), BatchSize=10)
    h.error("update_event_source_mapping", "ResourceInUseException", IN_USE_UPDATE)
    h.error("update_event_source_mapping", "ResourceInUseException", IN_USE_UPDATE)
    update_settles(h, U("u-1"), BatchSize=10)

    result = h.apply(change)

    assert statuses(result) == ["done"], result.outcomes[0].message
    assert h.ops == [
        "UpdateEventSourceMapping",
        "UpdateEventSourceMapping",
        "UpdateEventSourceMapping",
        "GetEventSourceMapping",
    ]
    assert [p for op, p in h.calls if op == "UpdateEventSourceMapping"] == [
        {"UUID": U("u-1"), "BatchSize": 10}
    ] * 3
    # Sent again after ~1 s, then ~2 s; the accepted Update's mapping is looked at after ~1 s.
    first, second, look = h.time.sleeps
    assert 0.8 <= first <= 1.2 and 1.6 <= second <= 2.4 and 0.8 <= look <= 1.2


def test_update_in_use_beyond_its_budget_fails_with_aws_words(h: ApplyHarness) -> None:
    # Sent at 0 s, ~1 s, ~3 s, ~7 s (all within the 10 s budget) and ~15 s: then it fails.
    for _ in range(5):
        h.error("update_event_source_mapping", "ResourceInUseException", IN_USE_UPDATE)

    result = h.apply(update(U("u-1"), BatchSize=10), timeouts={"update": 10.0})

    (outcome,) = result.outcomes
    assert (outcome.status, outcome.step) == ("failed", "update")
    assert IN_USE_UPDATE in outcome.message
    assert h.ops == ["UpdateEventSourceMapping"] * 5
    assert not result.ok


# -- delete ---------------------------------------------------------------------------------------


def test_delete_waits_until_gone(h: ApplyHarness) -> None:
    h.ok("delete_event_source_mapping", mapping(U("u-1"), "Deleting"), UUID=U("u-1"))
    h.get(mapping(U("u-1"), "Deleting"))
    h.gone(U("u-1"))

    result = h.apply(delete(U("u-1")))

    assert statuses(result) == ["done"]
    assert result.ok
    assert h.ops == [
        "DeleteEventSourceMapping",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
    ]


def test_delete_is_first_looked_at_after_poll_start(h: ApplyHarness) -> None:
    """Delete answered Deleting: no point asking at once; the first Get is ~poll_start later."""
    h.ok("delete_event_source_mapping", mapping(U("u-1"), "Deleting"), UUID=U("u-1"))
    h.gone(U("u-1"))

    result = h.apply(delete(U("u-1")), poll_start=3.0)

    assert statuses(result) == ["done"]
    assert h.ops == ["DeleteEventSourceMapping", "GetEventSourceMapping"]
    (slept,) = h.time.sleeps
    assert 3 * 0.8 <= slept <= 3 * 1.2


def test_delete_of_already_gone_mapping_counts_as_done(h: ApplyHarness) -> None:
    h.error(
        "delete_event_source_mapping", "ResourceNotFoundException", NOT_FOUND, 404, UUID=U("u-1")
    )

    result = h.apply(delete(U("u-1")))

    assert statuses(result) == ["done"]
    assert result.ok
    assert h.ops == ["DeleteEventSourceMapping"]  # gone already: nothing to wait for
    assert h.time.sleeps == []


def test_delete_in_use_is_sent_again_after_a_backoff(h: ApplyHarness) -> None:
    h.error("delete_event_source_mapping", "ResourceInUseException", IN_USE_DELETE, UUID=U("u-1"))
    h.ok("delete_event_source_mapping", mapping(U("u-1"), "Deleting"), UUID=U("u-1"))
    h.gone(U("u-1"))

    result = h.apply(delete(U("u-1")))

    assert statuses(result) == ["done"], result.outcomes[0].message
    assert h.ops == [
        "DeleteEventSourceMapping",
        "DeleteEventSourceMapping",
        "GetEventSourceMapping",
    ]
    assert 0.8 <= h.time.sleeps[0] <= 1.2  # a backoff before sending it again


# -- replace and ordering -------------------------------------------------------------------------


def test_replace_deletes_waits_gone_then_creates(h: ApplyHarness) -> None:
    change = replace(U("old-1"))
    h.ok(
        "delete_event_source_mapping",
        mapping(U("old-1"), "Deleting", source=STREAM),
        UUID=U("old-1"),
    )
    h.get(mapping(U("old-1"), "Deleting"))
    h.gone(U("old-1"))
    create_settles(h, change, U("new-1"))

    result = h.apply(change)

    assert statuses(result) == ["done"]
    assert result.ok
    assert h.ops == [
        "DeleteEventSourceMapping",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
        "CreateEventSourceMapping",
        "GetEventSourceMapping",
    ]
    assert [p.get("UUID") for _, p in h.calls] == [
        U("old-1"),
        U("old-1"),
        U("old-1"),
        None,
        U("new-1"),
    ]


@pytest.mark.usefixtures("steady")
def test_deletes_go_first_then_updates_and_creates_all_at_once(h: ApplyHarness) -> None:
    """SPEC: deletes (and replaces' deletes) first, all at once, each waited until gone; then
    every update and create at once. No phase waits for a group to settle: the creates go out
    before the update has settled."""
    c_create = create(QUEUE2)
    c_update = update(U("u-upd"), BatchSize=10)
    c_replace = replace(U("u-rep"))
    c_delete = delete(U("u-del"))

    h.ok("delete_event_source_mapping", mapping(U("u-rep"), "Deleting", STREAM), UUID=U("u-rep"))
    h.ok("delete_event_source_mapping", mapping(U("u-del"), "Deleting"), UUID=U("u-del"))
    for uuid in sorted([U("u-rep"), U("u-del")]):  # due together: one poll, in UUID order
        h.gone(uuid)
    h.ok(
        "update_event_source_mapping",
        mapping(U("u-upd"), "Updating"),
        UUID=U("u-upd"),
        BatchSize=10,
    )
    h.ok("create_event_source_mapping", mapping(U("new-c"), "Creating", QUEUE2))
    h.ok("create_event_source_mapping", mapping(U("new-r"), "Creating", STREAM))
    gets_in_order(
        h,
        mapping(U("u-upd"), "Enabled"),
        mapping(U("new-c"), "Enabled", QUEUE2),
        mapping(U("new-r"), "Enabled", STREAM),
    )

    # The plan lists them in the "wrong" order on purpose: apply owns the ordering.
    result = h.apply(c_create, c_update, c_replace, c_delete)

    assert statuses(result) == ["done"] * 4
    assert h.ops == [
        "DeleteEventSourceMapping",
        "DeleteEventSourceMapping",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
        "UpdateEventSourceMapping",
        "CreateEventSourceMapping",
        "CreateEventSourceMapping",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
    ]
    assert mutating(h) == [
        ("Delete", U("u-rep")),
        ("Delete", U("u-del")),
        ("Update", U("u-upd")),
        ("Create", QUEUE2),
        ("Create", STREAM),
    ]


@pytest.mark.parametrize("deleted_source", [QUEUE2, QUEUE], ids=["same source", "another"])
@pytest.mark.parametrize("later", ["create", "update"])
def test_an_update_or_create_waits_until_every_delete_is_gone(
    h: ApplyHarness, later: str, deleted_source: str
) -> None:
    """A mapping being deleted holds its (function, source) until it is gone, so a create of
    that identity must wait; SPEC goes further: every update and create waits for every
    delete."""
    change = create(QUEUE2) if later == "create" else update(U("u-1"), QUEUE2, BatchSize=10)
    h.ok(
        "delete_event_source_mapping",
        mapping(U("old"), "Deleting", deleted_source),
        UUID=U("old"),
    )
    h.get(mapping(U("old"), "Deleting", deleted_source))
    h.gone(U("old"))
    if later == "create":
        create_settles(h, change, U("new-1"))
    else:
        update_settles(h, U("u-1"), BatchSize=10)

    result = h.apply(change, delete(U("old"), deleted_source))

    assert statuses(result) == ["done", "done"]
    assert h.ops == [
        "DeleteEventSourceMapping",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
        f"{later.capitalize()}EventSourceMapping",
        "GetEventSourceMapping",
    ]


@pytest.mark.usefixtures("steady")
def test_a_sweep_ends_only_the_waits_it_can_vouch_for(h: ApplyHarness) -> None:
    """A List may lag behind Get. A mapping it does not list yet after a Create, or lists
    settled with no later LastModified than the Update's answer (which may be its state
    before the Update), is asked by Get."""
    listed, unlisted = create(QUEUE), create(QUEUE2)
    moved, unmoved = update(U("u-moved"), BatchSize=10), update(U("u-same"), BatchSize=10)
    for uuid in (U("u-moved"), U("u-same")):
        h.ok("update_event_source_mapping", mapping(uuid, "Updating"), UUID=uuid, BatchSize=10)
    h.ok("create_event_source_mapping", mapping(U("new-a"), "Creating"), **listed.create_request)
    h.ok(
        "create_event_source_mapping",
        mapping(U("new-b"), "Creating", QUEUE2),
        **unlisted.create_request,
    )
    later = LAST_MODIFIED + timedelta(seconds=5)
    sweep(
        h,
        mapping(U("new-a"), "Enabled"),
        mapping(U("u-moved"), "Enabled", BatchSize=10, LastModified=later),
        mapping(U("u-same"), "Enabled", BatchSize=10),  # LastModified as the Update answered
    )
    gets_in_order(h, mapping(U("new-b"), "Enabled", QUEUE2), mapping(U("u-same"), "Enabled"))

    result = h.apply(listed, unlisted, moved, unmoved)

    assert statuses(result) == ["done"] * 4
    assert h.ops[4:] == [
        "ListEventSourceMappings",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
    ]
    assert {p["UUID"] for op, p in h.calls if op == "GetEventSourceMapping"} == {
        U("new-b"),
        U("u-same"),
    }


def test_replace_whose_delete_fails_never_creates(h: ApplyHarness) -> None:
    # Not a 5xx: those are retried within the delete budget (see the fault-injection tests).
    h.error(
        "delete_event_source_mapping", "AccessDeniedException", "not allowed", 403, UUID=U("u-rep")
    )
    independent = create(QUEUE2)
    create_settles(h, independent, U("new-c"))

    result = h.apply(replace(U("u-rep")), independent)

    assert statuses(result) == ["failed", "done"]
    failed = result.outcomes[0]
    assert failed.step == "delete"
    assert "not allowed" in failed.message
    creates = [p for op, p in h.calls if op == "CreateEventSourceMapping"]
    assert [p["EventSourceArn"] for p in creates] == [QUEUE2]
    assert not result.ok


def test_replace_whose_delete_never_finishes_never_creates(h: ApplyHarness) -> None:
    h.time.jump = 200.0  # a look at 200 s; at 400 s the 5-minute delete budget is spent
    h.ok("delete_event_source_mapping", mapping(U("u-rep"), "Deleting", STREAM), UUID=U("u-rep"))
    h.get(mapping(U("u-rep"), "Deleting"))

    result = h.apply(replace(U("u-rep")))

    assert statuses(result) == ["failed"]
    assert "300" in result.outcomes[0].message
    assert "CreateEventSourceMapping" not in h.ops


# -- partial failure ------------------------------------------------------------------------------

UNSUPPORTED = "Unsupported ParallelizationFactor parameter for given event source mapping type."


@pytest.mark.usefixtures("steady")
def test_failed_create_does_not_stop_independent_changes(h: ApplyHarness) -> None:
    bad = create(QUEUE, ParallelizationFactor=2)
    good = create(QUEUE2)
    upd = update(U("u-upd"), BatchSize=10)
    h.ok(
        "update_event_source_mapping",
        mapping(U("u-upd"), "Updating"),
        UUID=U("u-upd"),
        BatchSize=10,
    )
    h.error(
        "create_event_source_mapping",
        "InvalidParameterValueException",
        UNSUPPORTED,
        **bad.create_request,
    )
    h.ok("create_event_source_mapping", mapping(U("new-2"), "Creating", QUEUE2))
    gets_in_order(h, mapping(U("u-upd"), "Enabled"), mapping(U("new-2"), "Enabled", QUEUE2))

    result = h.apply(bad, good, upd)

    assert statuses(result) == ["failed", "done", "done"]
    failed = result.by_status("failed")
    assert [o.change for o in failed] == [bad]
    assert UNSUPPORTED in failed[0].message
    assert bad.address not in failed[0].message  # the summary line names it once
    assert not result.ok
    assert result.changed
    assert not result.interrupted


def test_failed_update_does_not_stop_a_later_create(h: ApplyHarness) -> None:
    upd = update(U("u-upd"), BatchSize=10)
    new = create(QUEUE2)
    h.error("update_event_source_mapping", "InvalidParameterValueException", "bad batch")
    create_settles(h, new, U("new-2"))

    result = h.apply(upd, new)

    assert statuses(result) == ["failed", "done"]
    assert "bad batch" in result.outcomes[0].message
    assert not result.ok


# -- timeouts -------------------------------------------------------------------------------------


def test_create_wait_times_out(h: ApplyHarness) -> None:
    h.time.jump = 300.0  # a look at 300 s; at 600 s the 10-minute budget is spent
    change = create()
    h.ok("create_event_source_mapping", mapping(U("new-1"), "Creating"))
    h.get(mapping(U("new-1"), "Creating"))

    result = h.apply(change)

    # AWS accepted the create: the mapping exists, so it is counted, as still settling.
    (outcome,) = result.outcomes
    assert (outcome.status, outcome.settling, outcome.created_uuid) == ("done", True, U("new-1"))
    assert outcome.message == (
        f"AWS created {U('new-1')}; it was still Creating, not settled after 600 s"
    )
    assert h.ops.count("GetEventSourceMapping") == 1
    assert not result.ok and not result.interrupted
    report = report_lines(result)
    assert report[0] == (
        "Apply incomplete: 1 created, 0 updated, 0 replaced, 0 deleted (1 still settling)."
    )
    assert report[-1].startswith("Still settling: re-run apply (or plan)")


def test_update_wait_times_out_with_custom_budget(h: ApplyHarness) -> None:
    h.time.jump = 30.0
    h.ok("update_event_source_mapping", mapping(U("u-1"), "Updating"), UUID=U("u-1"), BatchSize=10)
    h.get(mapping(U("u-1"), "Updating"))  # a look at 30 s; at 60 s the budget is spent

    result = h.apply(update(U("u-1"), BatchSize=10), timeouts={"update": 60.0})

    assert statuses(result) == ["done"] and result.outcomes[0].settling
    assert result.outcomes[0].message == (
        f"AWS accepted the update of {U('u-1')}; it was still Updating, not settled after 60 s"
    )
    assert h.ops == ["UpdateEventSourceMapping", "GetEventSourceMapping"]
    assert not result.ok


# -- interrupts -----------------------------------------------------------------------------------


def test_a_stop_sends_nothing_more(h: ApplyHarness) -> None:
    """The first Ctrl-C right after the first call's answer: the ready calls not yet sent
    stay unsent, and the accepted one is counted, as still settling."""
    applier = h.applier()

    def stop_after_update(**_: Any) -> None:
        applier.stop_requested = True  # as the first Ctrl-C does

    h.client.meta.events.register("after-call.lambda.UpdateEventSourceMapping", stop_after_update)
    first, second, third = (
        update(U("u-1"), BatchSize=10),
        update(U("u-2"), BatchSize=10),
        create(QUEUE2),
    )
    h.ok("update_event_source_mapping", mapping(U("u-1"), "Updating"), UUID=U("u-1"), BatchSize=10)

    result = applier.apply(Plan(changes=[first, second, third]))

    assert result.interrupted
    assert not result.ok
    assert statuses(result) == ["done", "skipped", "skipped"]
    assert result.outcomes[0].settling
    assert h.ops == ["UpdateEventSourceMapping"]
    assert [o.message for o in result.by_status("skipped")] == ["interrupted before it started"] * 2


def test_stop_while_waiting_abandons_the_wait(h: ApplyHarness) -> None:
    """A stop while mappings wait: no more looks, and a create still waiting for a mapping to
    be gone never starts."""
    applier = h.applier()

    def stop(**_: Any) -> None:
        applier.stop_requested = True

    h.client.meta.events.register("after-call.lambda.GetEventSourceMapping", stop)
    h.ok("create_event_source_mapping", mapping(U("new-1"), "Creating"))
    h.get(mapping(U("old-2"), "Deleting", QUEUE2))

    result = applier.apply(Plan(changes=[create(), create(QUEUE2, wait_gone=[U("old-2")])]))

    assert result.interrupted
    # The first create was accepted (done, still settling); the second never started.
    assert statuses(result) == ["done", "skipped"]
    assert result.outcomes[0].settling and result.outcomes[0].created_uuid == U("new-1")
    assert result.outcomes[1].message == "interrupted before it started"
    assert h.ops == ["CreateEventSourceMapping", "GetEventSourceMapping"]
    assert h.calls[1][1] == {"UUID": U("old-2")}


# -- tags -----------------------------------------------------------------------------------------


def test_tag_convergence_calls_tag_and_untag(h: ApplyHarness) -> None:
    tags = {"arn": esm_arn(U("u-1")), "set": {"team": "orders", "env": "prod"}, "remove": ["old"]}
    h.ok("tag_resource", {}, Resource=esm_arn(U("u-1")), Tags={"team": "orders", "env": "prod"})
    h.ok("untag_resource", {}, Resource=esm_arn(U("u-1")), TagKeys=["old"])

    result = h.apply(update(U("u-1"), tags=tags))

    assert statuses(result) == ["done"]
    assert h.ops == ["TagResource", "UntagResource"]


def test_tag_only_additions_do_not_untag(h: ApplyHarness) -> None:
    tags = {"arn": esm_arn(U("u-1")), "set": {"team": "orders"}, "remove": []}
    h.ok("tag_resource", {}, Resource=esm_arn(U("u-1")), Tags={"team": "orders"})

    result = h.apply(update(U("u-1"), tags=tags))

    assert statuses(result) == ["done"]
    assert h.ops == ["TagResource"]


def test_settings_and_tags_update_together(h: ApplyHarness) -> None:
    tags = {"arn": esm_arn(U("u-1")), "set": {}, "remove": ["old"]}
    update_settles(h, U("u-1"), BatchSize=10)
    h.ok("untag_resource", {}, Resource=esm_arn(U("u-1")), TagKeys=["old"])

    result = h.apply(update(U("u-1"), tags=tags, BatchSize=10))

    assert statuses(result) == ["done"]
    assert h.ops == ["UpdateEventSourceMapping", "GetEventSourceMapping", "UntagResource"]


@pytest.mark.usefixtures("steady")
def test_plan_from_diff_applies_exactly_its_requests(h: ApplyHarness) -> None:
    """diff → apply: what the plan shows is what is sent (update, tags, create)."""
    desired = [
        DesiredMapping(
            function="orders-handler",
            kind=Kind.SQS,
            settings={"event_source_arn": QUEUE, "tags": {"team": "orders"}},
            ignore_changes=(),
            file="spec.yaml",
            line=3,
        ),
        DesiredMapping(
            function="orders-handler",
            kind=Kind.SQS,
            settings={"event_source_arn": QUEUE2, "batch_size": 5},
            ignore_changes=(),
            file="spec.yaml",
            line=6,
        ),
    ]
    live = LiveMapping.from_response(mapping(U("u-1"), "Enabled", BatchSize=20))
    live.tags = {"team": "payments", "old": "x"}
    plan = diff([ManagedFunction("orders-handler", FN, desired)], [live])
    assert [c.action for c in plan.changes] == ["update", "create"]

    h.ok("update_event_source_mapping", mapping(U("u-1"), "Updating"), UUID=U("u-1"), BatchSize=10)
    h.ok(
        "create_event_source_mapping",
        mapping(U("new-2"), "Creating", QUEUE2),
        FunctionName=FN,
        EventSourceArn=QUEUE2,
        BatchSize=5,
    )
    gets_in_order(h, mapping(U("u-1"), "Enabled"), mapping(U("new-2"), "Enabled", QUEUE2))
    # The tags once the update settled.
    h.ok("tag_resource", {}, Resource=esm_arn(U("u-1")), Tags={"team": "orders"})
    h.ok("untag_resource", {}, Resource=esm_arn(U("u-1")), TagKeys=["old"])

    result = h.applier().apply(plan)

    assert statuses(result) == ["done", "done"]
    assert result.ok


def test_waiting_reports_elapsed_time_only_when_asked(h: ApplyHarness) -> None:
    """A terminal gets "waiting (N s)" lines; logs get one line per action."""
    for waiting in (None, []):
        change = create()
        h.ok(
            "create_event_source_mapping", mapping(U("new-1"), "Creating"), **change.create_request
        )
        h.get(mapping(U("new-1"), "Creating"))
        h.get(mapping(U("new-1"), "Enabled"))
        h.messages.clear()
        extra = {} if waiting is None else {"waiting": waiting.append}
        assert statuses(h.apply(change, **extra)) == ["done"]
        assert not any("waiting" in m for m in h.messages)
        if waiting is not None:
            assert waiting and all(re.search(r"waiting \(\d+ s\)$", m) for m in waiting)
