"""Proof under faults: plan/apply converge when Lambda throttles, fails, is busy and is slow.

The injector (tests/faults.py) sits in front of the sandbox's moto server; every test asserts
that its faults really fired.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from esm_reconcile import app
from esm_reconcile.apply import Applier, ApplyResult
from esm_reconcile.aws import connect
from esm_reconcile.plan import Plan
from esm_reconcile.sandbox import sandbox
from esm_reconcile.validate import load_spec
from tests.cli_runner import run_esm, watched_esm
from tests.faults import (
    AMBIGUOUS_CREATE,
    AMBIGUOUS_WRITE,
    IN_USE,
    READ_FAILED,
    REJECTED,
    THROTTLED,
    FaultInjector,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
UUID_A = "11111111-1111-1111-1111-111111111111"
UUID_B = "22222222-2222-2222-2222-222222222222"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q1"
REPO_ROOT = Path(__file__).resolve().parent.parent


# -- flows against the sandbox ---------------------------------------------------------------

SETTLE_S = 0.2  # every mapping stays Creating/Updating/Deleting this long
FUNCTIONS = [f"fi-fn{i}" for i in range(5)]
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/fi-clicks"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The protocol's retry backoff scaled to 1/20 (up to 25 ms, 50 ms, ...) in this process.

    Its real backoff (up to 0.5 s, 1 s, 2 s) would make a third of all requests cost ~0.5 s and
    the suite minutes long; what matters here is that calls are retried, not for how long.
    """
    from esm_reconcile.engine import protocol

    monkeypatch.setattr(protocol, "BACKOFF_BASE", protocol.BACKOFF_BASE / 20)
    monkeypatch.setattr(protocol, "BACKOFF_MAX", protocol.BACKOFF_MAX / 20)


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def queue_arn(i: int) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:fi-q{i}"


def write(path: Path, functions: dict[str, list[dict[str, Any]]]) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "region": REGION, "functions": functions}))
    return path


def live_mappings() -> list[dict[str, Any]]:
    """Every mapping, read with a plain boto3 client (the sandbox's env points it there)."""
    lam = boto3.client("lambda", region_name=REGION)
    pages = lam.get_paginator("list_event_source_mappings").paginate()
    return [m for page in pages for m in page["EventSourceMappings"]]


def by_identity(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Mappings by (function, source), failing on any duplicate: AWS allows one per identity."""
    counts = Counter((m["FunctionArn"], m["EventSourceArn"]) for m in items)
    duplicates = {k: n for k, n in counts.items() if n > 1}
    assert not duplicates, f"duplicate mappings: {duplicates}"
    return {(m["FunctionArn"], m["EventSourceArn"]): m for m in items}


def creates_by_identity(injector: FaultInjector) -> Counter[str]:
    """How many mappings the server really made per identity (an ambiguous 500 included)."""
    made: Counter[str] = Counter()
    for event in injector.events_for("CreateEventSourceMapping"):
        if 200 <= event.status < 300 or event.fault == AMBIGUOUS_CREATE:
            made[event.key] += 1
    return made


def outcomes(result: ApplyResult) -> list[tuple[str, str, str, str]]:
    return [(o.change.action, o.change.address, o.status, o.message) for o in result.outcomes]


class Esm:
    """The application layer on one connection, with test-speed polling."""

    def __init__(self) -> None:
        # The client-side limiter is not under test here; the injector does the throttling.
        self.aws = connect(region=REGION, max_rps=1000)

    def plan(self, path: Path) -> Plan:
        return app.plan_one(app.load([path]), self.aws)

    def apply(self, path: Path, parallelism: int = 1) -> tuple[Plan, ApplyResult]:
        plan = self.plan(path)
        job = app.ApplyJob(plan, self.aws)
        return plan, app.apply([job], parallelism=parallelism, poll_start=0.02, poll_max=0.05)


# The big run: 5 functions, 42 queues and a Kinesis stream. Before: queues 0-29 at batch 5 and
# the stream from LATEST. After: 0-11 as they were, 12-23 at batch 7 (updates), 24-27 gone and
# fn4 (queues 28-29) emptied (deletes), 30-41 new (creates), the stream from TRIM_HORIZON
# (replace: a read position cannot change in place).
def _fn(i: int) -> str:
    return FUNCTIONS[4] if i in (28, 29) else FUNCTIONS[i % 4]


BEFORE: dict[str, list[dict[str, Any]]] = {name: [] for name in FUNCTIONS}
AFTER: dict[str, list[dict[str, Any]]] = {name: [] for name in FUNCTIONS}
for _i in range(30):
    BEFORE[_fn(_i)].append({"event_source_arn": queue_arn(_i), "batch_size": 5})
for _i in [*range(24), *range(30, 42)]:
    AFTER[_fn(_i)].append({"event_source_arn": queue_arn(_i), "batch_size": 7 if _i >= 12 else 5})
BEFORE[FUNCTIONS[0]].append({"event_source_arn": STREAM, "starting_position": "LATEST"})
AFTER[FUNCTIONS[0]].append({"event_source_arn": STREAM, "starting_position": "TRIM_HORIZON"})
SOURCES = [*map(queue_arn, range(42)), STREAM]


def run_big_apply(tmp_path: Path, parallelism: int) -> dict[str, Any]:
    """BEFORE applied without faults, then AFTER under every fault; what it saw and left."""
    injector = FaultInjector(throttle_every=3, fail_reads_every=4, in_use_first=True)
    before, after = write(tmp_path / "before.yaml", BEFORE), write(tmp_path / "after.yaml", AFTER)
    with sandbox(FUNCTIONS, SOURCES, REGION, settle_s=SETTLE_S, middleware=injector.wrap):
        esm = Esm()
        started = time.monotonic()
        _plan, seeded = esm.apply(before, parallelism=10)
        print(f"seeding apply: {time.monotonic() - started:.1f} s")
        assert seeded.ok, outcomes(seeded)
        old = by_identity(live_mappings())

        started = time.monotonic()
        with injector.armed():
            plan, result = esm.apply(after, parallelism=parallelism)
        print(f"apply under faults, parallelism {parallelism}: {time.monotonic() - started:.1f} s")
        assert plan.summary() == {"create": 12, "update": 12, "replace": 1, "delete": 6}
        assert result.ok, [o for o in outcomes(result) if o[2] != "done"]

        new = by_identity(live_mappings())  # disarmed: a fault-free read-back
        leftover = esm.plan(after)
        assert not leftover.has_changes, [(c.action, c.address) for c in leftover.changes]
    return {"injector": injector, "old": old, "new": new}


def check_big_apply(run: dict[str, Any]) -> None:
    injector, old, new = run["injector"], run["old"], run["new"]
    faults = injector.faults()
    assert faults[THROTTLED] > 0 and faults[READ_FAILED] > 0 and faults[IN_USE] > 0, faults
    # Transitions were slow enough that apply's reads saw mappings mid-change.
    read = {
        state
        for operation in ("GetEventSourceMapping", "ListEventSourceMappings")
        for event in injector.events_for(operation)
        for state in event.states
    }
    assert read & {"Creating", "Updating", "Deleting"}, read

    wanted = {
        (function_arn(name), m["event_source_arn"]): m for name, ms in AFTER.items() for m in ms
    }
    assert set(new) == set(wanted)  # nothing lost, nothing extra
    for key, mapping in new.items():
        assert mapping["State"] == "Enabled", key
        if key[1] == STREAM:
            assert mapping["StartingPosition"] == "TRIM_HORIZON"
        else:
            assert mapping["BatchSize"] == wanted[key]["batch_size"], key
    # Kept and updated mappings are the same mappings (no needless re-create); the replaced
    # one is a new mapping.
    for key in set(old) & set(new):
        same = old[key]["UUID"] == new[key]["UUID"]
        assert same == (key[1] != STREAM), key
    # Exactly one mapping made per identity, throttles and 500s notwithstanding.
    made = creates_by_identity(injector)
    assert all(n == 1 for n in made.values()), {k: n for k, n in made.items() if n > 1}
    assert len(made) == 13

    # Order (SPEC): every delete (the replace's delete half included) was sent, and was gone
    # (seen absent by a Get or a List), before any create; so the stream's new mapping never
    # overlapped its old one.
    deletes = [e for e in injector.events_for("DeleteEventSourceMapping") if e.status == 202]
    assert len(deletes) == 7
    creates = injector.events_for("CreateEventSourceMapping")
    assert creates and all(e.status != 409 for e in creates if STREAM in e.key)
    assert min(e.at for e in creates) >= max(e.at for e in deletes) + SETTLE_S


def test_big_apply_converges_under_faults(tmp_path: Path, fast_retries: None) -> None:
    """Six workers, so the faults meet concurrent calls; one worker is the same code path
    (the tests of tests/test_apply_stubber.py run it sequentially)."""
    run = run_big_apply(tmp_path, parallelism=6)
    check_big_apply(run)
    print("faults injected:", run["injector"].faults())


def test_ambiguous_writes_are_adopted_not_duplicated(tmp_path: Path, fast_retries: None) -> None:
    """The first create of each identity, and the first update and delete of each mapping,
    happen at the server but answer 500; botocore retries. A retried create meets 409
    ResourceConflictException (the sandbox's duplicate check names the UUID) and apply must adopt
    the mapping it already made; a retried update or delete meets a mapping mid-transition.
    One more mapping is made behind apply's back after the plan, with another batch size: its
    create meets 409 too and must become an update, not a failure."""
    fn0, fn1 = FUNCTIONS[0], FUNCTIONS[1]
    before = write(
        tmp_path / "before.yaml",
        {fn0: [{"event_source_arn": queue_arn(i), "batch_size": 4} for i in (0, 1, 2, 9, 10)]},
    )
    functions = {
        fn0: [{"event_source_arn": queue_arn(i), "batch_size": 6} for i in range(5)],
        fn1: [{"event_source_arn": queue_arn(i), "batch_size": 6} for i in range(5, 9)],
    }
    after = write(tmp_path / "after.yaml", functions)
    raced = (function_arn(fn1), queue_arn(8))
    injector = FaultInjector(ambiguous_creates=True, ambiguous_writes=True, throttle_every=5)
    with sandbox([fn0, fn1], SOURCES[:11], REGION, settle_s=SETTLE_S, middleware=injector.wrap):
        esm = Esm()
        assert esm.apply(before, parallelism=10)[1].ok
        plan = esm.plan(after)
        assert plan.summary() == {"create": 6, "update": 3, "replace": 0, "delete": 2}
        lam = boto3.client("lambda", region_name=REGION)
        lam.create_event_source_mapping(FunctionName=raced[0], EventSourceArn=raced[1], BatchSize=9)
        with injector.armed():
            applier = Applier(esm.aws.lambda_client, parallelism=4, poll_start=0.02, poll_max=0.05)
            result = applier.apply(plan)
        assert result.ok, outcomes(result)

        live = by_identity(live_mappings())
        wanted = {
            (function_arn(f), m["event_source_arn"]) for f, ms in functions.items() for m in ms
        }
        assert set(live) == wanted
        assert {m["BatchSize"] for m in live.values()} == {6}
        assert {m["State"] for m in live.values()} == {"Enabled"}
        assert not esm.plan(after).has_changes
        # Apply reports the adopted mappings' UUIDs, not ones it lost track of.
        for o in result.outcomes:
            if o.change.action == "create":
                assert (
                    o.created_uuid == live[(o.change.function_arn, o.change.event_source)]["UUID"]
                )

    faults = injector.faults()
    # All creates but the raced one (which met a 409 at once); 3 updates, 2 deletes, and the
    # update that adopting the raced mapping took, when that mapping had settled by then (the
    # injector counts only writes the server carried out; one refused as in use is not).
    assert faults[AMBIGUOUS_CREATE] == 5 and faults[AMBIGUOUS_WRITE] in (5, 6), faults
    made = creates_by_identity(injector)
    assert len(made) == 5 and set(made.values()) == {1}, made
    conflicts = [e for e in injector.events_for("CreateEventSourceMapping") if e.status == 409]
    assert len(conflicts) == 6  # each ambiguous create's retry, and the raced create
    print("faults injected:", faults)


def test_replace_interrupted_while_its_old_mapping_is_deleting_is_finished_by_a_rerun(
    tmp_path: Path, fast_retries: None
) -> None:
    """The riskiest moment to stop: a replace's old mapping is Deleting and the new one is not
    made yet. Stopping there (as Ctrl-C does) must skip the rest, and the re-run must create the
    new mapping once the old one is gone, so the stream is left with exactly one mapping."""
    fn = FUNCTIONS[0]
    before = write(
        tmp_path / "before.yaml",
        {
            fn: [
                {"event_source_arn": STREAM, "starting_position": "LATEST"},
                {"event_source_arn": queue_arn(0), "batch_size": 5},
            ]
        },
    )
    after = write(
        tmp_path / "after.yaml",
        {
            fn: [
                {"event_source_arn": STREAM, "starting_position": "TRIM_HORIZON"},
                {"event_source_arn": queue_arn(0), "batch_size": 3},
            ]
        },
    )
    injector = FaultInjector(throttle_every=3)
    with sandbox([fn], [STREAM, queue_arn(0)], REGION, settle_s=0.5, middleware=injector.wrap):
        esm = Esm()
        assert esm.apply(before, parallelism=4)[1].ok
        old_stream = by_identity(live_mappings())[(function_arn(fn), STREAM)]["UUID"]
        stop = threading.Event()

        def progress(message: str) -> None:
            if ": deleting" in message:
                stop.set()  # what the CLI's SIGINT handler does; the delete itself still goes

        plan = esm.plan(after)
        applier = Applier(
            esm.aws.lambda_client,
            parallelism=4,
            poll_start=0.02,
            poll_max=0.05,
            progress=progress,
            stop=stop,
        )
        with injector.armed():
            result = applier.apply(plan)
        assert result.interrupted and not result.ok
        assert {o.status for o in result.outcomes} == {"skipped"}, outcomes(result)
        assert not injector.events_for("CreateEventSourceMapping")
        assert [e.status for e in injector.events_for("DeleteEventSourceMapping")] == [202]

        rerun = esm.plan(after)
        assert [(c.action, c.wait_gone) for c in rerun.changes if c.event_source == STREAM] in (
            [("create", [old_stream])],  # still Deleting: the create waits for it
            [("create", [])],  # already gone
        )
        with injector.armed():
            _plan, result = esm.apply(after, parallelism=4)
        assert result.ok, outcomes(result)
        live = by_identity(live_mappings())
        assert live[(function_arn(fn), STREAM)]["StartingPosition"] == "TRIM_HORIZON"
        assert live[(function_arn(fn), STREAM)]["UUID"] != old_stream
        assert live[(function_arn(fn), queue_arn(0))]["BatchSize"] == 3
        assert len(live) == 2
        assert not esm.plan(after).has_changes
    assert injector.faults()[THROTTLED] > 0


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`esm ARGS` in this process, against the sandbox this test started: (exit, out, err)."""
    result = run_esm("--max-rps", "100", *args, endpoint=os.environ["AWS_ENDPOINT_URL"])
    return result.code, result.out, result.err


NO_QUEUE = (
    "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. "
    "SQS Error Message: The specified queue does not exist."
)
DENIED = "User is not authorized to perform: lambda:DeleteEventSourceMapping"


def test_partial_failure_does_not_stop_independent_changes_and_rerun_converges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One create fails for good (AWS refuses the queue) and one replace cannot delete its old
    mapping (access denied); the other create, update and delete still happen; exit 1 and the
    summary names both failures with AWS's words; the replace never creates (nothing lost).
    With the causes gone, re-running apply converges."""
    fn0, fn1 = FUNCTIONS[0], FUNCTIONS[1]
    before = write(
        tmp_path / "before.yaml",
        {
            fn0: [{"event_source_arn": queue_arn(i), "batch_size": 5} for i in range(3)],
            fn1: [
                {"event_source_arn": queue_arn(3), "batch_size": 5},
                {"event_source_arn": STREAM, "starting_position": "LATEST"},
            ],
        },
    )
    after = write(
        tmp_path / "after.yaml",
        {
            fn0: [
                {"event_source_arn": queue_arn(0), "batch_size": 6},  # update
                {"event_source_arn": queue_arn(2), "batch_size": 5},  # as it is
                {"event_source_arn": queue_arn(4), "batch_size": 5},  # create
                {"event_source_arn": queue_arn(5), "batch_size": 5},  # create: refused
            ],  # queue 1 no longer listed: delete
            fn1: [
                {"event_source_arn": queue_arn(3), "batch_size": 5},
                {"event_source_arn": STREAM, "starting_position": "TRIM_HORIZON"},  # replace
            ],
        },
    )
    injector = FaultInjector(
        reject_sources={queue_arn(5): (400, "InvalidParameterValueException", NO_QUEUE)}
    )
    with sandbox([fn0, fn1], [*SOURCES[:6], STREAM], REGION, middleware=injector.wrap):
        code, _out, err = run_cli("apply", "--auto-approve", "-f", str(before), capsys=capsys)
        assert code == 0, err
        old = by_identity(live_mappings())
        old_stream = old[(function_arn(fn1), STREAM)]
        injector.reject_uuids[old_stream["UUID"]] = (403, "AccessDeniedException", DENIED)

        with injector.armed():
            code, out, err = run_cli("apply", "--auto-approve", "-f", str(after), capsys=capsys)
        assert code == 1, (out, err)
        assert "Apply incomplete: 1 created, 1 updated, 0 replaced, 1 deleted." in out
        failed = [line.strip() for line in out.splitlines() if line.strip().startswith("failed:")]
        assert len(failed) == 2, out
        q5 = f"{fn0}[{queue_arn(5)}]"
        stream = f"{fn1}[{STREAM}]"
        assert any(
            line.startswith(f"failed: {q5} (create):") and NO_QUEUE in line for line in failed
        ), failed
        assert any(
            line.startswith(f"failed: {stream} (delete):") and DENIED in line for line in failed
        ), failed
        assert "Traceback" not in out + err

        live = by_identity(live_mappings())
        assert live[(function_arn(fn0), queue_arn(0))]["BatchSize"] == 6
        assert (function_arn(fn0), queue_arn(1)) not in live
        assert (function_arn(fn0), queue_arn(4)) in live
        assert (function_arn(fn0), queue_arn(5)) not in live
        # The replace's delete failed, so it never created: the old mapping is still there.
        assert live[(function_arn(fn1), STREAM)]["UUID"] == old_stream["UUID"]

        injector.reject_sources.clear()
        injector.reject_uuids.clear()
        with injector.armed():
            code, out, err = run_cli("apply", "--auto-approve", "-f", str(after), capsys=capsys)
        assert code == 0, (out, err)
        assert "Apply complete: 1 created, 0 updated, 1 replaced, 0 deleted." in out
        live = by_identity(live_mappings())
        assert len(live) == 6
        assert live[(function_arn(fn1), STREAM)]["StartingPosition"] == "TRIM_HORIZON"
        code, out, err = run_cli("plan", "--detailed-exitcode", "-f", str(after), capsys=capsys)
        assert code == 0, out
    assert injector.faults()[REJECTED] == 2


def test_interrupted_apply_then_rerun_converges(tmp_path: Path) -> None:
    """`esm apply` in a subprocess, against the in-process sandbox with slow transitions, gets
    SIGINT as soon as it starts creating: it stops cleanly (exit 1, says what was not done and
    to re-run). The re-run creates the rest without duplicating what the first run made."""
    functions = {
        FUNCTIONS[0]: [{"event_source_arn": queue_arn(i), "batch_size": 3} for i in range(6)],
        FUNCTIONS[1]: [{"event_source_arn": queue_arn(i), "batch_size": 3} for i in range(6, 10)],
    }
    spec = write(tmp_path / "spec.yaml", functions)
    with sandbox(FUNCTIONS[:2], SOURCES[:10], REGION, settle_s=1.0) as url:
        assert os.environ["AWS_ENDPOINT_URL"] == url  # the subprocess reaches this server

        def command(parallelism: int) -> list[str]:
            return [
                *("--max-rps", "50", "apply", "--auto-approve"),
                *("--parallelism", str(parallelism), "-f", str(spec)),
            ]

        # Two workers: the interrupt lands with most of the creates not yet started.
        with watched_esm(*command(2), marker=": creating") as esm:
            esm.wait_for_marker()
            esm.process.send_signal(signal.SIGINT)
            out, _ = esm.process.communicate(timeout=30)
        assert esm.process.returncode == 1, (out, esm.err)
        assert "Traceback" not in out + esm.err
        assert "Apply incomplete:" in out
        assert "Interrupted: re-run apply to converge." in out
        assert "not done:" in out
        # The create in flight when the signal came was accepted: counted, and said to settle.
        assert "still settling:" in out
        first = by_identity(live_mappings())
        assert 0 < len(first) < 10  # it really stopped midway

        # The re-run at the CLI's default parallelism: nothing to interrupt now.
        rerun = run_esm(*command(10), endpoint=url)
        assert rerun.code == 0, rerun.output
        assert "Apply complete:" in rerun.out
        live = by_identity(live_mappings())
        assert set(live) == {
            (function_arn(f), m["event_source_arn"]) for f, ms in functions.items() for m in ms
        }
        # What the first run made was kept, not made again.
        assert all(live[key]["UUID"] == m["UUID"] for key, m in first.items())
        assert not Esm().plan(spec).has_changes


def test_a_quota_below_max_rps_slows_the_client_and_apply_still_converges(
    tmp_path: Path, fast_retries: None
) -> None:
    """Other callers can use up the account's quota: the server allows 4 req/s while esm is
    configured for 20. Throttled answers halve esm's rate; nothing fails; the plan converges."""
    functions = {
        f"fi-fn{f}": [{"event_source_arn": queue_arn(f * 4 + i)} for i in range(4)]
        for f in range(3)
    }
    spec_path = write(tmp_path / "quota.yaml", functions)
    sources = [m["event_source_arn"] for ms in functions.values() for m in ms]
    log: list[tuple[float, str, str, int]] = []
    with sandbox(list(functions), sources, REGION, quota_rps=4, response_log=log):
        spec = load_spec([spec_path])
        aws = connect(region=REGION, max_rps=20)
        plan = app.plan_one(spec, aws)
        result = Applier(aws.lambda_client, parallelism=6, poll_start=0.05, poll_max=0.2).apply(
            plan
        )
        assert result.ok, [o.message for o in result.outcomes]
        assert aws.limiter.throttled > 0 and aws.limiter.lowest_rate < 20
        assert len(by_identity(live_mappings())) == 12
        assert not app.plan_one(spec, aws).has_changes
    assert any(status == 429 for _, _, _, status in log)
