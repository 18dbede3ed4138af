"""The sandbox: an embedded moto server, seeded, that plain boto3 clients reach via the env."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from esm_reconcile.errors import EsmError
from esm_reconcile.sandbox import (
    MappingIdentity,
    WSGIApp,
    choose_account,
    create_mappings_in_backend,
    sandbox,
)

pytest.importorskip("moto.server")

REGION = "us-east-1"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"

QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-queue"
FIFO_QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-queue.fifo"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
TABLE_STREAM = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/audit/stream/2024-01-01T00:00:00.000"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:failures"
REFS = ["orders", "clicks:live", "clicks", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:audit:3"]


def test_seeded_sandbox_hosts_mappings_for_plain_boto3_clients() -> None:
    sources = [
        QUEUE,
        FIFO_QUEUE,
        STREAM,
        TABLE_STREAM,
        TOPIC,
        # moto cannot host these; the sandbox skips them instead of failing.
        f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/c/0123-abcd",
        f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/views/consumer/app:1700000000",
    ]
    with sandbox(REFS, sources, REGION) as url:
        assert urlsplit(url).hostname == "127.0.0.1"
        # No endpoint_url: the clients must find the sandbox through AWS_ENDPOINT_URL.
        lam = boto3.client("lambda")
        mappings = {
            QUEUE: "orders",
            FIFO_QUEUE: "orders",
            STREAM: "clicks:live",
            TABLE_STREAM: "audit:3",
        }
        for source, function in mappings.items():
            extra = {} if source.startswith("arn:aws:sqs") else {"StartingPosition": "LATEST"}
            lam.create_event_source_mapping(EventSourceArn=source, FunctionName=function, **extra)

        listed = lam.list_event_source_mappings()["EventSourceMappings"]
        assert {m["EventSourceArn"] for m in listed} == set(mappings)

        aliases = lam.list_aliases(FunctionName="clicks")["Aliases"]
        assert [a["Name"] for a in aliases] == ["live"]
        versions = lam.list_versions_by_function(FunctionName="audit")["Versions"]
        assert "3" in {v["Version"] for v in versions}
        assert lam.get_function(FunctionName="orders")["Configuration"]["Runtime"] == "python3.12"

        attrs = boto3.client("sqs").get_queue_attributes(
            QueueUrl=boto3.client("sqs").get_queue_url(QueueName="orders-queue.fifo")["QueueUrl"],
            AttributeNames=["FifoQueue"],
        )["Attributes"]
        assert attrs["FifoQueue"] == "true"
        topics = boto3.client("sns").list_topics()["Topics"]
        assert [t["TopicArn"] for t in topics] == [TOPIC]
        assert sorted(boto3.client("kinesis").list_streams()["StreamNames"]) == ["clicks", "views"]
        assert boto3.client("sts").get_caller_identity()["Account"] == ACCOUNT


def test_account_id_is_the_account_of_sts_and_seeded_resources() -> None:
    with sandbox(["orders"], [f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:q"], REGION, OTHER_ACCOUNT):
        assert boto3.client("sts").get_caller_identity()["Account"] == OTHER_ACCOUNT
        sqs = boto3.client("sqs")
        arn = sqs.get_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName="q")["QueueUrl"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        assert arn == f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:q"
        function_arn = boto3.client("lambda").get_function(FunctionName="orders")["Configuration"][
            "FunctionArn"
        ]
        assert function_arn == f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:orders"


def test_account_is_taken_from_the_arns_when_not_given() -> None:
    table_stream = (
        f"arn:aws:dynamodb:eu-west-1:{OTHER_ACCOUNT}:table/t/stream/2024-05-05T10:00:00.000"
    )
    with sandbox([f"{OTHER_ACCOUNT}:function:f"], [table_stream], "eu-west-1"):
        assert boto3.client("sts").get_caller_identity()["Account"] == OTHER_ACCOUNT
        boto3.client("lambda").create_event_source_mapping(
            EventSourceArn=table_stream, FunctionName="f", StartingPosition="LATEST"
        )


def test_more_than_one_account_is_refused() -> None:
    with (
        pytest.raises(EsmError, match="single account"),
        sandbox(["orders"], [QUEUE, f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:q"], REGION),
    ):
        pass
    with (
        pytest.raises(EsmError, match="single account"),
        sandbox([], [QUEUE], REGION, OTHER_ACCOUNT),
    ):
        pass


def test_choose_account_takes_the_one_account_named_or_asked_for() -> None:
    """No server: what the CLI asks before it starts a multi-region sandbox."""
    assert choose_account(None, ["orders"], ["arn:aws:sns:eu-west-1:*:nowhere"]) == ACCOUNT
    assert choose_account(None, [f"{OTHER_ACCOUNT}:function:f"], []) == OTHER_ACCOUNT
    queue = f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:q"
    assert choose_account(OTHER_ACCOUNT, ["orders"], [queue]) == OTHER_ACCOUNT
    with pytest.raises(EsmError, match="single account"):
        choose_account(None, [f"{OTHER_ACCOUNT}:function:f"], [QUEUE])
    with pytest.raises(EsmError, match="12 digits"):
        choose_account("12", [], [])
    with pytest.raises(EsmError, match="which function"):
        choose_account(None, ["a:b:c:d"], [])


def test_environment_restored_and_server_stopped_on_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "real-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "https://sqs.example.com")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    before = dict(os.environ)

    with pytest.raises(RuntimeError), sandbox([], [], "eu-central-1") as url:
        assert os.environ["AWS_ENDPOINT_URL"] == url
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
        assert os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"
        assert os.environ["AWS_DEFAULT_REGION"] == os.environ["AWS_REGION"] == "eu-central-1"
        for gone in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_SQS"):
            assert gone not in os.environ
        boto3.client("sqs").create_queue(QueueName="inside")
        raise RuntimeError("the body failed")

    assert dict(os.environ) == before
    address = urlsplit(url)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address.hostname, address.port), timeout=2).close()


def test_missing_moto_is_an_esm_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)  # makes the import raise ImportError
    with pytest.raises(EsmError, match="pip install"), sandbox([], [], REGION):
        pass


def test_unreadable_function_ref_is_an_esm_error() -> None:
    with pytest.raises(EsmError, match="which function"), sandbox(["a:b:c:d"], [], REGION):
        pass


def test_sandbox_pages_list_like_aws() -> None:
    """moto returns every mapping at once; the sandbox pages by <=100 with NextMarker like AWS."""
    queues = [f"arn:aws:sqs:us-east-1:123456789012:page-q{i}" for i in range(5)]
    log: list[tuple[str, str]] = []
    with sandbox(["pager"], queues, "us-east-1", request_log=log):
        client = boto3.client("lambda")
        for arn in queues:
            client.create_event_source_mapping(FunctionName="pager", EventSourceArn=arn)
        first = client.list_event_source_mappings(MaxItems=2)
        assert len(first["EventSourceMappings"]) == 2 and first["NextMarker"]
        log.clear()
        pages = list(
            client.get_paginator("list_event_source_mappings").paginate(
                PaginationConfig={"PageSize": 2}
            )
        )
        assert [len(p["EventSourceMappings"]) for p in pages] == [2, 2, 1]
        assert {m["EventSourceArn"] for p in pages for m in p["EventSourceMappings"]} == set(queues)
        assert len(log) == 3


# -- AWS-like behaviour: duplicates, transitions, quota, latency --------------------------------

# `max_attempts` counts retries (1 still retries once); this is one attempt and no retry.
NO_RETRIES = Config(retries={"total_max_attempts": 1})
SETTLE_S = 0.6  # long enough for a few calls on a busy machine, short enough for a fast suite
MAPPINGS = "/2015-03-31/event-source-mappings"


def settle(since: float) -> None:
    """Sleep until `since` + SETTLE_S has passed, with a little slack."""
    time.sleep(max(0.0, since + SETTLE_S - time.monotonic()) + 0.05)


def states(lam: Any) -> list[str]:
    return [m["State"] for m in lam.list_event_source_mappings()["EventSourceMappings"]]


def test_duplicate_create_is_a_resource_conflict_naming_the_existing_uuid() -> None:
    other_queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:other-queue"
    with sandbox(["dup", "dup:live"], [QUEUE, other_queue, STREAM], REGION):
        lam = boto3.client("lambda", config=NO_RETRIES)
        first = lam.create_event_source_mapping(FunctionName="dup", EventSourceArn=QUEUE)
        # A name and the unqualified ARN are the same function.
        for function in ("dup", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:dup"):
            with pytest.raises(ClientError) as caught:
                lam.create_event_source_mapping(FunctionName=function, EventSourceArn=QUEUE)
            answer = caught.value.response
            assert answer["ResponseMetadata"]["HTTPStatusCode"] == 409
            assert answer["Error"]["Code"] == "ResourceConflictException"
            assert answer["Error"]["Message"] == (
                f'An event source mapping with SQS arn (" {QUEUE} ") and function (" dup ") '
                "already exists. Please update or delete the existing mapping with UUID "
                + first["UUID"]
            )
        # A qualified function is another function; a stream has AWS's other wording.
        live = lam.create_event_source_mapping(FunctionName="dup:live", EventSourceArn=QUEUE)
        kinesis = lam.create_event_source_mapping(
            FunctionName="dup", EventSourceArn=STREAM, StartingPosition="LATEST"
        )
        with pytest.raises(lam.exceptions.ResourceConflictException) as caught:
            lam.create_event_source_mapping(
                FunctionName="dup", EventSourceArn=STREAM, StartingPosition="LATEST"
            )
        assert caught.value.response["Error"]["Message"] == (
            f'The event source arn (" {STREAM} ") and function (" dup ") provided mapping '
            f"already exists. Please update or delete the existing mapping with UUID {kinesis['UUID']}"
        )
        # Retargeting onto an existing pair is a duplicate too.
        with pytest.raises(lam.exceptions.ResourceConflictException, match=first["UUID"]):
            lam.update_event_source_mapping(UUID=live["UUID"], FunctionName="dup")

        # Found in moto's state, so a mapping made straight in moto's backend counts too.
        [behind] = create_mappings_in_backend(
            ACCOUNT, REGION, [{"FunctionName": "dup", "EventSourceArn": other_queue}]
        )
        with pytest.raises(lam.exceptions.ResourceConflictException, match=behind):
            lam.create_event_source_mapping(FunctionName="dup", EventSourceArn=other_queue)

        # settle_s=0: a delete frees the pair at once.
        lam.delete_event_source_mapping(UUID=first["UUID"])
        lam.create_event_source_mapping(FunctionName="dup", EventSourceArn=QUEUE)
        assert len(lam.list_event_source_mappings()["EventSourceMappings"]) == 4


def test_identity_of_kafka_mappings() -> None:
    """moto hosts no Kafka source, so the rules are checked on MappingIdentity itself."""
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:k:live"

    def brokers(*servers: str, topic: str = "t") -> MappingIdentity | None:
        fields = {
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(servers)}},
            "Topics": [topic],
        }
        return MappingIdentity.of(fn, fields)

    existing = brokers("b1:9092", "b2:9092")
    assert existing is not None
    # Overlapping broker lists conflict (AWS-recorded); another topic does not.
    assert brokers("b2:9092", "b3:9092").conflicts_with(existing)  # type: ignore[union-attr]
    assert not brokers("b3:9092").conflicts_with(existing)  # type: ignore[union-attr]
    assert not brokers("b1:9092", topic="u").conflicts_with(existing)  # type: ignore[union-attr]
    assert existing.conflict_message("U-1") == (
        f'An event source mapping with event source ("b1:9092,b2:9092"), function ("{fn}"), '
        'topics ("t") already exists. Please update or delete the existing mapping with UUID U-1'
    )
    msk = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/c/0123-abcd"
    one = MappingIdentity.of(fn, {"EventSourceArn": msk, "Topics": ["a"]})
    other_topic = MappingIdentity.of(fn, {"EventSourceArn": msk, "Topics": ["b"]})
    assert one is not None and other_topic is not None
    assert one.conflicts_with(one) and not other_topic.conflicts_with(one)
    assert MappingIdentity.of(None, {"EventSourceArn": msk}) is None


def test_settle_create_and_update_pass_through_states_and_refuse_changes_meanwhile() -> None:
    third_queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:third-queue"
    with sandbox(["st"], [QUEUE, FIFO_QUEUE, third_queue], REGION, settle_s=SETTLE_S):
        lam = boto3.client("lambda", config=NO_RETRIES)
        created = lam.create_event_source_mapping(FunctionName="st", EventSourceArn=QUEUE)
        since, uuid = time.monotonic(), created["UUID"]
        assert created["State"] == "Creating"
        assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Creating"
        assert states(lam) == ["Creating"]
        with pytest.raises(lam.exceptions.ResourceInUseException) as caught:
            lam.update_event_source_mapping(UUID=uuid, BatchSize=5)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert caught.value.response["Error"]["Message"] == (
            "Cannot update the event source mapping because it is in use."
        )
        with pytest.raises(lam.exceptions.ResourceInUseException, match="Cannot delete"):
            lam.delete_event_source_mapping(UUID=uuid)
        # A disabled create is Disabled at once, as AWS answers it.
        disabled = [
            lam.create_event_source_mapping(FunctionName="st", EventSourceArn=arn, Enabled=False)
            for arn in (FIFO_QUEUE, third_queue)
        ]
        assert [m["State"] for m in disabled] == ["Disabled", "Disabled"]
        settle(since)
        assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"

        # Flipping Enabled is Disabling/Enabling; any other change is Updating.
        changed = [
            lam.update_event_source_mapping(UUID=uuid, Enabled=False),
            lam.update_event_source_mapping(UUID=disabled[0]["UUID"], Enabled=True),
            lam.update_event_source_mapping(UUID=disabled[1]["UUID"], BatchSize=5, Enabled=False),
        ]
        since = time.monotonic()
        assert [m["State"] for m in changed] == ["Disabling", "Enabling", "Updating"]
        assert sorted(states(lam)) == ["Disabling", "Enabling", "Updating"]
        with pytest.raises(lam.exceptions.ResourceInUseException):
            lam.update_event_source_mapping(UUID=uuid, Enabled=True)
        settle(since)
        settled = [lam.get_event_source_mapping(UUID=m["UUID"]) for m in changed]
        assert [m["State"] for m in settled] == ["Disabled", "Enabled", "Disabled"]
        assert settled[2]["BatchSize"] == 5


def test_settle_delete_keeps_a_deleting_mapping_until_it_is_gone() -> None:
    with sandbox(["dl"], [QUEUE], REGION, settle_s=SETTLE_S):
        lam = boto3.client("lambda", config=NO_RETRIES)
        # Disabled: no Creating to wait out before the delete.
        uuid = lam.create_event_source_mapping(
            FunctionName="dl", EventSourceArn=QUEUE, Enabled=False
        )["UUID"]
        deleted = lam.delete_event_source_mapping(UUID=uuid)
        since = time.monotonic()
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
        assert (deleted["UUID"], deleted["State"], deleted["EventSourceArn"]) == (
            uuid,
            "Deleting",
            QUEUE,
        )
        assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Deleting"
        assert states(lam) == ["Deleting"]
        with pytest.raises(lam.exceptions.ResourceInUseException, match="Cannot delete"):
            lam.delete_event_source_mapping(UUID=uuid)
        with pytest.raises(lam.exceptions.ResourceInUseException, match="Cannot update"):
            lam.update_event_source_mapping(UUID=uuid, BatchSize=3)
        with pytest.raises(lam.exceptions.ResourceConflictException, match=uuid):
            lam.create_event_source_mapping(FunctionName="dl", EventSourceArn=QUEUE)

        settle(since)
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
            lam.get_event_source_mapping(UUID=uuid)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert states(lam) == []
        again = lam.create_event_source_mapping(FunctionName="dl", EventSourceArn=QUEUE)
        assert again["UUID"] != uuid


def _burst(call: Callable[[], Any], n: int) -> list[Any]:
    """`n` calls at once; each one's answer or ClientError."""

    def one(_: int) -> Any:
        try:
            return call()
        except ClientError as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_quota_throttles_lambda_like_aws_and_standard_retries_get_through() -> None:
    responses: list[tuple[float, str, str, int]] = []
    with sandbox(["qt"], [QUEUE], REGION, quota_rps=10, response_log=responses):
        lam = boto3.client("lambda", config=NO_RETRIES.merge(Config(max_pool_connections=30)))
        answers = _burst(lam.list_event_source_mappings, 30)
        throttled = [a for a in answers if isinstance(a, ClientError)]
        # The first 10 find a saved-up token (burst = rate); 30 at once cannot all.
        assert len(answers) - len(throttled) >= 10 and throttled
        for exc in throttled:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert exc.response["Error"] == {
                "Code": "TooManyRequestsException",
                "Message": "Rate exceeded",
            }
            assert exc.response["Reason"] == "CallerRateLimitExceeded"
            assert exc.response["Type"] == "User"
        # Only Lambda has the quota.
        sqs = boto3.client("sqs", config=NO_RETRIES)
        for _ in range(15):
            sqs.list_queues()

        # botocore's standard mode takes the 429 for throttling: it backs off and retries.
        retrying = boto3.client(
            "lambda",
            config=Config(
                retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=20
            ),
        )
        answers = _burst(retrying.list_event_source_mappings, 15)
        assert not [a for a in answers if isinstance(a, ClientError)]
        retries = sum(a["ResponseMetadata"]["RetryAttempts"] for a in answers)
        assert retries > 0
        # The server logged every 429 it sent: the first burst's and each retried one.
        assert sum(1 for *_, status in responses if status == 429) == len(throttled) + retries


def test_latency_middleware_and_response_log() -> None:
    latency_s = 0.2
    seen: list[str] = []
    failed: list[str] = []

    def first_get_function_fails(app: WSGIApp) -> WSGIApp:
        """Stands in front of everything: it sees, and may answer, what nothing else sees."""

        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ["PATH_INFO"]
            seen.append(path)
            if path == "/2015-03-31/functions/lat" and not failed:
                failed.append(path)
                start_response(
                    "500 Internal Server Error", [("x-amzn-ErrorType", "ServiceException")]
                )
                return [b"{}"]
            return app(environ, start_response)

        return wrapped

    responses: list[tuple[float, str, str, int]] = []
    requests: list[tuple[str, str]] = []
    with sandbox(
        ["lat"],
        [QUEUE],
        REGION,
        request_log=requests,
        latency_s=latency_s,
        middleware=first_get_function_fails,
        response_log=responses,
    ):
        lam = boto3.client("lambda", config=Config(retries={"mode": "standard", "max_attempts": 2}))
        started = time.monotonic()
        got = lam.get_function(FunctionName="lat")
        assert got["ResponseMetadata"]["RetryAttempts"] == 1
        lam.create_event_source_mapping(FunctionName="lat", EventSourceArn=QUEUE)
        with pytest.raises(lam.exceptions.ResourceConflictException):
            lam.create_event_source_mapping(FunctionName="lat", EventSourceArn=QUEUE)
        # Three Lambda requests reached the server (the faulted one did not), each delayed.
        assert time.monotonic() - started >= 3 * latency_s
        sqs = boto3.client("sqs")
        fastest = min(_timed(sqs.list_queues) for _ in range(3))
        assert fastest < latency_s  # other services are not delayed

    assert seen.count("/2015-03-31/functions/lat") == 2
    # The logs are inside the middleware: they saw only what got past it.
    assert requests.count(("GET", "/2015-03-31/functions/lat")) == 1
    lambda_answers = [(m, p, status) for _, m, p, status in responses if p.startswith("/2015")]
    assert lambda_answers[-3:] == [
        ("GET", "/2015-03-31/functions/lat", 200),
        ("POST", MAPPINGS, 201),
        ("POST", MAPPINGS, 409),
    ]
    times = [t for t, *_ in responses]
    assert times == sorted(times)


def _timed(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_settle_moves_last_modified_to_the_call_then_to_when_the_state_settled() -> None:
    """AWS: LastModified is "the date that the event source mapping was last updated or that
    its state changed"; a sweep can then tell a settle that happened after a call's answer."""
    with sandbox(["lm"], [QUEUE, FIFO_QUEUE], REGION, settle_s=SETTLE_S):
        lam = boto3.client("lambda", config=NO_RETRIES)

        def modified(item: dict[str, Any]) -> float:
            return float(item["LastModified"].timestamp())

        before = time.time()
        created = lam.create_event_source_mapping(FunctionName="lm", EventSourceArn=QUEUE)
        since, after, uuid = time.monotonic(), time.time(), created["UUID"]
        answered = modified(created)
        assert before - 0.01 <= answered <= after + 0.01  # the call's time, not whole seconds
        assert modified(lam.get_event_source_mapping(UUID=uuid)) == pytest.approx(answered)
        settle(since)
        got = lam.get_event_source_mapping(UUID=uuid)
        [listed] = lam.list_event_source_mappings()["EventSourceMappings"]
        assert got["State"] == listed["State"] == "Enabled"
        assert modified(got) == modified(listed) > answered
        assert modified(got) == pytest.approx(answered + SETTLE_S, abs=0.05)
        assert modified(got) <= time.time()

        updated = lam.update_event_source_mapping(UUID=uuid, BatchSize=5)
        since = time.monotonic()
        assert updated["State"] == "Updating"
        assert modified(updated) > modified(got)
        settle(since)
        assert modified(lam.get_event_source_mapping(UUID=uuid)) > modified(updated)

        deleted = lam.delete_event_source_mapping(UUID=uuid)
        assert deleted["State"] == "Deleting"
        assert modified(deleted) >= modified(updated) + SETTLE_S
        assert modified(lam.get_event_source_mapping(UUID=uuid)) == pytest.approx(modified(deleted))

        # A disabled create settles at once: its answer carries the call's time all the same.
        before = time.time()
        disabled = lam.create_event_source_mapping(
            FunctionName="lm", EventSourceArn=FIFO_QUEUE, Enabled=False
        )
        assert disabled["State"] == "Disabled"
        assert before - 0.01 <= modified(disabled) <= time.time() + 0.01


def test_without_settle_last_modified_is_moto_s() -> None:
    with sandbox(["lm0"], [QUEUE], REGION):
        lam = boto3.client("lambda", config=NO_RETRIES)
        created = lam.create_event_source_mapping(FunctionName="lm0", EventSourceArn=QUEUE)
        stamp = created["LastModified"].timestamp()
        assert stamp == int(stamp)  # moto stamps whole seconds; nothing rewrites them
