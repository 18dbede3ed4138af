"""Proof under faults: plan/apply converge when Lambda throttles, fails, is busy and is slow.

The injector (tests/faults.py) sits in front of the sandbox's moto server. First its own unit
tests (a fake WSGI app, and a real botocore client to prove botocore reads the injected errors
as AWS's), then the flows.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from esm_reconcile.apply import Applier, ApplyResult
from esm_reconcile.aws import connect
from esm_reconcile.cli import main
from esm_reconcile.plan import Plan
from esm_reconcile.reconcile import make_plan
from esm_reconcile.sandbox import sandbox
from esm_reconcile.validate import load_spec
from tests.faults import (
    AMBIGUOUS_CREATE,
    AMBIGUOUS_WRITE,
    IN_USE,
    MAPPINGS,
    READ_FAILED,
    REJECTED,
    THROTTLED,
    FaultInjector,
    operation_of,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
UUID_A = "11111111-1111-1111-1111-111111111111"
UUID_B = "22222222-2222-2222-2222-222222222222"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q1"
REPO_ROOT = Path(__file__).resolve().parent.parent


# -- the injector on its own -----------------------------------------------------------------


class FakeLambda:
    """A WSGI app that answers every request 200 with a tiny JSON body and counts what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        with self.lock:
            self.seen.append((method, path))
        if method in ("POST", "PUT"):
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path.rstrip("/").endswith("event-source-mappings") and method == "GET":
            data: dict[str, Any] = {"EventSourceMappings": []}
        elif "/event-source-mappings" in path:
            data = {"UUID": UUID_A, "State": "Creating" if method == "POST" else "Enabled"}
        else:
            data = {}
        body = json.dumps(data).encode()
        status = "202 Accepted" if method in ("POST", "PUT", "DELETE") else "200 OK"
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


def wsgi_call(
    app: Any,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    call_id: str | None = None,
    service: str = "lambda",
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One request straight into a WSGI app, signed for `service`; (status, headers, JSON body)."""
    raw = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{service}/"
        "aws4_request, SignedHeaders=host, Signature=x",
    }
    if call_id:
        environ["HTTP_AMZ_SDK_INVOCATION_ID"] = call_id
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got.update(status=status, headers=headers)

    out = b"".join(app(environ, start_response))
    return int(got["status"][:3]), dict(got["headers"]), json.loads(out or b"{}")


def test_operation_names() -> None:
    assert operation_of("GET", "/2015-03-31/event-source-mappings/") == "ListEventSourceMappings"
    assert operation_of("POST", "/2015-03-31/event-source-mappings/") == "CreateEventSourceMapping"
    path = f"/2015-03-31/event-source-mappings/{UUID_A}"
    assert operation_of("GET", path) == "GetEventSourceMapping"
    assert operation_of("PUT", path) == "UpdateEventSourceMapping"
    assert operation_of("DELETE", path) == "DeleteEventSourceMapping"
    assert operation_of("GET", "/2015-03-31/functions/f") == "GetFunction"
    assert operation_of("GET", "/2017-03-31/tags/arn") == "ListTags"


def test_disarmed_injector_passes_everything_through() -> None:
    fake = FakeLambda()
    injector = FaultInjector(fake, throttle_every=1, fail_reads_every=1, in_use_first=True)
    for _ in range(5):
        assert wsgi_call(injector, "GET", "/2015-03-31/event-source-mappings/")[0] == 200
    assert len(fake.seen) == 5
    assert sum(injector.faults().values()) == 0


def test_throttles_every_kth_lambda_request_and_ignores_other_services() -> None:
    fake = FakeLambda()
    injector = FaultInjector(fake, throttle_every=3)
    with injector.armed():
        statuses = [
            wsgi_call(injector, "GET", "/2015-03-31/event-source-mappings/")[0] for _ in range(8)
        ]
        # STS/SQS/IAM requests (signed for their own service) are never faulted nor counted.
        others = [wsgi_call(injector, "POST", "/", {}, service="sts")[0] for _ in range(3)]
        status, headers, body = wsgi_call(injector, "GET", "/2015-03-31/functions/f")
    assert statuses == [200, 200, 429, 200, 200, 429, 200, 200]
    assert others == [202] * 3
    assert (status, headers["x-amzn-ErrorType"], body) == (
        429,
        "TooManyRequestsException",
        {"Type": "User", "message": "Rate exceeded"},
    )
    assert injector.faults()[THROTTLED] == 3  # the 9th Lambda request was the GetFunction
    assert len(fake.seen) == 6 + 3  # throttled requests never reach the server


def test_fails_every_kth_read_with_500_but_never_writes() -> None:
    injector = FaultInjector(FakeLambda(), fail_reads_every=2)
    path = f"/2015-03-31/event-source-mappings/{UUID_A}"
    with injector.armed():
        reads = [wsgi_call(injector, "GET", path)[0] for _ in range(4)]
        writes = [wsgi_call(injector, "PUT", path, {"BatchSize": 5})[0] for _ in range(4)]
    assert reads == [200, 500, 200, 500]
    assert writes == [202] * 4
    assert injector.faults()[READ_FAILED] == 2


def test_in_use_answers_the_first_update_and_first_delete_of_each_mapping() -> None:
    fake = FakeLambda()
    injector = FaultInjector(fake, in_use_first=True)
    a, b = (f"/2015-03-31/event-source-mappings/{u}" for u in (UUID_A, UUID_B))
    with injector.armed():
        got = [
            wsgi_call(injector, "PUT", a, {"BatchSize": 5})[0],
            wsgi_call(injector, "PUT", a, {"BatchSize": 5})[0],
            wsgi_call(injector, "PUT", b, {"BatchSize": 5})[0],
            wsgi_call(injector, "DELETE", a)[0],
            wsgi_call(injector, "DELETE", a)[0],
        ]
        status, headers, body = wsgi_call(injector, "DELETE", b)
    assert got == [400, 202, 400, 400, 202]
    assert (status, headers["x-amzn-ErrorType"]) == (400, "ResourceInUseException")
    assert body["message"] == "Cannot delete the event source mapping because it is in use."
    assert injector.faults()[IN_USE] == 4


def test_ambiguous_create_reaches_the_server_then_answers_500_once_per_identity() -> None:
    fake = FakeLambda()
    injector = FaultInjector(fake, ambiguous_creates=True)
    create = {"FunctionName": "f", "EventSourceArn": QUEUE}
    path = "/2015-03-31/event-source-mappings/"
    with injector.armed():
        first = wsgi_call(injector, "POST", path, create)
        retry = wsgi_call(injector, "POST", path, create)
        other = wsgi_call(injector, "POST", path, {**create, "FunctionName": "g"})
    assert [first[0], retry[0], other[0]] == [500, 202, 500]
    assert fake.seen.count(("POST", path)) == 3  # every one of them reached the server
    assert injector.faults()[AMBIGUOUS_CREATE] == 2
    assert [e.uuid for e in injector.events_for("CreateEventSourceMapping")] == [UUID_A] * 3


def test_ambiguous_writes_happen_then_answer_500_once_per_mapping() -> None:
    fake = FakeLambda()
    injector = FaultInjector(fake, ambiguous_writes=True)
    a = f"{MAPPINGS}/{UUID_A}"
    with injector.armed():
        got = [
            wsgi_call(injector, "PUT", a, {"BatchSize": 5})[0],
            wsgi_call(injector, "PUT", a, {"BatchSize": 5})[0],
            wsgi_call(injector, "DELETE", a)[0],
            wsgi_call(injector, "DELETE", a)[0],
            wsgi_call(injector, "POST", f"{MAPPINGS}/", {"FunctionName": "f"})[0],
        ]
    assert got == [500, 202, 500, 202, 202]  # creates are ambiguous_creates' business
    assert len(fake.seen) == 5
    assert injector.faults()[AMBIGUOUS_WRITE] == 2


def test_rejections_are_permanent() -> None:
    injector = FaultInjector(
        FakeLambda(),
        reject_sources={QUEUE: (400, "InvalidParameterValueException", "nope")},
        reject_uuids={UUID_A: (403, "AccessDeniedException", "not allowed")},
    )
    create = {"FunctionName": "f", "EventSourceArn": QUEUE}
    with injector.armed():
        got = [wsgi_call(injector, "POST", f"{MAPPINGS}/", create) for _ in range(2)]
        got += [wsgi_call(injector, "DELETE", f"{MAPPINGS}/{UUID_A}") for _ in range(2)]
        other = wsgi_call(injector, "DELETE", f"{MAPPINGS}/{UUID_B}")
    assert [(s, h["x-amzn-ErrorType"], b["message"]) for s, h, b in got] == [
        (400, "InvalidParameterValueException", "nope"),
    ] * 2 + [(403, "AccessDeniedException", "not allowed")] * 2
    assert other[0] == 202
    assert injector.faults()[REJECTED] == 4


def test_one_call_gets_at_most_max_faults_per_call() -> None:
    injector = FaultInjector(FakeLambda(), throttle_every=1, max_faults_per_call=3)
    with injector.armed():
        got = [
            wsgi_call(injector, "GET", "/2015-03-31/functions/f", call_id="call-1")[0]
            for _ in range(5)
        ]
    assert got == [429, 429, 429, 200, 200]


def test_counting_is_exact_under_concurrency() -> None:
    fake = FakeLambda()
    injector = FaultInjector(fake, throttle_every=3, max_faults_per_call=10**6)
    with injector.armed(), ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda _i: wsgi_call(injector, "GET", "/2015-03-31/functions/f")[0], range(300)
            )
        )
    assert statuses.count(429) == 100 == injector.faults()[THROTTLED]
    assert len(fake.seen) == 200
    assert len(injector.events) == 300


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retry backoff scaled to 1/20 (up to 50 ms, 100 ms, ...) in this process.

    Its real backoff (up to 1 s, 2 s, 4 s) would make a third of all requests cost ~0.5 s and
    the suite minutes long; what matters here is that calls are retried, not for how long.
    """
    from botocore.retries.standard import ExponentialBackoff

    real = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff, "delay_amount", lambda self, context: real(self, context) / 20
    )


@pytest.fixture
def fake_endpoint() -> Iterator[tuple[str, FaultInjector, FakeLambda]]:
    """The injector over the fake app, served on 127.0.0.1 so a real botocore client can call."""
    from werkzeug.serving import make_server

    fake = FakeLambda()
    injector = FaultInjector(fake)
    server = make_server("127.0.0.1", 0, injector, threaded=True)
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", injector, fake
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _client(url: str, attempts: int) -> Any:
    return boto3.client(
        "lambda",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # total_max_attempts counts the first try; botocore's max_attempts would add one to it.
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def test_botocore_reads_injected_errors_as_aws_errors(
    fake_endpoint: tuple[str, FaultInjector, FakeLambda], fast_retries: None
) -> None:
    url, injector, _fake = fake_endpoint
    once = _client(url, attempts=1)
    injector.throttle_every = 1
    with injector.armed(), pytest.raises(ClientError) as throttled:
        once.list_event_source_mappings()
    error = throttled.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("TooManyRequestsException", "Rate exceeded")
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429

    injector.throttle_every, injector.fail_reads_every = 0, 1
    with injector.armed(), pytest.raises(ClientError) as failed:
        once.get_event_source_mapping(UUID=UUID_A)
    assert failed.value.response["Error"]["Code"] == "ServiceException"

    injector.fail_reads_every, injector.in_use_first = 0, True
    with injector.armed(), pytest.raises(ClientError) as in_use:
        once.update_event_source_mapping(UUID=UUID_A, BatchSize=5)
    assert in_use.value.response["Error"]["Code"] == "ResourceInUseException"

    # Standard retries treat both the throttle and the 500 as retryable: with faults capped at
    # two per call, a call with three attempts succeeds.
    retrying = _client(url, attempts=3)
    injector.in_use_first, injector.max_faults_per_call = False, 2
    for throttle_every, fail_reads_every in ((1, 0), (0, 1)):
        injector.throttle_every, injector.fail_reads_every = throttle_every, fail_reads_every
        with injector.armed():
            answer = retrying.list_event_source_mappings()
        assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert injector.faults()[THROTTLED] == 1 + 2 and injector.faults()[READ_FAILED] == 1 + 2


# -- flows against the sandbox ---------------------------------------------------------------

SETTLE_S = 0.2  # every mapping stays Creating/Updating/Deleting this long
FUNCTIONS = [f"fi-fn{i}" for i in range(5)]
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/fi-clicks"
# Volatile or server-made fields, left out when comparing two runs' results.
VOLATILE = {"UUID", "LastModified", "EventSourceMappingArn", "StateTransitionReason"}


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


def comparable(snapshot: dict[tuple[str, str], dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {k: {f: v for f, v in m.items() if f not in VOLATILE} for k, m in snapshot.items()}


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
    """The library as the CLI drives it, on one connection, with test-speed polling."""

    def __init__(self) -> None:
        # The client-side limiter is not under test here; the injector does the throttling.
        self.aws = connect(region=REGION, max_rps=1000)

    def plan(self, path: Path) -> Plan:
        return make_plan(load_spec([path]), self.aws)

    def apply(self, path: Path, parallelism: int = 1) -> tuple[Plan, ApplyResult]:
        plan = self.plan(path)
        applier = Applier(
            self.aws.lambda_client, parallelism=parallelism, poll_start=0.02, poll_max=0.05
        )
        return plan, applier.apply(plan)


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
    assert {"Creating", "Updating", "Deleting"} <= read, read

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

    # Order: every delete (the replace's delete half included) was sent, and seen gone, before
    # any create; so the stream's new mapping never overlapped its old one.
    deletes = [e for e in injector.events_for("DeleteEventSourceMapping") if e.status == 202]
    assert len(deletes) == 7
    old_stream = old[(function_arn(FUNCTIONS[0]), STREAM)]["UUID"]
    gone = [e for e in injector.events_for("GetEventSourceMapping", old_stream) if e.status == 404]
    creates = injector.events_for("CreateEventSourceMapping")
    assert gone and creates
    assert max(e.at for e in deletes) < min(e.at for e in creates)
    assert min(e.at for e in gone) < min(e.at for e in creates)


def test_big_apply_converges_under_faults_sequential_and_parallel_alike(
    tmp_path: Path, fast_retries: None
) -> None:
    (tmp_path / "seq").mkdir()
    (tmp_path / "par").mkdir()
    sequential = run_big_apply(tmp_path / "seq", parallelism=1)
    check_big_apply(sequential)
    parallel = run_big_apply(tmp_path / "par", parallelism=6)
    check_big_apply(parallel)
    assert comparable(parallel["new"]) == comparable(sequential["new"])
    print(
        "faults injected: sequential",
        sequential["injector"].faults(),
        "parallel",
        parallel["injector"].faults(),
    )


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
    # update that adopting the raced mapping took.
    assert faults[AMBIGUOUS_CREATE] == 5 and faults[AMBIGUOUS_WRITE] == 6, faults
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
    """`esm ARGS` in this process (so it reaches the in-process sandbox): (exit, out, err)."""
    code = 0
    try:
        main(["--max-rps", "100", *args])
    except SystemExit as exited:  # commands end with sys.exit(code), except a plain success
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


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
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESM_")}
        assert env["AWS_ENDPOINT_URL"] == url  # the subprocess reaches this process's server
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))

        def command(parallelism: int) -> list[str]:
            return [
                *(sys.executable, "-m", "esm_reconcile", "--max-rps", "50", "apply"),
                *("--auto-approve", "--parallelism", str(parallelism), "-f", str(spec)),
            ]

        # Two workers: the interrupt lands with most of the creates not yet started.
        process = subprocess.Popen(
            command(2),
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        err_lines: list[str] = []
        creating = threading.Event()

        def read_stderr() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                err_lines.append(line)
                if ": creating" in line:
                    creating.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            assert creating.wait(timeout=30), "".join(err_lines)
            process.send_signal(signal.SIGINT)
            out, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.join(timeout=5)
        err = "".join(err_lines)
        assert process.returncode == 1, (out, err)
        assert "Traceback" not in out + err
        assert "Apply incomplete:" in out
        assert "Interrupted: re-run apply to converge." in out
        assert "not done:" in out
        first = by_identity(live_mappings())
        assert 0 < len(first) < 10  # it really stopped midway

        # The re-run at the CLI's default parallelism: nothing to interrupt now.
        rerun = subprocess.run(
            command(10),
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
        assert "Apply complete:" in rerun.stdout
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
        plan = make_plan(spec, aws)
        result = Applier(aws.lambda_client, parallelism=6, poll_start=0.05, poll_max=0.2).apply(
            plan
        )
        assert result.ok, [o.message for o in result.outcomes]
        assert aws.limiter.throttled > 0 and aws.limiter.lowest_rate < 20
        assert len(by_identity(live_mappings())) == 12
        assert not make_plan(spec, aws).has_changes
    assert any(status == 429 for _, _, _, status in log)
