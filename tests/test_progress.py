"""Progress lines for logs: a UTC timestamp and `[n/N]` on each call sent (issue 12)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from esm_reconcile.plan import Change, FieldChange, Plan
from esm_reconcile.progress import ProgressSink, calls_planned, is_call, timestamp
from tests.fake_lambda import FN, FakeLambda, applier, create, queue, replace_of

START = datetime(2026, 11, 30, 13, 20, 1, tzinfo=UTC)


def ticking() -> Callable[[], datetime]:
    """A clock that moves one second per reading."""
    moments = (START + timedelta(seconds=n) for n in range(10**6))
    return lambda: next(moments)


def sink(total: int, tty: bool = False) -> tuple[ProgressSink, list[str]]:
    lines: list[str] = []
    return ProgressSink(total, tty=tty, clock=ticking(), emit=lines.append), lines


def test_log_lines_carry_a_timestamp_and_n_of_n() -> None:
    progress, lines = sink(3)
    progress(f"fn[{queue(1)}]: deleting u-1")
    progress(f"fn[{queue(1)}]: u-1 is still being deleted; waiting to create")
    progress(f"fn[{queue(2)}]: updating u-2")
    progress(f"fn[{queue(3)}]: creating")
    assert lines == [
        f"2026-11-30T13:20:01Z [1/3] fn[{queue(1)}]: deleting u-1",
        f"2026-11-30T13:20:02Z fn[{queue(1)}]: u-1 is still being deleted; waiting to create",
        f"2026-11-30T13:20:03Z [2/3] fn[{queue(2)}]: updating u-2",
        f"2026-11-30T13:20:04Z [3/3] fn[{queue(3)}]: creating",
    ]


def test_on_a_terminal_messages_stay_as_they_are() -> None:
    progress, lines = sink(2, tty=True)
    progress("fn[q]: creating")
    progress("interrupt received: finishing the calls in flight, starting no new ones")
    assert lines == [
        "fn[q]: creating",
        "interrupt received: finishing the calls in flight, starting no new ones",
    ]
    assert progress.sent == 1  # still counted


def test_several_regions_keep_their_prefix_and_share_the_count() -> None:
    progress, lines = sink(2)
    progress("[us-east-1] fn[q]: creating")
    progress("[eu-west-1] fn[q]: deleting u-9")
    assert lines == [
        "2026-11-30T13:20:01Z [1/2] [us-east-1] fn[q]: creating",
        "2026-11-30T13:20:02Z [2/2] [eu-west-1] fn[q]: deleting u-9",
    ]


def test_more_calls_than_planned_grow_the_total() -> None:
    # A create that finds its mapping already there adopts it and may send an update.
    progress, lines = sink(1)
    progress("fn[q]: creating")
    progress("fn[q]: already exists as u-1; adopting it")
    progress("fn[q]: updating u-1")
    assert [re.sub(r"^\S+ ", "", line) for line in lines] == [
        "[1/1] fn[q]: creating",
        "fn[q]: already exists as u-1; adopting it",
        "[2/2] fn[q]: updating u-1",
    ]


def test_what_counts_as_a_call() -> None:
    assert is_call("fn[arn:aws:sqs:us-east-1:1:q]: creating")
    assert is_call("fn[q]: updating 0000-1111")
    assert is_call("[eu-west-1] fn[q]: deleting 0000-1111")
    assert not is_call("fn[q]: 0000 is still being deleted; waiting to create")
    assert not is_call("fn[q]: the execution role is not usable yet; retrying")
    assert not is_call("fn[q]: waiting (12 s)")
    assert not is_call("fn[q]: creating\nmore")


def test_lines_are_terminal_safe() -> None:
    progress, lines = sink(1)
    progress("fn[q\x1b[2J\u202e]: creating")
    assert lines == ["2026-11-30T13:20:01Z [1/1] fn[q\\u001b[2J\\u202e]: creating"]


def test_timestamps_are_utc() -> None:
    cet = timezone(timedelta(hours=1))
    assert timestamp(datetime(2026, 11, 30, 14, 20, 1, 999, tzinfo=cet)) == "2026-11-30T13:20:01Z"


def test_calls_planned_counts_what_the_engine_announces() -> None:
    tags_only = Change("update", "fn[q]", FN, "q", "u-t", [FieldChange("tags.a", "1", "2")])
    update = Change("update", "fn[q2]", FN, "q2", "u-u", update_request={"UUID": "u-u"})
    delete = Change("delete", "fn[q3]", FN, "q3", "u-d")
    plan = Plan([delete, replace_of("u-r", 4), update, tags_only, create(5)])
    assert calls_planned(plan) == 1 + 2 + 1 + 0 + 1
    assert calls_planned([plan, Plan([create(6)])]) == 6
    assert calls_planned([]) == 0


def test_an_apply_counts_up_to_the_planned_total() -> None:
    fake = FakeLambda()
    for i in range(3):
        fake.add(f"u-{i}", FN, queue(i), BatchSize=10)
    plan = Plan([replace_of(f"u-{i}", i) for i in range(3)] + [create(i) for i in range(3, 8)])
    total = calls_planned(plan)
    progress, lines = sink(total)
    result = applier(fake, parallelism=4, progress=progress).apply(plan)
    assert result.ok
    counted = [re.search(r" \[(\d+)/(\d+)\] ", line) for line in lines]
    numbers = [int(m.group(1)) for m in counted if m]
    assert numbers == list(range(1, total + 1))
    assert all(m.group(2) == str(total) for m in counted if m)
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", line) for line in lines)


def test_threads_get_distinct_numbers_in_order() -> None:
    progress, lines = sink(400)
    threads = [
        threading.Thread(target=lambda: [progress(f"fn[q]: deleting u-{n}") for n in range(100)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = [int(re.search(r"\[(\d+)/400\]", line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert numbers == list(range(1, 401))
