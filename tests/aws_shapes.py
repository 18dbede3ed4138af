"""AWS-shaped test doubles shared by the offline test files.

Two things live here, so that every test file fakes AWS the same way:

- Read-backs: Get/List items as AWS returns them for a mapping created with no optional field,
  one builder per source kind, following reference A.4 (shared/reference/aws-esm-semantics.md).
  Every builder takes `**overrides`: a key given replaces AWS's value, a key given as None is
  left out of the item (AWS omits it). `readback_of_create` gives the item for any
  CreateEventSourceMapping request (what tests/fake_lambda.py's Create answers).
- A botocore Stubber harness for the Applier: a real boto3 Lambda client that can never reach
  the network, a record of every call, and a fake clock that only moves when the Applier sleeps
  (reference B's state machine is then scripted one response at a time).
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber

from esm_reconcile.apply import Applier, ApplyResult
from esm_reconcile.model import LiveMapping
from esm_reconcile.plan import Change, Plan
from esm_reconcile.rules import Kind

REGION = "us-east-1"
ACCOUNT = "123456789012"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-handler"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
LAST_MODIFIED = datetime(2025, 11, 3, 12, 0, tzinfo=UTC)
NOT_FOUND = "The resource you requested does not exist."

# A 2026 live report (A.4) says Kafka mappings now also read back these stream-style
# error-handling defaults; the 2024 recording has neither.
KAFKA_ERROR_HANDLING_2026: dict[str, Any] = {
    "MaximumRetryAttempts": -1,
    "MaximumRecordAgeInSeconds": -1,
}
NO_RECORDS = {"LastProcessingResult": "No records processed"}

# What AWS fills in per kind for a setting the create request left out (A.4).
SQS_DEFAULTS: dict[str, Any] = {
    "BatchSize": 10,
    "MaximumBatchingWindowInSeconds": 0,
    "FunctionResponseTypes": [],
}
STREAM_DEFAULTS: dict[str, Any] = {
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 0,
    "ParallelizationFactor": 1,
    **NO_RECORDS,
    "DestinationConfig": {"OnFailure": {}},
    "MaximumRecordAgeInSeconds": -1,
    "BisectBatchOnFunctionError": False,
    "MaximumRetryAttempts": -1,
    "TumblingWindowInSeconds": 0,
    "FunctionResponseTypes": [],
}
KAFKA_DEFAULTS: dict[str, Any] = {"BatchSize": 100, **NO_RECORDS}
BROKER_DEFAULTS: dict[str, Any] = {"BatchSize": 100}  # Amazon MQ and DocumentDB


def U(name: str) -> str:
    """A mapping UUID (AWS shape) that reads as `name` in the test."""
    return str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, name))


def esm_arn(uuid: str) -> str:
    """The EventSourceMappingArn AWS returns for the mapping `uuid` (A.4, all kinds)."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}"


# -- read-backs (reference A.4) -------------------------------------------------------------------


def _readback(
    uuid: str,
    state: str,
    source: str | None,
    kind_defaults: dict[str, Any],
    overrides: dict[str, Any],
    *,
    function_arn: str = FN,
    reason: str = "USER_INITIATED",
) -> dict[str, Any]:
    """The keys every kind returns, then the kind's defaults, then the test's overrides."""
    item = {
        "UUID": uuid,
        "EventSourceArn": source,  # None for self-managed Kafka, which has no source ARN
        "FunctionArn": function_arn,
        "LastModified": LAST_MODIFIED,
        "State": state,
        "StateTransitionReason": reason,
        "EventSourceMappingArn": esm_arn(uuid),
        **kind_defaults,
        **overrides,
    }
    return {k: v for k, v in item.items() if v is not None}


def sqs_readback(
    uuid: str,
    state: str = "Enabled",
    source: str = QUEUE,
    function_arn: str = FN,
    **overrides: Any,
) -> dict[str, Any]:
    """SQS (standard or FIFO) created with nothing but the queue [AWS-rec]; FIFO too reads back
    window 0, although FIFO takes no window."""
    return _readback(uuid, state, source, SQS_DEFAULTS, overrides, function_arn=function_arn)


def stream_readback(
    uuid: str,
    state: str = "Enabled",
    source: str = STREAM,
    function_arn: str = FN,
    starting_position: str = "LATEST",
    **overrides: Any,
) -> dict[str, Any]:
    """Kinesis / DynamoDB Streams with the full stream default set AWS returns [AWS-rec]."""
    defaults = {"StartingPosition": starting_position, **STREAM_DEFAULTS}
    return _readback(
        uuid, state, source, defaults, overrides, function_arn=function_arn, reason="User action"
    )


def msk_readback(
    uuid: str, state: str = "Enabled", *, source: str, **overrides: Any
) -> dict[str, Any]:
    """Amazon MSK: BatchSize 100, no batching-window key (500 ms), the consumer group is the
    mapping's own UUID."""
    defaults = {
        **KAFKA_DEFAULTS,
        "StartingPosition": "LATEST",
        "Topics": ["orders"],
        "AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": uuid},
    }
    return _readback(uuid, state, source, defaults, overrides)


def self_managed_kafka_readback(
    uuid: str, state: str = "Enabled", *, brokers: list[str], secret: str, **overrides: Any
) -> dict[str, Any]:
    """Self-managed Kafka as recorded in A.4 (2024): StartingPosition TRIM_HORIZON when omitted,
    consumer group = the mapping's UUID, no window key, no EventSourceArn. AWS returns the
    brokers sorted; `brokers` is used as given, so a test can also feed an unsorted list."""
    defaults = {
        **KAFKA_DEFAULTS,
        "StartingPosition": "TRIM_HORIZON",
        "Topics": ["orders"],
        "SourceAccessConfigurations": [{"Type": "SASL_SCRAM_512_AUTH", "URI": secret}],
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": brokers}},
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": uuid},
    }
    return _readback(uuid, state, None, defaults, overrides)


def mq_readback(
    uuid: str,
    state: str = "Enabled",
    *,
    source: str,
    secret: str,
    virtual_host: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Amazon MQ (ActiveMQ, or RabbitMQ with `virtual_host`): BatchSize 100, no window key."""
    access = [{"Type": "BASIC_AUTH", "URI": secret}]
    if virtual_host is not None:
        # another order than specs write: access entries compare as a set
        access.insert(0, {"Type": "VIRTUAL_HOST", "URI": virtual_host})
    defaults = {**BROKER_DEFAULTS, "Queues": ["orders"], "SourceAccessConfigurations": access}
    return _readback(uuid, state, source, defaults, overrides)


def documentdb_readback(
    uuid: str, state: str = "Enabled", *, source: str, secret: str, **overrides: Any
) -> dict[str, Any]:
    """DocumentDB: BatchSize 100, no window key, no FullDocument key when created without one
    (AWS default "Default")."""
    defaults = {
        **BROKER_DEFAULTS,
        "StartingPosition": "LATEST",
        "DocumentDBEventSourceConfig": {"DatabaseName": "shop", "CollectionName": "orders"},
        "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": secret}],
    }
    return _readback(uuid, state, source, defaults, overrides)


KAFKA_CONFIG_KEYS = {
    Kind.MSK: "AmazonManagedKafkaEventSourceConfig",
    Kind.SELF_MANAGED_KAFKA: "SelfManagedKafkaEventSourceConfig",
}
MINIMUM_POLLERS = {Kind.SQS: 2, Kind.MSK: 1, Kind.SELF_MANAGED_KAFKA: 1}


def readback_of_create(request: dict[str, Any], uuid: str) -> dict[str, Any]:
    """What Get returns for the mapping `uuid` AWS created from the CreateEventSourceMapping
    `request`: the request's settings over the kind's defaults, Kafka's consumer group the
    UUID when not given (and its error handling as the 2026 report reads it), pollers' limits
    filled in, State from `Enabled`; Tags are the mapping's, not its settings."""
    kind = LiveMapping.from_response({"UUID": uuid, **request}).kind
    body = {k: v for k, v in request.items() if k not in ("FunctionName", "Enabled", "Tags")}
    defaults: dict[str, Any] = {}
    if kind in (Kind.SQS, Kind.SQS_FIFO):
        defaults = SQS_DEFAULTS
    elif kind in (Kind.KINESIS, Kind.DYNAMODB):
        defaults = STREAM_DEFAULTS
    elif kind in KAFKA_CONFIG_KEYS:
        defaults = {**KAFKA_DEFAULTS, **KAFKA_ERROR_HANDLING_2026}
        if kind is Kind.SELF_MANAGED_KAFKA:
            defaults["StartingPosition"] = "TRIM_HORIZON"
        key = KAFKA_CONFIG_KEYS[kind]
        body[key] = {"ConsumerGroupId": uuid, **body.get(key, {})}
    elif kind in (Kind.MQ, Kind.DOCUMENTDB):
        defaults = BROKER_DEFAULTS
    if kind in MINIMUM_POLLERS and "ProvisionedPollerConfig" in body:
        body["ProvisionedPollerConfig"] = {
            "MinimumPollers": MINIMUM_POLLERS[kind],
            "MaximumPollers": 200,
            **body["ProvisionedPollerConfig"],
        }
    if isinstance(body.get("StartingPositionTimestamp"), str):  # boto3 reads back a datetime
        body["StartingPositionTimestamp"] = datetime.fromisoformat(
            body["StartingPositionTimestamp"].replace("Z", "+00:00")
        )
    return {
        **defaults,
        **body,
        "UUID": uuid,
        "FunctionArn": request["FunctionName"],
        "State": "Enabled" if request.get("Enabled", True) else "Disabled",
        "StateTransitionReason": "USER_INITIATED",
        "LastModified": LAST_MODIFIED,
        "EventSourceMappingArn": esm_arn(uuid),
    }


def live_mapping(response: dict[str, Any], tags: dict[str, str] | None = None) -> LiveMapping:
    """A read-back as the planner sees it, with the ListTags result (`tags`) when it has one."""
    mapping = LiveMapping.from_response(response)
    mapping.tags = tags
    return mapping


def sqs_live(
    uuid: str = "u-sqs-1",
    function_arn: str = FN,
    source: str = QUEUE,
    state: str = "Enabled",
    tags: dict[str, str] | None = None,
    **overrides: Any,
) -> LiveMapping:
    """An SQS read-back (`sqs_readback`) as a LiveMapping."""
    return live_mapping(sqs_readback(uuid, state, source, function_arn, **overrides), tags)


def stream_live(
    uuid: str = "u-stream-1",
    function_arn: str = FN,
    source: str = STREAM,
    state: str = "Enabled",
    starting_position: str = "LATEST",
    tags: dict[str, str] | None = None,
    **overrides: Any,
) -> LiveMapping:
    """A Kinesis / DynamoDB Streams read-back (`stream_readback`) as a LiveMapping."""
    response = stream_readback(uuid, state, source, function_arn, starting_position, **overrides)
    return live_mapping(response, tags)


# -- botocore Stubber harness (reference B) -------------------------------------------------------


class FakeTime:
    """A clock (not zero-based, like time.monotonic) that only moves when the code under test
    sleeps: by what it sleeps, or by `jump` per sleep if given."""

    START = 5000.0
    MAX_SLEEPS = 1000  # a loop that keeps sleeping fails fast instead of hanging the suite

    def __init__(self, jump: float | None = None) -> None:
        self.now = self.START
        self.jump = jump
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds if self.jump is None else self.jump
        if len(self.sleeps) > self.MAX_SLEEPS:
            raise AssertionError(f"keeps sleeping: {len(self.sleeps)} sleeps, last {seconds!r} s")


class ApplyHarness:
    """A stubbed Lambda client for the Applier: queue each AWS answer with `ok` / `error` / `get`
    / `gone` in call order (the Stubber checks the parameters when given, botocore every
    response's shape), then apply; `calls` records what was sent, `time` is the fake clock and
    `messages` the Applier's progress lines."""

    def __init__(self, client: Any, stubber: Stubber, calls: list[tuple[str, dict]]) -> None:
        self.client, self.stubber, self.calls = client, stubber, calls
        self.time = FakeTime()
        self.messages: list[str] = []

    def applier(self, **kwargs: Any) -> Applier:
        return Applier(
            self.client,
            sleep=self.time.sleep,
            clock=self.time.clock,
            progress=self.messages.append,
            **kwargs,
        )

    def apply(self, *changes: Change, **kwargs: Any) -> ApplyResult:
        return self.applier(**kwargs).apply(Plan(changes=list(changes)))

    @property
    def ops(self) -> list[str]:
        return [name for name, _ in self.calls]

    # responses

    def ok(self, method: str, response: dict[str, Any], **params: Any) -> None:
        """The next `method` call returns `response` (and must be sent `params`, when given)."""
        self.stubber.add_response(method, response, params or None)

    def error(self, method: str, code: str, message: str, status: int = 400, **params: Any):
        """The next `method` call fails with `code` (and must be sent `params`, when given)."""
        self.stubber.add_client_error(
            method,
            service_error_code=code,
            service_message=message,
            http_status_code=status,
            expected_params=params or None,
        )

    def get(self, response: dict[str, Any]) -> None:
        """The next GetEventSourceMapping, of `response`'s UUID, returns `response`."""
        self.ok("get_event_source_mapping", response, UUID=response["UUID"])

    def gone(self, uuid: str) -> None:
        """The next GetEventSourceMapping, of `uuid`, finds no such mapping (deleted)."""
        self.error(
            "get_event_source_mapping", "ResourceNotFoundException", NOT_FOUND, 404, UUID=uuid
        )


def offline_client(service: str, calls: list[tuple[str, dict]]) -> Any:
    """A real boto3 client for a Stubber: every call's operation and parameters are appended to
    `calls`, and a request that reaches the network layer fails the test."""
    client = boto3.client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )

    def record(params: dict, model: Any, **_: Any) -> None:
        calls.append((model.name, dict(params)))

    def no_network(**_: Any) -> None:
        raise AssertionError("a request reached the network layer")

    client.meta.events.register("before-parameter-build", record)
    client.meta.events.register("before-send", no_network)
    return client


@contextmanager
def stubbed_lambda() -> Iterator[ApplyHarness]:
    """An ApplyHarness on an `offline_client`; on a normal exit every queued response must
    have been used."""
    calls: list[tuple[str, dict]] = []
    client = offline_client("lambda", calls)
    with Stubber(client) as stubber:
        yield ApplyHarness(client, stubber, calls)
    stubber.assert_no_pending_responses()
