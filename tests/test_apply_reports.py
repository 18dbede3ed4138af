"""The end-of-apply report says what AWS really accepted.

Uses the fake Lambda (tests/fake_lambda.py): mappings with AWS's states, scripted errors, and a
record of every call, so each report can be checked against what exists.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from esm_reconcile.apply import ApplyResult, report_lines
from esm_reconcile.plan import Change, Plan
from tests.fake_lambda import (
    FN,
    FakeLambda,
    applier,
    client_error,
    create,
    delete,
    queue,
    replace_of,
)

NEVER = 10**9  # polls until a transition ends: it never does while the test runs


class StopAfterCreates(FakeLambda):
    """Requests a stop (as the first Ctrl-C does) once `after` creates were accepted; calls
    already in flight still finish, as they do in the CLI."""

    def __init__(self, stop: threading.Event, after: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stop, self.after = stop, after

    def create_event_source_mapping(self, **request: Any) -> dict[str, Any]:
        answer = super().create_event_source_mapping(**request)
        if len(self.mappings) >= self.after:
            self.stop.set()
        return answer


def stop_at(stop: threading.Event, word: str) -> Callable[[str], None]:
    """A progress callback that requests the stop, as the first Ctrl-C does, once apply says
    `word` (e.g. "deleting": the call was accepted and its wait begins)."""

    def progress(message: str) -> None:
        if word in message:
            stop.set()

    return progress


def lines_of(result: ApplyResult, prefix: str) -> list[str]:
    return [line.strip() for line in report_lines(result) if line.strip().startswith(prefix)]


# -- interrupted: what AWS accepted is done, and still settling ----------------------------------


def test_an_interrupt_counts_every_accepted_create_as_created_and_still_settling() -> None:
    """The reported failure: 22 reported created while 34 existed. Every create AWS accepted
    is counted, named as still settling, and the rest are not done."""
    stop = threading.Event()
    fake = StopAfterCreates(stop, after=3, settle_polls=NEVER)
    runner = applier(fake, parallelism=4, stop=stop)
    plan = Plan([create(i) for i in range(12)])

    result = runner.apply(plan)

    exists = {m["EventSourceArn"]: uuid for uuid, m in fake.mappings.items()}
    assert 3 <= len(exists) <= 4  # stopped midway; a create in flight (4 workers) finished
    summary = result.summary()
    assert summary["created"] == len(exists) == summary["settling"]
    assert summary["skipped"] == 12 - len(exists)
    for outcome in result.by_status("done"):
        assert outcome.settling
        assert outcome.created_uuid == exists[outcome.change.event_source]
        assert f"AWS created {outcome.created_uuid}" in outcome.message
        assert "still Creating when apply was interrupted" in outcome.message
    assert not result.ok and result.interrupted

    report = report_lines(result)
    assert report[0] == (
        f"Apply incomplete: {len(exists)} created, 0 updated, 0 replaced, 0 deleted "
        f"({len(exists)} still settling)."
    )
    settling = lines_of(result, "still settling:")
    assert sorted(settling) == sorted(
        f"still settling: worker[{source}] (create): AWS created {uuid}; it was still Creating "
        "when apply was interrupted"
        for source, uuid in exists.items()
    )
    assert len(lines_of(result, "not done:")) == 12 - len(exists)
    assert report[-1] == "Interrupted: re-run apply to converge."


def test_an_interrupted_delete_wait_counts_the_delete() -> None:
    stop = threading.Event()
    fake = FakeLambda(settle_polls=NEVER)
    fake.add("old-1", FN, queue(1))
    runner = applier(fake, stop=stop, progress=stop_at(stop, "deleting"))

    result = runner.apply(Plan([delete("old-1", 1)]))

    (outcome,) = result.outcomes
    assert (outcome.status, outcome.settling) == ("done", True)
    assert outcome.message == (
        "AWS accepted the delete of old-1; it was still Deleting when apply was interrupted"
    )
    assert result.summary()["deleted"] == 1
    assert fake.mappings["old-1"]["State"] == "Deleting"


def test_an_unreadable_state_after_an_accepted_create_still_counts_it() -> None:
    fake = FakeLambda(settle_polls=NEVER)
    fake.script["get"] = [
        client_error("AccessDeniedException", "no lambda:GetEventSourceMapping", 403)
    ]

    result = applier(fake).apply(Plan([create(1)]))

    (outcome,) = result.outcomes
    (uuid,) = fake.mappings
    assert (outcome.status, outcome.settling, outcome.created_uuid) == ("done", True, uuid)
    assert outcome.message == (
        f"AWS created {uuid}; its state could not be read: "
        "AccessDeniedException: no lambda:GetEventSourceMapping"
    )


def test_an_update_interrupted_before_its_tags_is_not_done_and_says_what_was() -> None:
    stop = threading.Event()
    fake = FakeLambda(settle_polls=NEVER)
    fake.add("u-1", FN, queue(1))
    change = Change(
        "update",
        f"worker[{queue(1)}]",
        FN,
        queue(1),
        "u-1",
        update_request={"UUID": "u-1", "BatchSize": 7},
        tag_changes={"arn": "arn:esm:u-1", "set": {"team": "a"}, "remove": []},
    )
    runner = applier(fake, stop=stop, progress=stop_at(stop, "updating"))

    result = runner.apply(Plan([change]))

    (outcome,) = result.outcomes
    assert outcome.status == "skipped"
    assert outcome.message == (
        "interrupted while waiting (AWS accepted the update of u-1, but its tags were not changed)"
    )


# -- adopted mappings are counted apart ----------------------------------------------------------


def test_an_adopted_create_is_counted_as_adopted_not_created() -> None:
    """An earlier attempt created the mapping but its answer was lost: the create's conflict
    adopts it (updating it to the spec where it differs), neither failing nor duplicating."""
    fake = FakeLambda()
    fake.add("earlier", FN, queue(1), BatchSize=5)
    fake.add("older", FN, queue(2), BatchSize=9)
    plan = Plan([create(1, BatchSize=5), create(2, BatchSize=5), create(3)])
    messages: list[str] = []

    result = applier(fake, progress=messages.append).apply(plan)

    assert result.ok
    by_source = {o.change.event_source: o for o in result.outcomes}
    assert by_source[queue(1)].adopted and by_source[queue(2)].adopted
    assert not by_source[queue(3)].adopted
    assert by_source[queue(2)].created_uuid == "older"
    assert any("already exists as earlier; adopting it" in m for m in messages)
    assert [c.uuid for c in fake.ops("update")] == ["older"]  # the equal one is left alone
    assert len(fake.mappings) == 3
    assert result.summary() == {
        "created": 1,
        "adopted": 2,
        "updated": 0,
        "replaced": 0,
        "deleted": 0,
        "failed": 0,
        "skipped": 0,
        "settling": 0,
    }
    report = report_lines(result)
    assert report[0] == "Apply complete: 1 created, 2 adopted, 0 updated, 0 replaced, 0 deleted."
    assert lines_of(result, "adopted:") == [
        f"adopted: worker[{queue(1)}]: a mapping for this source already existed (earlier) "
        "and matches the spec; esm adopted it",
        f"adopted: worker[{queue(2)}]: a mapping for this source already existed (older); "
        "esm adopted it and AWS accepted its update to the spec",
    ]
    assert fake.mappings["older"]["BatchSize"] == 5
    assert by_source[queue(1)].to_json() == {
        "address": f"worker[{queue(1)}]",
        "action": "create",
        "status": "done",
        "message": by_source[queue(1)].message,
        "uuid": "earlier",
        "adopted": True,
        "settling": False,
    }


def test_without_adoptions_the_report_keeps_its_wording() -> None:
    result = applier(FakeLambda()).apply(Plan([create(1)]))
    assert report_lines(result) == ["Apply complete: 1 created, 0 updated, 0 replaced, 0 deleted."]


# -- a replace that lost its old mapping says so --------------------------------------------------


def test_a_replace_whose_create_fails_says_the_source_has_no_mapping() -> None:
    fake = FakeLambda()
    fake.add("old-0", FN, queue(0))
    fake.script["create"] = [
        client_error("InvalidParameterValueException", "The specified queue does not exist.")
    ]

    result = applier(fake).apply(Plan([replace_of("old-0", 0)]))

    (outcome,) = result.outcomes
    assert (outcome.status, outcome.step) == ("failed", "create")
    assert outcome.message == (
        f"the old mapping old-0 was deleted; the new one could not be created, so {queue(0)} "
        "has NO mapping for worker now: InvalidParameterValueException: The specified queue "
        "does not exist."
    )
    assert not fake.mappings  # as the message says
    assert lines_of(result, "failed:") == [
        f"failed: worker[{queue(0)}] (create): {outcome.message}"
    ]
    assert report_lines(result)[0] == (
        "Apply incomplete: 0 created, 0 updated, 0 replaced, 0 deleted."
    )


def test_report_lines_are_single_terminal_safe_lines() -> None:
    """An endpoint's words reach the report: they must not move the cursor or add lines."""
    fake = FakeLambda()
    fake.script["create"] = [client_error("InvalidParameterValueException", "bad\x1b[2J\nFAKE: ok")]

    result = applier(fake).apply(Plan([create(1)]))

    (failed,) = lines_of(result, "failed:")
    assert failed.endswith("InvalidParameterValueException: bad\\u001b[2J\\u000aFAKE: ok")
    assert all("\x1b" not in line and "\n" not in line for line in report_lines(result))


def test_a_replace_stopped_between_its_halves_says_the_source_has_no_mapping() -> None:
    stop = threading.Event()
    fake = FakeLambda()
    fake.add("old-0", FN, queue(0))
    runner = applier(fake, stop=stop)
    original = runner.wait_gone

    def wait_then_stop(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        stop.set()  # Ctrl-C right after the old mapping is gone

    runner.wait_gone = wait_then_stop  # type: ignore[method-assign]

    result = runner.apply(Plan([replace_of("old-0", 0)]))

    (outcome,) = result.outcomes
    assert outcome.status == "skipped" and result.interrupted
    assert outcome.message == (
        f"interrupted: the old mapping old-0 was deleted and the new one not created, so "
        f"{queue(0)} has NO mapping for worker now; re-run apply"
    )
    assert not fake.mappings and not fake.ops("create")


def test_a_replace_stopped_while_its_old_mapping_is_deleting_says_what_follows() -> None:
    stop = threading.Event()
    fake = FakeLambda(settle_polls=NEVER)
    fake.add("old-0", FN, queue(0))
    runner = applier(fake, stop=stop, progress=stop_at(stop, "deleting"))

    result = runner.apply(Plan([replace_of("old-0", 0)]))

    (outcome,) = result.outcomes
    assert (outcome.status, outcome.step) == ("skipped", "delete")
    assert outcome.message == (
        "AWS accepted the delete of the old mapping old-0, but it was still Deleting when apply "
        f"was interrupted; the new one was not created, so {queue(0)} will have NO mapping for "
        "worker once it is gone: re-run apply"
    )
    assert result.summary()["replaced"] == 0


def test_a_replace_whose_create_was_accepted_but_is_settling_is_replaced() -> None:
    stop = threading.Event()
    fake = FakeLambda(settle_polls=1)
    fake.add("old-0", FN, queue(0))

    def progress(message: str) -> None:
        if message.endswith(": creating"):
            fake.settle_polls = NEVER  # the delete settled; the new mapping never will
            stop.set()  # the create call itself still goes, as a call in flight does

    result = applier(fake, stop=stop, progress=progress).apply(Plan([replace_of("old-0", 0)]))

    (outcome,) = result.outcomes
    (new,) = fake.mappings
    assert (outcome.status, outcome.settling, outcome.created_uuid) == ("done", True, new)
    assert outcome.message == (
        f"the old mapping old-0 was deleted; AWS created {new}; it was still Creating when "
        "apply was interrupted"
    )
    assert result.summary()["replaced"] == 1
