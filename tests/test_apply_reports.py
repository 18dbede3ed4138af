"""The end-of-apply report says what AWS really accepted.

Uses the fake Lambda (tests/fake_lambda.py): mappings with AWS's states, scripted errors, and a
record of every call, so each report can be checked against what exists.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError

from esm_reconcile.apply import ApplyResult, report_lines
from esm_reconcile.errors import EsmError
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


class StopAfter(FakeLambda):
    """Requests a stop (as the first Ctrl-C does) once AWS accepted `after` calls of `op`
    ("create", "update" or "delete"), as the call returns; calls already in flight still
    finish, as they do in the CLI."""

    def __init__(self, stop: threading.Event, op: str, after: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stop, self.op, self.after = stop, op, after
        self.accepted = 0

    def _accepted(self, op: str, answer: dict[str, Any]) -> dict[str, Any]:
        if op == self.op:
            with self.lock:
                self.accepted += 1
                if self.accepted >= self.after:
                    self.stop.set()
        return answer

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._accepted("create", super().create(request))

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._accepted("update", super().update(request))

    def delete(self, UUID: str) -> dict[str, Any]:  # noqa: N803
        return self._accepted("delete", super().delete(UUID))


def lines_of(result: ApplyResult, prefix: str) -> list[str]:
    return [line.strip() for line in report_lines(result) if line.strip().startswith(prefix)]


# -- interrupted: what AWS accepted is done, and still settling ----------------------------------


def test_an_interrupt_counts_every_accepted_create_as_created_and_still_settling() -> None:
    """The reported failure: 22 reported created while 34 existed. Every create AWS accepted
    is counted, named as still settling, and the rest are not done."""
    stop = threading.Event()
    fake = StopAfter(stop, "create", after=3, settle_polls=NEVER)
    runner = applier(fake, parallelism=4, stop=stop)
    plan = Plan([create(i) for i in range(12)])

    result = runner.apply(plan)

    exists = {m["EventSourceArn"]: uuid for uuid, m in fake.mappings.items()}
    # Stopped midway: as the 3rd create returned, at most 3 others were in flight (4 calls at
    # once), and they finished.
    assert 3 <= len(exists) <= 6
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
    fake = StopAfter(stop, "delete", settle_polls=NEVER)
    fake.add("old-1", FN, queue(1))
    runner = applier(fake, stop=stop)

    result = runner.apply(Plan([delete("old-1", 1)]))

    (outcome,) = result.outcomes
    assert (outcome.status, outcome.settling) == ("done", True)
    assert outcome.message == (
        "AWS accepted the delete of old-1; it was still Deleting when apply was interrupted"
    )
    assert result.summary()["deleted"] == 1
    assert fake.mappings["old-1"]["State"] == "Deleting"


def test_a_stop_while_deletes_settle_starts_no_update_or_create() -> None:
    """Updates and creates wait until every delete is gone: stopped before, they never start,
    and say so."""
    stop = threading.Event()
    fake = StopAfter(stop, "delete", settle_polls=NEVER)
    fake.add("old-1", FN, queue(1))
    fake.add("u-2", FN, queue(2))
    update = Change(
        "update",
        f"worker[{queue(2)}]",
        FN,
        queue(2),
        "u-2",
        update_request={"UUID": "u-2", "BatchSize": 7},
    )
    plan = Plan([create(3), update, delete("old-1", 1)])

    result = applier(fake, stop=stop, parallelism=3).apply(plan)

    assert [(o.status, o.message) for o in result.outcomes[:2]] == [
        ("skipped", "interrupted before it started")
    ] * 2
    assert result.outcomes[2].settling and result.summary()["deleted"] == 1
    assert not fake.ops("create") and not fake.ops("update")
    assert report_lines(result)[0] == (
        "Apply incomplete: 0 created, 0 updated, 0 replaced, 1 deleted (1 still settling)."
    )


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
    """Tags go only once the update settled: a stop while it settles leaves them unchanged."""
    stop = threading.Event()
    fake = StopAfter(stop, "update", settle_polls=NEVER)
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
    runner = applier(fake, stop=stop)

    result = runner.apply(Plan([change]))

    (outcome,) = result.outcomes
    assert outcome.status == "skipped"
    assert outcome.message == (
        "interrupted while waiting (AWS accepted the update of u-1, but its tags were not changed)"
    )
    assert fake.mappings["u-1"]["State"] == "Updating"
    assert not fake.ops("tag")


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


class StopOnceGone(FakeLambda):
    """Requests a stop (as the first Ctrl-C does) as a Get finds `uuid` gone."""

    def __init__(self, stop: threading.Event, uuid: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stop, self.uuid = stop, uuid

    def get(self, UUID: str) -> dict[str, Any]:  # noqa: N803
        try:
            return super().get(UUID)
        except ClientError:
            if self.uuid == UUID:
                self.stop.set()
            raise


def test_a_replace_stopped_between_its_halves_says_the_source_has_no_mapping() -> None:
    stop = threading.Event()
    fake = StopOnceGone(stop, "old-0")
    fake.add("old-0", FN, queue(0))
    runner = applier(fake, stop=stop)

    result = runner.apply(Plan([replace_of("old-0", 0)]))

    (outcome,) = result.outcomes
    assert outcome.status == "skipped" and result.interrupted
    assert outcome.message == (
        f"interrupted: the old mapping old-0 was deleted and the new one not created, so "
        f"{queue(0)} has NO mapping for worker now; re-run apply"
    )
    assert not fake.mappings and not fake.ops("create")
    assert "old-0" in fake.gone_at


def test_a_replace_stopped_while_its_old_mapping_is_deleting_says_what_follows() -> None:
    stop = threading.Event()
    fake = StopAfter(stop, "delete", settle_polls=NEVER)
    fake.add("old-0", FN, queue(0))
    runner = applier(fake, stop=stop)

    result = runner.apply(Plan([replace_of("old-0", 0)]))

    (outcome,) = result.outcomes
    assert (outcome.status, outcome.step) == ("skipped", "delete")
    assert outcome.message == (
        "AWS accepted the delete of the old mapping old-0, but it was still Deleting when apply "
        f"was interrupted; the new one was not created, so {queue(0)} will have NO mapping for "
        "worker once it is gone: re-run apply"
    )
    assert result.summary()["replaced"] == 0
    assert fake.mappings["old-0"]["State"] == "Deleting" and not fake.ops("create")


class SettlesNoMore(StopAfter):
    """StopAfter, and from the first create on, nothing the fake creates settles."""

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        self.settle_polls = NEVER
        return super().create(request)


def test_a_replace_whose_create_was_accepted_but_is_settling_is_replaced() -> None:
    stop = threading.Event()
    fake = SettlesNoMore(stop, "create", settle_polls=1)  # the delete settles; the create not
    fake.add("old-0", FN, queue(0))

    result = applier(fake, stop=stop).apply(Plan([replace_of("old-0", 0)]))

    (outcome,) = result.outcomes
    (new,) = fake.mappings
    assert (outcome.status, outcome.settling, outcome.created_uuid) == ("done", True, new)
    assert outcome.message == (
        f"the old mapping old-0 was deleted; AWS created {new}; it was still Creating when "
        "apply was interrupted"
    )
    assert result.summary()["replaced"] == 1


def test_progress_names_only_the_calls_that_were_sent() -> None:
    """A progress line says a call is being sent, when it is: after an interrupt, the log
    names no call that never went."""
    stop = threading.Event()
    fake = SettlesNoMore(stop, "create", after=1, settle_polls=1)  # the delete settles
    fake.add("old-9", FN, queue(9))
    messages: list[str] = []
    plan = Plan([create(1), create(2), delete("old-9", 9)])

    result = applier(fake, stop=stop, progress=messages.append).apply(plan)

    assert result.interrupted
    assert [c.source for c in fake.ops("create")] == [queue(1)]  # after the delete was gone
    assert [m for m in messages if m.endswith((": creating", ": deleting old-9"))] == [
        f"worker[{queue(9)}]: deleting old-9",
        f"worker[{queue(1)}]: creating",
    ]


class RepeatsMarkers(FakeLambda):
    """An endpoint whose List repeats a NextMarker: protocol.LambdaMappings.pages refuses to
    go on with an EsmError, and so does this fake's."""

    def pages(self, **scope: str) -> Any:
        self.list_page(None, **scope)
        raise EsmError("the Lambda endpoint x repeats a ListEventSourceMappings marker")
        yield  # a generator, as the protocol's


def test_a_list_that_pages_wrongly_while_apply_waits_still_leaves_a_report() -> None:
    fake = RepeatsMarkers(settle_polls=2)

    result = applier(fake).apply(Plan([create(i) for i in range(6)]))

    assert len(fake.mappings) == 6
    assert result.summary()["created"] == 6
