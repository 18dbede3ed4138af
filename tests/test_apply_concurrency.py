"""Apply with several workers, IAM-propagation retries, conflict adoption, transient polls,
against the thread-safe fake Lambda (tests/fake_lambda.py): a Stubber answers in a fixed order,
which concurrent workers cannot keep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

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

ROLE_NOT_READY = (
    "The provided execution role does not have permissions to call ReceiveMessage on SQS"
)


# -- concurrency --------------------------------------------------------------------------------


def test_independent_creates_overlap_up_to_the_parallelism() -> None:
    fake = FakeLambda(call_seconds=0.02)
    result = applier(fake, parallelism=4).apply(Plan([create(i) for i in range(16)]))
    assert result.ok and len(result.by_status("done")) == 16
    assert 1 < fake.max_in_flight <= 4
    assert len(fake.mappings) == 16


def test_one_worker_runs_changes_one_after_another() -> None:
    fake = FakeLambda(call_seconds=0.005)
    result = applier(fake, parallelism=1).apply(Plan([create(i) for i in range(5)]))
    assert result.ok and fake.max_in_flight == 1


def test_every_delete_is_gone_before_any_create_starts() -> None:
    fake = FakeLambda(settle_polls=3, call_seconds=0.005)
    for i in range(6):
        fake.add(f"old-{i}", FN, queue(i))
    replace = replace_of("old-0", 0)
    plan = Plan([replace, *[delete(f"old-{i}", i) for i in range(1, 6)]])
    plan.changes += [create(f"new{i}") for i in range(6)]
    result = applier(fake, parallelism=8).apply(plan)
    assert result.ok, [o.message for o in result.outcomes]
    last_gone = max(c.ended for c in fake.ops("get") if c.uuid and c.uuid.startswith("old-"))
    first_create = min(c.started for c in fake.ops("create"))
    assert last_gone <= first_create
    assert sorted(m["EventSourceArn"] for m in fake.mappings.values()) == sorted(
        [queue(0)] + [queue(f"new{i}") for i in range(6)]
    )


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
    assert [c for c in fake.ops("create") if c.uuid is None] == []  # no create for queue 0
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


def test_stop_wakes_waiting_workers_and_skips_what_has_not_started() -> None:
    fake = FakeLambda(settle_polls=10_000)  # never settles: workers sit in their waits
    runner = Applier(fake, poll_start=30, poll_max=30, parallelism=2)
    plan = Plan([create(i) for i in range(6)])
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(runner.apply(plan)))
    started = time.monotonic()
    thread.start()
    _wait_for(lambda: len(fake.ops("create")) >= 2)
    runner.stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - started < 10  # not 30 s sleeps
    result = results[0]
    assert result.interrupted and not result.ok
    # The two creates AWS accepted are done (still settling); the four others never started.
    assert [(o.status, o.settling) for o in result.outcomes].count(("done", True)) == 2
    assert [o.status for o in result.outcomes].count("skipped") == 4
    assert len(fake.ops("create")) == 2  # nothing new started after the stop


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# -- waiting many mappings at once --------------------------------------------------------------


def test_many_waiting_mappings_are_polled_by_shared_list_sweeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Time runs ~20x faster here than on AWS (settling in 0.6 s, not 10+ s): scale the
    # shortest reuse of a sweep the same way.
    monkeypatch.setattr("esm_reconcile.states.SECONDS_PER_SWEPT_PAGE", 0.025)
    fake = FakeLambda(settle_seconds=0.6, call_seconds=0.002)
    runner = applier(fake, parallelism=40, poll_start=0.05, poll_max=0.1)
    result = runner.apply(Plan([create(i) for i in range(40)]))
    assert result.ok and len(fake.mappings) == 40
    sweeps, gets = len(fake.ops("list")), len(fake.ops("get"))
    # A Get per poll would be 40 x (0.6 s / 0.1 s) and more; sweeps answer "still creating"
    # for everyone at once, and each mapping needs about one Get to confirm it settled.
    assert 0 < sweeps < 40 and gets < 40 * 3, (sweeps, gets)


def test_a_few_waiting_mappings_use_gets_only() -> None:
    fake = FakeLambda(settle_polls=3)
    result = applier(fake, parallelism=2).apply(Plan([create(i) for i in range(2)]))
    assert result.ok and not fake.ops("list")


def test_a_sweep_never_ends_a_wait_only_a_get_does() -> None:
    """List may lag (eventual consistency): its 'Enabled' for a mapping being updated must not
    end the wait; its 'Updating' may defer it."""
    from esm_reconcile.states import StateReader

    class LaggingList(FakeLambda):
        def get_paginator(self, name: str) -> Any:
            stale = [{"UUID": u, "State": "Enabled"} for u in self.mappings]

            class Paginator:
                def paginate(self, **_: Any) -> list[dict[str, Any]]:
                    return [{"EventSourceMappings": stale}]

            return Paginator()

    fake = LaggingList(settle_polls=2)
    fake.add("u-1", FN, queue(1), state="Updating")
    fake.in_transition("u-1", looks=2)
    reader = StateReader(fake)
    reader.waiters = 10  # as if many were waiting: sweep mode
    assert reader.read("u-1", 1.0)["State"] == "Updating"  # from Get, not the stale sweep
    assert reader.sweeps == 1 and reader.gets == 1


def test_a_list_stuck_on_deleting_cannot_hold_a_wait_past_a_few_polls() -> None:
    """LocalStack's List can keep a deleted mapping Deleting for good; Get says it is gone."""
    from esm_reconcile.states import VERIFY_EVERY, StateReader

    class StuckList(FakeLambda):
        def get_paginator(self, name: str) -> Any:
            class Paginator:
                def paginate(self, **_: Any) -> list[dict[str, Any]]:
                    return [{"EventSourceMappings": [{"UUID": "gone", "State": "Deleting"}]}]

            return Paginator()

    reader = StateReader(StuckList())
    reader.waiters = 10
    answers = []
    for look in range(VERIFY_EVERY):
        try:
            answers.append(reader.read("gone", since=float(look))["State"])
        except ClientError as exc:
            answers.append(exc.response["Error"]["Code"])
    assert answers == ["Deleting"] * (VERIFY_EVERY - 1) + ["ResourceNotFoundException"]


# -- found in review --------------------------------------------------------------------------


def test_in_use_with_a_settled_get_backs_off_and_honours_stop() -> None:
    """A Get may say Enabled while Update still answers in use: that must back off, not spin,
    and the first Ctrl-C must end it as an interruption."""
    fake = FakeLambda()
    fake.add("u-1", FN, queue(1))
    fake.script["update"] = [
        client_error("ResourceInUseException", "Cannot update: in use")
    ] * 10**6
    runner = applier(fake, poll_start=0.05, poll_max=0.2, timeouts={"update": 30.0})
    change = Change(
        "update", f"worker[{queue(1)}]", FN, queue(1), "u-1", update_request={"UUID": "u-1"}
    )
    timer = threading.Timer(1.0, runner.stop.set)
    timer.start()
    started = time.monotonic()
    result = runner.apply(Plan([change]))
    timer.join()
    assert time.monotonic() - started < 5
    assert result.outcomes[0].status == "skipped" and result.interrupted
    assert len(fake.ops("update")) < 20  # backed off: about 1 s / growing pauses


def test_throttling_beyond_boto3s_retries_is_retried_within_the_budget() -> None:
    fake = FakeLambda()
    fake.script["create"] = [client_error("TooManyRequestsException", "Rate exceeded", 429)] * 3
    result = applier(fake).apply(Plan([create(1)]))
    assert result.ok and len(fake.ops("create")) == 4


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
