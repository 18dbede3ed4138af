"""Apply with several calls in flight, deletes before updates and creates, watching many
mappings (List sweeps and Gets), IAM-propagation retries, conflict adoption, transient failures
and interrupts, against the thread-safe fake of the mapping API (tests/fake_lambda.py): a
Stubber answers in a fixed order, which concurrent calls cannot keep."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from esm_reconcile.apply import PROPAGATION_TIMEOUT, Applier, is_propagation_error
from esm_reconcile.diff import reconcile_existing
from esm_reconcile.model import LiveMapping
from esm_reconcile.plan import Change, Plan
from tests.aws_shapes import ACCOUNT, FakeTime
from tests.fake_lambda import (
    FN,
    OTHER_FN,
    FakeLambda,
    applier,
    client_error,
    create,
    delete,
    queue,
    replace_of,
)

WATCHER = "esm_reconcile.engine.watcher"
NEVER = 10**9  # looks until a transition ends: it never does while the test runs

ROLE_NOT_READY = (
    "The provided execution role does not have permissions to call ReceiveMessage on SQS"
)


# -- changes on the fake ------------------------------------------------------------------------


def _update(i: int) -> Change:
    """An update of the mapping u-i (of queue i) to batch size 3."""
    return Change(
        "update",
        f"worker[{queue(i)}]",
        FN,
        queue(i),
        f"u-{i}",
        update_request={"UUID": f"u-{i}", "BatchSize": 3},
    )


def _plan_of(action: str, fake: FakeLambda, count: int) -> Plan:
    """`count` changes of one action on the fake (existing mappings u-0... for updates and
    deletes)."""
    if action != "create":
        for i in range(count):
            fake.add(f"u-{i}", FN, queue(i))
    if action == "create":
        return Plan([create(i) for i in range(count)])
    if action == "update":
        return Plan([_update(i) for i in range(count)])
    return Plan([delete(f"u-{i}", i) for i in range(count)])


# -- concurrency --------------------------------------------------------------------------------


def _most_at_once(calls: list[Any]) -> int:
    """The most of these calls that were in flight at one time."""
    edges = sorted([(c.started, 1) for c in calls] + [(c.ended, -1) for c in calls])
    most = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


def test_independent_creates_overlap_up_to_the_parallelism() -> None:
    fake = FakeLambda(call_seconds=0.02)
    result = applier(fake, parallelism=4).apply(Plan([create(i) for i in range(16)]))
    assert result.ok and len(result.by_status("done")) == 16
    assert 1 < _most_at_once(fake.ops("create")) <= 4
    assert len(fake.mappings) == 16


def test_one_worker_runs_changes_one_after_another() -> None:
    fake = FakeLambda(call_seconds=0.005)
    result = applier(fake, parallelism=1).apply(Plan([create(i) for i in range(5)]))
    assert result.ok and fake.max_in_flight == 1
    assert all(a.ended <= b.started for a, b in zip(fake.calls, fake.calls[1:], strict=False))


def test_a_replaces_create_waits_until_its_own_old_mapping_is_gone() -> None:
    fake = FakeLambda(settle_polls=3, call_seconds=0.002)
    for i in range(4):
        fake.add(f"old-{i}", FN, queue(i))
    plan = Plan([replace_of(f"old-{i}", i) for i in range(4)])
    result = applier(fake, parallelism=8).apply(plan)
    assert result.ok, [o.message for o in result.outcomes]
    for i in range(4):
        (create_call,) = [c for c in fake.ops("create") if c.source == queue(i)]  # no conflict
        assert create_call.started >= fake.gone_at[f"old-{i}"]
    assert sorted(m["EventSourceArn"] for m in fake.mappings.values()) == [
        queue(i) for i in range(4)
    ]
    assert all(m["BatchSize"] == 5 for m in fake.mappings.values())


def test_deletes_go_first_then_updates_and_creates_all_at_once() -> None:
    """SPEC: deletes first, each waited until gone; then updates and creates. Only their start
    waits for the deletes to be gone: no update or create waits for another to settle."""
    fake = FakeLambda(settle_polls=3, call_seconds=0.002)
    for i in range(6):
        fake.add(f"old-{i}", FN, queue(i))
    for i in range(6, 9):
        fake.add(f"u-{i}", FN, queue(i))
    plan = Plan([create(f"new{i}") for i in range(4)] + [create(0, function=OTHER_FN)])
    plan.changes += [_update(i) for i in range(6, 9)] + [delete(f"old-{i}", i) for i in range(6)]
    result = applier(fake, parallelism=8).apply(plan)
    assert result.ok, [o.message for o in result.outcomes]
    deletes = fake.ops("delete")
    later = fake.ops("create") + fake.ops("update")
    assert len(deletes) == 6 and len(later) == 8
    assert max(c.started for c in deletes) < min(fake.gone_at.values())  # all sent at once
    assert min(c.started for c in later) >= max(fake.gone_at.values())
    assert max(c.started for c in later) < min(fake.settled_at.values())
    assert sorted(fake.gone_at) == [f"old-{i}" for i in range(6)]


def test_a_kafka_create_waits_for_a_delete_on_its_source_whatever_the_function() -> None:
    """A Kafka consumer group is unique per source: the mapping being deleted may hold the
    group the new one asks for, though it is another function's (one of the orders AWS needs
    that "deletes first" keeps)."""
    fake = FakeLambda(settle_polls=3, call_seconds=0.002)
    cluster = f"arn:aws:kafka:us-east-1:{ACCOUNT}:cluster/c/1"
    fake.add("theirs", OTHER_FN, cluster, Topics=["orders"])
    leaving = Change("delete", f"other[{cluster}]", OTHER_FN, cluster, "theirs", kind="msk")
    arriving = Change(
        "create",
        f"worker[{cluster}]",
        FN,
        cluster,
        None,
        kind="msk",
        create_request={"FunctionName": FN, "EventSourceArn": cluster, "Topics": ["orders"]},
    )
    result = applier(fake, parallelism=4).apply(Plan([arriving, leaving]))
    assert result.ok, [o.message for o in result.outcomes]
    (create_call,) = fake.ops("create")
    assert create_call.started >= fake.gone_at["theirs"]


def test_a_failed_delete_half_never_creates_and_others_finish() -> None:
    fake = FakeLambda()
    fake.add("old-0", FN, queue(0))
    fake.script["delete"] = [client_error("AccessDeniedException", "not allowed to delete", 403)]
    replace = replace_of("old-0", 0)
    result = applier(fake, parallelism=3).apply(Plan([replace, create(1), create(2)]))
    failed = result.by_status("failed")
    assert [o.change.address for o in failed] == [replace.address]
    assert "not allowed to delete" in failed[0].message and failed[0].step == "delete"
    assert len(result.by_status("done")) == 2
    assert sorted(c.source for c in fake.ops("create")) == [queue(1), queue(2)]  # none for 0
    assert fake.mappings["old-0"]["State"] == "Enabled"


# -- retries the tool adds to boto3's ---------------------------------------------------------


def test_role_not_yet_usable_is_retried_until_it_is() -> None:
    fake = FakeLambda()
    fake.script["create"] = [client_error("InvalidParameterValueException", ROLE_NOT_READY)] * 2
    messages: list[str] = []
    result = applier(fake, progress=messages.append).apply(Plan([create(1)]))
    assert result.ok
    assert len(fake.ops("create")) == 3
    assert sum("execution role is not usable yet" in m for m in messages) == 2


def test_role_never_usable_fails_after_the_propagation_budget() -> None:
    clock = FakeTime()
    fake = FakeLambda()
    fake.script["create"] = [client_error("InvalidParameterValueException", ROLE_NOT_READY)] * 1000
    runner = Applier(fake, sleep=clock.sleep, clock=clock.clock, poll_start=1, poll_max=10)
    result = runner.apply(Plan([create(1)]))
    assert result.by_status("failed") and ROLE_NOT_READY in result.outcomes[0].message
    assert PROPAGATION_TIMEOUT <= clock.now - FakeTime.START <= PROPAGATION_TIMEOUT + 15
    assert 5 < len(fake.ops("create")) < 40  # backed off, not hammered


def test_other_invalid_parameter_errors_fail_at_once() -> None:
    fake = FakeLambda()
    fake.script["create"] = [
        client_error("InvalidParameterValueException", "Function does not exist")
    ]
    result = applier(fake).apply(Plan([create(1)]))
    assert result.by_status("failed") and len(fake.ops("create")) == 1
    assert "Function does not exist" in result.outcomes[0].message


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (ROLE_NOT_READY, True),
        ("The role defined for the function cannot be assumed by Lambda.", True),
        ("Please ensure the role can perform the kafka:DescribeCluster action", True),
        ("Function does not exist", False),
    ],
)
def test_propagation_messages(message: str, expected: bool) -> None:
    assert is_propagation_error(client_error("InvalidParameterValueException", message)) is expected
    assert not is_propagation_error(client_error("ResourceConflictException", message))


def test_a_throttled_or_failing_poll_polls_again() -> None:
    fake = FakeLambda(settle_polls=1)
    fake.script["get"] = [
        client_error("TooManyRequestsException", "Rate exceeded", 429),
        client_error("ServiceException", "internal", 500),
    ]
    result = applier(fake).apply(Plan([create(1)]))
    assert result.ok and len(fake.ops("get")) >= 4


# -- ResourceConflictException on create ------------------------------------------------------


def test_conflict_with_a_mapping_still_deleting_waits_then_creates() -> None:
    fake = FakeLambda(settle_polls=2)
    fake.add("going", FN, queue(1), state="Deleting")
    fake.in_transition("going", looks=2)
    result = applier(fake).apply(Plan([create(1, BatchSize=5)]))
    assert result.ok, result.outcomes[0].message
    assert "going" not in fake.mappings and len(fake.mappings) == 1
    assert result.outcomes[0].created_uuid != "going"


def test_conflict_held_by_another_function_fails_with_aws_words() -> None:
    fake = FakeLambda()
    fake.add("theirs", OTHER_FN, queue(1))
    fake.script["create"] = [
        client_error(
            "ResourceConflictException",
            'An event source mapping with event source ("b-1:9092") and '
            'consumerGroupId ("g") already exists. Please update or delete the existing '
            "mapping with UUID 11111111-2222-3333-4444-555555555555",
            409,
        )
    ]
    result = applier(fake).apply(Plan([create(1)]))
    assert result.by_status("failed") and "consumerGroupId" in result.outcomes[0].message


def test_conflict_without_a_uuid_in_the_message_finds_the_mapping_by_source() -> None:
    fake = FakeLambda()
    fake.add("earlier", FN, queue(1), BatchSize=5)
    fake.script["create"] = [client_error("ResourceConflictException", "already exists", 409)]
    result = applier(fake).apply(Plan([create(1, BatchSize=5)]))
    assert result.ok and result.outcomes[0].created_uuid == "earlier"
    assert len(fake.ops("list")) == 1


def test_conflict_that_only_a_replace_resolves_is_reported_not_carried_out() -> None:
    fake = FakeLambda()
    kinesis = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s"
    fake.add("earlier", FN, kinesis, StartingPosition="LATEST", BatchSize=100)
    change = Change(
        "create",
        f"worker[{kinesis}]",
        FN,
        kinesis,
        None,
        kind="kinesis",
        create_request={
            "FunctionName": FN,
            "EventSourceArn": kinesis,
            "StartingPosition": "TRIM_HORIZON",
        },
    )
    result = applier(fake).apply(Plan([change]))
    assert result.by_status("failed")
    assert "starting_position" in result.outcomes[0].message
    assert "plan again" in result.outcomes[0].message
    assert not fake.ops("delete") and "earlier" in fake.mappings


def test_reconcile_existing_is_none_for_an_equal_mapping_and_an_update_otherwise() -> None:
    change = create(1, BatchSize=5, Tags={"team": "a"})
    response = {
        "UUID": "u",
        "FunctionArn": FN,
        "EventSourceArn": queue(1),
        "EventSourceMappingArn": "arn:esm:u",
        "BatchSize": 5,
        "MaximumBatchingWindowInSeconds": 0,
        "FunctionResponseTypes": [],
        "State": "Enabled",
    }
    live = LiveMapping.from_response(response)
    live.tags = {"team": "a"}
    assert reconcile_existing(change, live) is None
    live = LiveMapping.from_response({**response, "BatchSize": 8, "State": "Disabled"})
    live.tags = {}
    rest = reconcile_existing(change, live)
    assert rest is not None and rest.action == "update"
    assert rest.update_request == {"UUID": "u", "BatchSize": 5, "Enabled": True}
    assert rest.tag_changes == {"arn": "arn:esm:u", "set": {"team": "a"}, "remove": []}


# -- interrupts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 3])
def test_stop_wakes_a_waiting_apply_and_skips_what_has_not_started(parallelism: int) -> None:
    """Two creates settle forever, a third waits for a mapping that stays Deleting, and looks
    are 30 s apart: the first Ctrl-C ends the apply at once, not after a 30 s pause."""
    fake = FakeLambda(settle_polls=NEVER)
    fake.add("going", FN, queue(2), state="Deleting")
    fake.in_transition("going", looks=NEVER)
    runner = Applier(fake, poll_start=30, poll_max=30, parallelism=parallelism)
    waiting = dataclasses.replace(create(2), wait_gone=["going"])
    plan = Plan([create(0), create(1), waiting])
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(runner.apply(plan)))
    started = time.monotonic()
    thread.start()
    _wait_for(lambda: len(fake.ops("create")) == 2 and bool(fake.ops("get")))
    time.sleep(0.05)  # the apply is now in its 30 s pause
    runner.stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - started < 10  # not 30 s sleeps
    result = results[0]
    assert result.interrupted and not result.ok
    # The two creates AWS accepted are done (still settling); the third never started.
    assert [(o.status, o.settling) for o in result.outcomes] == [
        ("done", True),
        ("done", True),
        ("skipped", False),
    ]
    assert result.outcomes[2].message == "interrupted before it started"
    assert len(fake.ops("create")) == 2  # nothing new started after the stop
    assert [c.uuid for c in fake.ops("get")] == ["going"]  # looked at once, then the pause


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# -- watching many mappings at once -------------------------------------------------------------


@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_many_waiting_mappings_are_looked_at_by_shared_list_sweeps(action: str) -> None:
    """One sweep looks at every waiting mapping, and may end the waits it can vouch for: a
    created mapping listed settled, an updated one listed settled with a later LastModified
    than the Update's answer, a deleted one no longer listed."""
    fake = FakeLambda(settle_polls=2)
    result = applier(fake, parallelism=4).apply(_plan_of(action, fake, 40))
    assert result.ok, [o.message for o in result.outcomes]
    assert all(m["State"] == "Enabled" for m in fake.mappings.values())
    assert len(fake.mappings) == (0 if action == "delete" else 40)
    sweeps, gets = len(fake.ops("list")), len(fake.ops("get"))
    # A Get per look would be 40 x 3 and more; every sweep answers for all 40.
    assert 2 <= sweeps <= 10 and gets < 10, (sweeps, gets)


def test_a_few_waiting_mappings_use_gets_only() -> None:
    from esm_reconcile.engine.watcher import SWEEP_MIN_WAITS

    fake = FakeLambda(settle_polls=3)
    plan = Plan([create(i) for i in range(SWEEP_MIN_WAITS - 1)])
    result = applier(fake, parallelism=2).apply(plan)
    assert result.ok and not fake.ops("list")
    assert len(fake.ops("get")) >= 4 * (SWEEP_MIN_WAITS - 1)  # settle_polls + 1 looks each


class LaggingList(FakeLambda):
    """A List that lags behind Get for good: it shows every mapping as it was when the test
    froze it (`freeze`), and looks at nothing."""

    frozen: tuple[dict[str, Any], ...] = ()

    def freeze(self) -> None:
        self.frozen = tuple(dict(m) for m in self.mappings.values())

    def list_page(self, marker: str | None, **scope: str) -> dict[str, Any]:
        with self._call("list", None):
            return {"EventSourceMappings": [dict(m) for m in self.frozen]}


@pytest.mark.parametrize("action", ["create", "update"])
def test_a_lagging_list_cannot_end_a_wait_early_a_get_decides(action: str) -> None:
    """The List shows the mappings as they were before apply: updated ones settled (with
    their old LastModified), created ones not at all. Neither may end a wait: each mapping is
    asked by Get, and the apply ends only once every one has really settled."""
    fake = LaggingList(settle_polls=2)
    plan = _plan_of(action, fake, 8)
    fake.freeze()
    result = applier(fake, parallelism=4).apply(plan)
    assert result.ok, [o.message for o in result.outcomes]
    assert len(fake.mappings) == 8
    assert all(m["State"] == "Enabled" for m in fake.mappings.values())  # none ended early
    assert fake.ops("list")  # sweeps were made, and did not decide
    assert {c.uuid for c in fake.ops("get")} == set(fake.mappings)


class StuckList(FakeLambda):
    """LocalStack's List: a deleted mapping stays listed as Deleting long after Get says it is
    gone."""

    def list_page(self, marker: str | None, **scope: str) -> dict[str, Any]:
        page = super().list_page(marker, **scope)
        ghosts = [
            {"UUID": uuid, "FunctionArn": FN, "EventSourceArn": "ghost", "State": "Deleting"}
            for uuid in self.gone_at
        ]
        return {**page, "EventSourceMappings": page["EventSourceMappings"] + ghosts}


def test_a_list_stuck_on_deleting_cannot_hold_a_wait_a_get_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sweeps showing a gone mapping still Deleting cannot hold its wait: once sweeps left it
    open for GET_AFTER, a Get asks, and finds it gone."""
    monkeypatch.setattr(f"{WATCHER}.GET_AFTER", 0.05)
    # Without jitter the six waits stay in step, so every look at them is a sweep until then.
    monkeypatch.setattr(f"{WATCHER}._jitter", lambda seconds: seconds)
    fake = StuckList(settle_polls=1, call_seconds=0.002)
    plan = _plan_of("delete", fake, 6)
    runner = applier(fake, parallelism=1, timeouts={"delete": 1.0})
    result = runner.apply(plan)
    assert result.ok, [o.message for o in result.outcomes]
    assert not fake.mappings and len(fake.gone_at) == 6
    first_get = min(c.started for c in fake.ops("get"))
    assert len([c for c in fake.ops("list") if c.started < first_get]) >= 2
    # Every sweep listed all six: each wait was ended by a Get that found its mapping gone.
    assert sorted(c.uuid for c in fake.ops("get")) == sorted(fake.gone_at)
    assert all(fake.gone_at[c.uuid] <= c.ended for c in fake.ops("get"))


def test_a_refused_list_is_not_hammered_and_gets_take_over() -> None:
    """A role without lambda:ListEventSourceMappings: failed sweeps are backed off, then
    given up, and Gets see every mapping settle."""
    fake = FakeLambda(settle_polls=1)
    fake.script["list"] = [
        client_error("AccessDeniedException", "no lambda:ListEventSourceMappings", 403)
    ] * 10**6
    result = applier(fake, timeouts={"create": 0.5}).apply(Plan([create(i) for i in range(6)]))
    assert result.ok, [o.message for o in result.outcomes]  # settled, as Gets would see
    assert len(fake.ops("list")) < 20, len(fake.ops("list"))


# -- what is looked at while calls are still being sent -------------------------------------------


def _looks_while_sending(fake: FakeLambda, op: str) -> list[Any]:
    """Looks (Gets and sweeps) that started before the last call of `op` started."""
    last = max(c.started for c in fake.ops(op))
    return [c for c in fake.calls if c.started < last and c.op in ("get", "list")]


def test_while_calls_are_sent_waits_nothing_depends_on_are_left_alone() -> None:
    """Each look takes a request from the calls; a mapping that settles unseen loses nothing."""
    fake = FakeLambda(settle_polls=1, call_seconds=0.005)
    result = applier(fake, parallelism=2).apply(Plan([create(i) for i in range(30)]))
    assert result.ok
    assert _looks_while_sending(fake, "create") == []


def test_while_calls_are_sent_waits_are_still_looked_at_now_and_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(f"{WATCHER}.IDLE_LOOK", 0.01)
    fake = FakeLambda(settle_polls=1, call_seconds=0.005)
    result = applier(fake, parallelism=2).apply(Plan([create(i) for i in range(30)]))
    assert result.ok
    assert _looks_while_sending(fake, "create")


def test_while_deletes_are_sent_what_nothing_waits_for_is_left_alone() -> None:
    fake = FakeLambda(settle_polls=1, call_seconds=0.005)
    plan = _plan_of("delete", fake, 30)
    result = applier(fake, parallelism=2).apply(plan)
    assert result.ok, [o.message for o in result.outcomes]
    assert _looks_while_sending(fake, "delete") == []


def test_while_deletes_are_sent_those_other_changes_wait_for_are_looked_at() -> None:
    """A create waits until every delete is gone: their mappings are looked at as often as
    backoff allows, even while other deletes are still being sent."""
    fake = FakeLambda(settle_polls=1, call_seconds=0.005)
    plan = _plan_of("delete", fake, 30)
    plan.changes.append(create("new"))
    result = applier(fake, parallelism=2).apply(plan)
    assert result.ok, [o.message for o in result.outcomes]
    assert _looks_while_sending(fake, "delete")


# -- found in review --------------------------------------------------------------------------


def test_in_use_is_sent_again_with_backoff_and_honours_stop() -> None:
    """An Update answered in use is sent again after growing pauses (no Gets in between: its
    next answer is the look), and the first Ctrl-C ends that as an interruption."""
    fake = FakeLambda()
    fake.add("u-1", FN, queue(1))
    fake.script["update"] = [
        client_error("ResourceInUseException", "Cannot update: in use")
    ] * 10**6
    runner = applier(fake, poll_start=0.02, poll_max=0.1, timeouts={"update": 30.0})
    change = Change(
        "update", f"worker[{queue(1)}]", FN, queue(1), "u-1", update_request={"UUID": "u-1"}
    )
    timer = threading.Timer(0.3, runner.stop.set)
    timer.start()
    started = time.monotonic()
    result = runner.apply(Plan([change]))
    timer.join()
    assert time.monotonic() - started < 2
    assert result.outcomes[0].status == "skipped" and result.interrupted
    assert result.outcomes[0].message == "interrupted while waiting"
    # Sent at about 0, 0.02, 0.06, 0.14 and 0.24 s: backed off, not hammered.
    assert 3 <= len(fake.ops("update")) <= 10
    assert not fake.ops("get")


@pytest.mark.parametrize(
    "failure",
    [
        client_error("TooManyRequestsException", "Rate exceeded", 429),
        client_error("ServiceException", "internal", 500),
    ],
)
def test_failures_that_outlast_the_protocols_retries_are_sent_again(failure: Any) -> None:
    """Throttling and 5xx are retried inside the call (protocol.LambdaMappings); past those
    retries, the loop sends the call again later, within the step's budget."""
    fake = FakeLambda()
    fake.script["create"] = [failure] * 3
    fake.script["update"] = [failure] * 3
    fake.add("u-2", FN, queue(2))
    result = applier(fake).apply(Plan([create(1), _update(2)]))
    assert result.ok and len(fake.ops("create")) == 4 and len(fake.ops("update")) == 4


def test_failures_that_outlast_the_step_budget_fail() -> None:
    clock = FakeTime()
    fake = FakeLambda()
    fake.script["create"] = [client_error("ServiceException", "internal", 500)] * 1000
    runner = Applier(fake, sleep=clock.sleep, clock=clock.clock, timeouts={"create": 60.0})
    result = runner.apply(Plan([create(1)]))
    (outcome,) = result.outcomes
    assert outcome.status == "failed" and "ServiceException" in outcome.message
    assert 60 <= clock.now - FakeTime.START <= 60 + 15
    assert 5 < len(fake.ops("create")) < 20  # backed off to poll_max (10 s)


def test_a_second_interrupt_abandons_calls_in_flight() -> None:
    import os
    import signal

    from esm_reconcile.apply import run_all

    def slow() -> None:
        time.sleep(3)

    # Ctrl-C is a KeyboardInterrupt even when the test run was started with SIGINT ignored (as
    # a background job of a shell without job control is).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_all(2, "test", [slow, slow, slow])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 1.5  # not the 3 s (or 6 s) the calls take


def test_the_throttle_backoff_works_below_one_request_per_second() -> None:
    from esm_reconcile.aws import RateLimiter

    limiter = RateLimiter(0.2)
    limiter.on_throttle()
    assert limiter.rate == pytest.approx(0.1)
