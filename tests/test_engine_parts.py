"""The apply engine's rules, tested directly as tables (esm_reconcile/engine): how a failed
Lambda call is classified and retried (protocol.py), which change waits for which
(ordering.py), and how the region's Watcher decides when and how to look at waiting mappings and
what a look may conclude (watcher.py).

No network except a local HTTP server bound to 127.0.0.1 (the real boto3 client's single
attempt), no real sleeping: sleeps are recorded and time is passed as explicit `now` values.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from esm_reconcile.answers import NotAnAwsAnswer
from esm_reconcile.aws import connect
from esm_reconcile.engine import ordering, protocol
from esm_reconcile.engine import watcher as watcher_module
from esm_reconcile.engine.protocol import (
    ATTEMPTS,
    BACKOFF_BASE,
    BACKOFF_MAX,
    PAGE_SIZE,
    RETRY_AFTER_MAX,
    Failure,
    LambdaMappings,
    classify,
    is_transient,
    mappings_api,
    retry_after,
)
from esm_reconcile.engine.watcher import (
    GET_AFTER,
    GONE,
    IDLE_LOOK,
    MISSING,
    SETTLED,
    SWEEP_MIN_WAITS,
    TIMED_OUT,
    UNREADABLE,
    Poll,
    Wait,
    Watcher,
)
from esm_reconcile.errors import EsmError
from esm_reconcile.plan import Change

REGION = "us-east-1"
ACCOUNT = "123456789012"
FN_A = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders"
FN_B = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:audit"
UUID = "a1b2c3d4-0000-4000-8000-000000000001"
ENDPOINT = "https://lambda.us-east-1.amazonaws.com"

# -- AWS answers as botocore raises them --------------------------------------------------------


def aws_error(
    code: str,
    message: str = "",
    status: int = 400,
    headers: dict[str, str] | None = None,
    op: str = "CreateEventSourceMapping",
    **modeled: Any,
) -> ClientError:
    """The ClientError botocore raises: HTTPHeaders lower-cased, the error shape's modeled
    members (retryAfterSeconds, Type, Reason...) at the top level of `response`."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {"content-type": "application/json", **(headers or {})},
                "RetryAttempts": 0,
            },
            **modeled,
        },
        op,
    )


def throttled(retry_after_header: str | None = None) -> ClientError:
    headers = {"retry-after": retry_after_header} if retry_after_header is not None else {}
    modeled = {"retryAfterSeconds": retry_after_header} if retry_after_header is not None else {}
    return aws_error(
        "TooManyRequestsException",
        "Rate exceeded",
        429,
        headers,
        Type="User",
        Reason="CallerRateLimitExceeded",
        **modeled,
    )


def service_exception() -> ClientError:
    return aws_error("ServiceException", "Internal error", 500, Type="Service")


def not_found() -> ClientError:
    return aws_error(
        "ResourceNotFoundException",
        "The resource you requested does not exist.",
        404,
        op="GetEventSourceMapping",
    )


def foreign_answer() -> NotAnAwsAnswer:
    return NotAnAwsAnswer(
        service="Lambda",
        article="a",
        endpoint=ENDPOINT,
        operation="GetEventSourceMapping",
        detail="HTTP 200, text/html, not JSON",
        setting="AWS_ENDPOINT_URL_LAMBDA / AWS_ENDPOINT_URL",
    )


IAM_NOT_READY = {
    "sqs": "The provided execution role does not have permissions to call ReceiveMessage on SQS",
    "assume": "The role defined for the function cannot be assumed by Lambda.",
    "kinesis": (
        "Cannot access stream arn:aws:kinesis:us-east-1:123456789012:stream/s1. Please ensure "
        "the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListShards "
        "Actions on your stream."
    ),
}

# -- protocol.classify ---------------------------------------------------------------------------

CLASSIFY_TABLE: list[tuple[str, BaseException, Failure]] = [
    ("429 TooManyRequests", throttled(), Failure.THROTTLED),
    ("429 TooManyRequests + Retry-After", throttled("2"), Failure.THROTTLED),
    (
        "ThrottlingException 400",
        aws_error("ThrottlingException", "Rate exceeded"),
        Failure.THROTTLED,
    ),
    ("any code at 429", aws_error("SlowDown", "slow down", 429), Failure.THROTTLED),
    ("500 ServiceException", service_exception(), Failure.UNAVAILABLE),
    (
        "503 ServiceException",
        aws_error("ServiceException", "Service unavailable", 503),
        Failure.UNAVAILABLE,
    ),
    (
        "503 ServiceUnavailableException",
        aws_error("ServiceUnavailableException", "", 503),
        Failure.UNAVAILABLE,
    ),
    ("502 from a gateway, no code", aws_error("502", "Bad Gateway", 502), Failure.UNAVAILABLE),
    (
        "ResourceInUseException",
        aws_error(
            "ResourceInUseException",
            "Cannot update the event source mapping because it is in use.",
        ),
        Failure.IN_USE,
    ),
    ("ResourceNotFoundException", not_found(), Failure.NOT_FOUND),
    (
        "ResourceConflictException",
        aws_error(
            "ResourceConflictException",
            "An event source mapping with SQS arn and function already exists. Please update "
            f"or delete the existing mapping with UUID {UUID}",
            409,
        ),
        Failure.CONFLICT,
    ),
    *[
        (
            f"IAM propagation ({name})",
            aws_error("InvalidParameterValueException", message),
            Failure.ROLE_NOT_READY,
        )
        for name, message in IAM_NOT_READY.items()
    ],
    (
        "IAM propagation, any case",
        aws_error("InvalidParameterValueException", IAM_NOT_READY["assume"].upper()),
        Failure.ROLE_NOT_READY,
    ),
    (
        "another InvalidParameterValueException",
        aws_error(
            "InvalidParameterValueException",
            "Unrecognized event source, must be kinesis, dynamodb stream or sqs.",
        ),
        Failure.REFUSED,
    ),
    (
        "IAM text under another code",
        aws_error("ValidationException", IAM_NOT_READY["assume"]),
        Failure.REFUSED,
    ),
    (
        "AccessDeniedException",
        aws_error("AccessDeniedException", "User is not authorized", 403),
        Failure.REFUSED,
    ),
    ("AccessDenied", aws_error("AccessDenied", "Access Denied", 403), Failure.REFUSED),
    ("no status at all", ClientError({"Error": {"Code": "X"}}, "Op"), Failure.REFUSED),
    (
        "EndpointConnectionError",
        EndpointConnectionError(endpoint_url=ENDPOINT),
        Failure.UNAVAILABLE,
    ),
    ("ConnectionError", BotoConnectionError(error="connection reset"), Failure.UNAVAILABLE),
    ("ConnectTimeoutError", ConnectTimeoutError(endpoint_url=ENDPOINT), Failure.UNAVAILABLE),
    ("ReadTimeoutError", ReadTimeoutError(endpoint_url=ENDPOINT), Failure.UNAVAILABLE),
    ("ConnectionClosedError", ConnectionClosedError(endpoint_url=ENDPOINT), Failure.UNAVAILABLE),
    ("NotAnAwsAnswer", foreign_answer(), Failure.REFUSED),
    ("NoCredentialsError", NoCredentialsError(), Failure.REFUSED),
    ("ParamValidationError", ParamValidationError(report="UUID too short"), Failure.REFUSED),
    ("not botocore's", ValueError("boom"), Failure.REFUSED),
]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [(exc, expected) for _, exc, expected in CLASSIFY_TABLE],
    ids=[name for name, _, _ in CLASSIFY_TABLE],
)
def test_classify(exc: BaseException, expected: Failure) -> None:
    assert classify(exc) is expected
    assert is_transient(exc) is (expected in (Failure.THROTTLED, Failure.UNAVAILABLE))


def test_every_failure_class_is_in_the_table() -> None:
    assert {expected for _, _, expected in CLASSIFY_TABLE} == set(Failure)


# -- protocol.retry_after ------------------------------------------------------------------------


def with_seconds(**modeled: Any) -> ClientError:
    return aws_error("TooManyRequestsException", "Rate exceeded", 429, **modeled)


RETRY_AFTER_TABLE: list[tuple[str, BaseException, float | None]] = [
    ("header", aws_error("TooManyRequestsException", "", 429, {"retry-after": "3"}), 3.0),
    ("header and modeled member", throttled("2"), 2.0),
    ("retryAfterSeconds alone", with_seconds(retryAfterSeconds="4"), 4.0),
    ("fractional", with_seconds(retryAfterSeconds="1.5"), 1.5),
    ("zero", aws_error("TooManyRequestsException", "", 429, {"retry-after": "0"}), 0.0),
    ("at the limit", with_seconds(retryAfterSeconds=str(RETRY_AFTER_MAX)), RETRY_AFTER_MAX),
    ("none named", throttled(), None),
    ("garbage", aws_error("TooManyRequestsException", "", 429, {"retry-after": "soon"}), None),
    (
        "an HTTP date",
        aws_error(
            "TooManyRequestsException", "", 429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}
        ),
        None,
    ),
    ("empty", aws_error("TooManyRequestsException", "", 429, {"retry-after": ""}), None),
    ("negative", aws_error("TooManyRequestsException", "", 429, {"retry-after": "-1"}), None),
    ("negative member", with_seconds(retryAfterSeconds="-5"), None),
    ("huge", aws_error("TooManyRequestsException", "", 429, {"retry-after": "3600"}), None),
    ("huge member", with_seconds(retryAfterSeconds="1e9"), None),
    ("just past the limit", with_seconds(retryAfterSeconds=str(RETRY_AFTER_MAX + 1)), None),
    ("nan", with_seconds(retryAfterSeconds="nan"), None),
    ("inf", with_seconds(retryAfterSeconds="inf"), None),
    ("a list", with_seconds(retryAfterSeconds=["3"]), None),
    (
        "no HTTPHeaders",
        ClientError({"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {}}, "Op"),
        None,
    ),
    (
        "HTTPHeaders None",
        ClientError(
            {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPHeaders": None}},
            "Op",
        ),
        None,
    ),
    ("not a ClientError", EndpointConnectionError(endpoint_url=ENDPOINT), None),
]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [(exc, expected) for _, exc, expected in RETRY_AFTER_TABLE],
    ids=[name for name, _, _ in RETRY_AFTER_TABLE],
)
def test_retry_after(exc: BaseException, expected: float | None) -> None:
    assert retry_after(exc) == expected


# -- protocol.LambdaMappings over a fake boto3 client --------------------------------------------

Outcome = dict[str, Any] | BaseException
Script = list[Outcome] | Callable[[dict[str, Any]], Outcome]


class FakeClient:
    """Just enough of a boto3 Lambda client: each method answers from its script, a list of
    answers or exceptions taken in order, or a function of the request's parameters."""

    def __init__(self, **script: Script) -> None:
        self.script = {op: list(s) if isinstance(s, list) else s for op, s in script.items()}
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((op, params))
        script = self.script.get(op, [])
        if callable(script):
            outcome = script(params)
        else:
            assert script, f"unscripted call of {op}"
            outcome = script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def sent(self, op: str) -> list[dict[str, Any]]:
        return [params for name, params in self.requests if name == op]

    def create_event_source_mapping(self, **params: Any) -> dict[str, Any]:
        return self._answer("create_event_source_mapping", params)

    def update_event_source_mapping(self, **params: Any) -> dict[str, Any]:
        return self._answer("update_event_source_mapping", params)

    def delete_event_source_mapping(self, **params: Any) -> dict[str, Any]:
        return self._answer("delete_event_source_mapping", params)

    def get_event_source_mapping(self, **params: Any) -> dict[str, Any]:
        return self._answer("get_event_source_mapping", params)

    def list_event_source_mappings(self, **params: Any) -> dict[str, Any]:
        return self._answer("list_event_source_mappings", params)

    def list_tags(self, **params: Any) -> dict[str, Any]:
        return self._answer("list_tags", params)

    def tag_resource(self, **params: Any) -> dict[str, Any]:
        return self._answer("tag_resource", params)

    def untag_resource(self, **params: Any) -> dict[str, Any]:
        return self._answer("untag_resource", params)


def record(uuid: str = UUID, state: str = "Enabled", **extra: Any) -> dict[str, Any]:
    return {"UUID": uuid, "FunctionArn": FN_A, "State": state, **extra}


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def top_of_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backoff's full jitter always draws its upper bound."""
    monkeypatch.setattr(protocol.random, "uniform", lambda low, high: high)


def test_throttled_then_ok_sleeps_what_retry_after_says(sleeps: list[float]) -> None:
    client = FakeClient(get_event_source_mapping=[throttled("2"), record()])
    api = LambdaMappings(client, sleep=sleeps.append)
    assert api.get(UUID) == record()
    assert sleeps == [2.0]
    assert api.calls == Counter({"get_event_source_mapping": 2})
    assert client.sent("get_event_source_mapping") == [{"UUID": UUID}, {"UUID": UUID}]


@pytest.mark.parametrize("header", [None, "3600", "soon"], ids=["none", "huge", "garbage"])
def test_throttled_without_a_believable_retry_after_backs_off(
    sleeps: list[float], header: str | None
) -> None:
    client = FakeClient(get_event_source_mapping=[throttled(header), throttled(header), record()])
    api = LambdaMappings(client, sleep=sleeps.append)
    assert api.get(UUID) == record()
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= BACKOFF_BASE
    assert 0 <= sleeps[1] <= 2 * BACKOFF_BASE


@pytest.mark.parametrize(
    "failure",
    [
        service_exception(),
        aws_error("ServiceException", "Service unavailable", 503),
        EndpointConnectionError(endpoint_url=ENDPOINT),
        ReadTimeoutError(endpoint_url=ENDPOINT),
        BotoConnectionError(error="connection reset by peer"),
    ],
    ids=["500", "503", "endpoint-connection", "read-timeout", "connection"],
)
def test_unavailable_then_ok_backs_off(
    sleeps: list[float], top_of_jitter: None, failure: BaseException
) -> None:
    client = FakeClient(create_event_source_mapping=[failure, record(state="Creating")])
    api = LambdaMappings(client, sleep=sleeps.append)
    request = {"FunctionName": FN_A, "EventSourceArn": "arn:aws:sqs:us-east-1:1:q"}
    assert api.create(request) == record(state="Creating")
    assert sleeps == [BACKOFF_BASE]
    assert api.calls == Counter({"create_event_source_mapping": 2})
    assert client.sent("create_event_source_mapping") == [request, request]


def test_gives_up_after_attempts_with_capped_exponential_backoff(
    sleeps: list[float], top_of_jitter: None
) -> None:
    failure = throttled()
    client = FakeClient(list_event_source_mappings=lambda params: failure)
    api = LambdaMappings(client, sleep=sleeps.append)
    with pytest.raises(ClientError) as raised:
        api.list_page(None)
    assert raised.value is failure
    assert api.calls == Counter({"list_event_source_mappings": ATTEMPTS})
    assert sleeps == [min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (n - 1)) for n in range(1, ATTEMPTS)]
    assert max(sleeps) == BACKOFF_MAX  # the cap is reached within ATTEMPTS


def test_backoff_never_exceeds_its_cap() -> None:
    for attempt in range(1, 40):
        for _ in range(20):
            assert 0 <= protocol.backoff(attempt) <= BACKOFF_MAX


def test_attempts_is_the_number_of_tries(sleeps: list[float]) -> None:
    client = FakeClient(delete_event_source_mapping=lambda params: service_exception())
    api = LambdaMappings(client, sleep=sleeps.append, attempts=3)
    with pytest.raises(ClientError):
        api.delete(UUID)
    assert api.calls["delete_event_source_mapping"] == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "failure",
    [
        aws_error("AccessDeniedException", "User is not authorized", 403),
        aws_error("ResourceInUseException", "in use"),
        aws_error("ResourceConflictException", "already exists", 409),
        not_found(),
        aws_error("InvalidParameterValueException", IAM_NOT_READY["sqs"]),
        aws_error("InvalidParameterValueException", "Invalid batch size"),
        foreign_answer(),
        ParamValidationError(report="bad"),
    ],
    ids=[
        "refused",
        "in-use",
        "conflict",
        "not-found",
        "role-not-ready",
        "invalid",
        "not-an-aws-answer",
        "param-validation",
    ],
)
def test_what_is_not_throttled_or_unavailable_is_raised_at_once(
    sleeps: list[float], failure: BaseException
) -> None:
    client = FakeClient(update_event_source_mapping=[failure, record()])
    api = LambdaMappings(client, sleep=sleeps.append)
    with pytest.raises(type(failure)) as raised:
        api.update({"UUID": UUID, "BatchSize": 5})
    assert raised.value is failure
    assert api.calls == Counter({"update_event_source_mapping": 1})
    assert sleeps == []


def test_an_exception_that_is_not_botocores_is_not_retried(sleeps: list[float]) -> None:
    client = FakeClient(get_event_source_mapping=[RuntimeError("bug"), record()])
    api = LambdaMappings(client, sleep=sleeps.append)
    with pytest.raises(RuntimeError):
        api.get(UUID)
    assert api.calls["get_event_source_mapping"] == 1
    assert sleeps == []


def test_calls_are_counted_per_operation_attempts_included(sleeps: list[float]) -> None:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{UUID}"
    client = FakeClient(
        create_event_source_mapping=[record(state="Creating")],
        update_event_source_mapping=[throttled("1"), record(state="Updating")],
        delete_event_source_mapping=[record(state="Deleting")],
        get_event_source_mapping=[service_exception(), service_exception(), record()],
        list_event_source_mappings=[{"EventSourceMappings": []}],
        list_tags=[{"Tags": {"team": "orders"}}, {}],
        tag_resource=[{}],
        untag_resource=[{}],
    )
    api = LambdaMappings(client, sleep=sleeps.append)
    api.create({"FunctionName": FN_A})
    api.update({"UUID": UUID})
    api.delete(UUID)
    api.get(UUID)
    list(api.pages())
    assert api.list_tags(arn) == {"team": "orders"}
    assert api.list_tags(arn) == {}  # an answer without Tags
    api.tag(arn, {"team": "orders"})
    api.untag(arn, ["old"])
    assert api.calls == Counter(
        {
            "create_event_source_mapping": 1,
            "update_event_source_mapping": 2,
            "delete_event_source_mapping": 1,
            "get_event_source_mapping": 3,
            "list_event_source_mappings": 1,
            "list_tags": 2,
            "tag_resource": 1,
            "untag_resource": 1,
        }
    )
    assert client.sent("delete_event_source_mapping") == [{"UUID": UUID}]
    assert client.sent("list_tags") == [{"Resource": arn}, {"Resource": arn}]
    assert client.sent("tag_resource") == [{"Resource": arn, "Tags": {"team": "orders"}}]
    assert client.sent("untag_resource") == [{"Resource": arn, "TagKeys": ["old"]}]


def test_mappings_api_wraps_a_client_but_not_a_fake_of_the_protocol() -> None:
    client = FakeClient()
    wrapped = mappings_api(client)
    assert isinstance(wrapped, LambdaMappings) and wrapped.client is client
    assert mappings_api(wrapped) is wrapped

    class ProtocolFake:
        def list_page(self, marker: str | None, **filters: str) -> dict[str, Any]:
            return {}

    fake = ProtocolFake()
    assert mappings_api(fake) is fake


# -- protocol.LambdaMappings.pages ---------------------------------------------------------------


def page(*uuids: str, marker: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"EventSourceMappings": [record(u) for u in uuids]}
    if marker is not None:
        answer["NextMarker"] = marker
    return answer


def test_pages_follow_next_marker_with_max_items_and_filters(sleeps: list[float]) -> None:
    client = FakeClient(
        list_event_source_mappings=[page("u1", marker="m1"), page("u2", marker="m2"), page("u3")]
    )
    api = LambdaMappings(client, sleep=sleeps.append)
    got = list(api.pages(FunctionName=FN_A))
    assert [item["UUID"] for p in got for item in p["EventSourceMappings"]] == ["u1", "u2", "u3"]
    assert client.sent("list_event_source_mappings") == [
        {"MaxItems": PAGE_SIZE, "FunctionName": FN_A},
        {"MaxItems": PAGE_SIZE, "FunctionName": FN_A, "Marker": "m1"},
        {"MaxItems": PAGE_SIZE, "FunctionName": FN_A, "Marker": "m2"},
    ]
    assert PAGE_SIZE == 100


def test_pages_unfiltered_by_default_and_stop_on_an_empty_marker(sleeps: list[float]) -> None:
    client = FakeClient(list_event_source_mappings=[page("u1", marker="m1"), page(marker="")])
    api = LambdaMappings(client, sleep=sleeps.append)
    assert len(list(api.pages())) == 2
    assert client.sent("list_event_source_mappings") == [
        {"MaxItems": 100},
        {"MaxItems": 100, "Marker": "m1"},
    ]


def test_a_throttled_page_is_retried_in_place(sleeps: list[float]) -> None:
    arn = "arn:aws:sqs:us-east-1:123456789012:q1"
    client = FakeClient(
        list_event_source_mappings=[page("u1", marker="m1"), throttled("1"), page("u2")]
    )
    api = LambdaMappings(client, sleep=sleeps.append)
    assert len(list(api.pages(EventSourceArn=arn))) == 2
    assert sleeps == [1.0]
    assert [p.get("Marker") for p in client.sent("list_event_source_mappings")] == [
        None,
        "m1",
        "m1",
    ]
    assert all(p["EventSourceArn"] == arn for p in client.sent("list_event_source_mappings"))


@pytest.mark.parametrize(
    "markers",
    [["a", "a"], ["a", "b", "a"], ["a", "b", "c", "b"]],
    ids=["at-once", "later", "a-cycle"],
)
def test_pages_refuse_a_repeated_marker(sleeps: list[float], markers: list[str]) -> None:
    client = FakeClient(list_event_source_mappings=[page(marker=m) for m in markers])
    api = LambdaMappings(client, sleep=sleeps.append)
    seen = 0
    with pytest.raises(EsmError, match="repeats a ListEventSourceMappings marker"):
        for _ in api.pages():
            seen += 1
    assert seen == len(markers)


def test_pages_refuse_an_endless_listing(
    sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "MAX_PAGES", 5)
    client = FakeClient(
        list_event_source_mappings=lambda params: page(marker=str(int(params.get("Marker", 0)) + 1))
    )
    api = LambdaMappings(client, sleep=sleeps.append)
    with pytest.raises(EsmError, match="still paging ListEventSourceMappings after 5 pages"):
        list(api.pages())
    assert api.calls["list_event_source_mappings"] == 5


# -- a real boto3 client from aws.connect: one attempt, protocol owns the retries -----------------


class LocalLambda(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that answers every request with one Lambda error."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: list[str] = []
        self.answer: tuple[int, str, dict[str, str], dict[str, Any]] = (
            503,
            "ServiceException",
            {},
            {"Type": "Service", "message": "Service unavailable"},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: LocalLambda

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.hits.append(f"{self.command} {self.path}")
        status, code, headers, payload = self.server.answer
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _reply

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_lambda(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalLambda]:
    """The server, running until the test ends, as the Lambda endpoint of boto3's chain."""
    server = LocalLambda()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_connect_turns_botocores_lambda_retries_off(aws_env: None) -> None:
    context = connect(region=REGION)
    assert context.lambda_client.meta.config.retries["total_max_attempts"] == 1


def test_a_real_client_tries_once_and_the_protocol_retries(
    local_lambda: LocalLambda, sleeps: list[float]
) -> None:
    context = connect(region=REGION, max_rps=1000)
    client = context.lambda_client
    assert client.meta.endpoint_url == local_lambda.url
    with pytest.raises(ClientError) as raised:
        client.get_event_source_mapping(UUID=UUID)
    assert classify(raised.value) is Failure.UNAVAILABLE
    assert len(local_lambda.hits) == 1  # botocore made one attempt

    api = LambdaMappings(client, sleep=sleeps.append, attempts=3)
    with pytest.raises(ClientError):
        api.get(UUID)
    assert len(local_lambda.hits) == 1 + 3
    assert len(sleeps) == 2
    assert local_lambda.hits[-1] == f"GET /2015-03-31/event-source-mappings/{UUID}"


def test_a_real_throttled_answer_is_retried_after_its_retry_after(
    local_lambda: LocalLambda, sleeps: list[float]
) -> None:
    local_lambda.answer = (
        429,
        "TooManyRequestsException",
        {"Retry-After": "3"},
        {"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"},
    )
    context = connect(region=REGION, max_rps=1000)
    context.limiter.sleep = lambda seconds: None  # the limiter halves its rate on a 429
    api = LambdaMappings(context.lambda_client, sleep=sleeps.append, attempts=2)
    with pytest.raises(ClientError) as raised:
        api.get(UUID)
    assert classify(raised.value) is Failure.THROTTLED
    assert retry_after(raised.value) == 3.0
    assert sleeps == [3.0]
    assert len(local_lambda.hits) == 2
    assert context.limiter.throttled == 2  # the limiter still sees every answer


# -- ordering ------------------------------------------------------------------------------------

Q1 = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q1"
Q2 = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q2"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
MSK1 = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/c1/11111111-2222-3333-4444-555555555555-1"
B12 = "kafka://b1:9092,b2:9092"
B23 = "kafka://b2:9092,b3:9092"


def change(action: str, fn: str, source: str, kind: str, uuid: str | None = None) -> Change:
    label = fn.split(":function:", 1)[-1]
    return Change(action, f"{label}[{source}]", fn, source, uuid, kind=kind)  # type: ignore[arg-type]


# Pairs AWS needs ordered, as (create: fn, source, kind), (delete: fn, source, kind): a
# (function, source) is held by its mapping until it is gone, a Kafka consumer group by any
# mapping of that source (for self-managed Kafka: overlapping bootstrap servers).
AWS_NEEDS_ORDER: list[tuple[str, tuple[str, str, str], tuple[str, str, str]]] = [
    ("same function, same queue", (FN_A, Q1, "sqs"), (FN_A, Q1, "sqs")),
    ("same function, same stream", (FN_A, STREAM, "kinesis"), (FN_A, STREAM, "kinesis")),
    ("MSK, same function", (FN_A, f"{MSK1}#orders", "msk"), (FN_A, f"{MSK1}#orders", "msk")),
    ("MSK, other function", (FN_B, f"{MSK1}#orders", "msk"), (FN_A, f"{MSK1}#orders", "msk")),
    (
        "MSK, other function, other topic",
        (FN_B, f"{MSK1}#payments", "msk"),
        (FN_A, f"{MSK1}#orders", "msk"),
    ),
    (
        "self-managed, same brokers, other function",
        (FN_B, f"{B12}#orders", "self-managed-kafka"),
        (FN_A, f"{B12}#orders", "self-managed-kafka"),
    ),
    (
        "self-managed, overlapping brokers, other function",
        (FN_B, f"{B23}#orders", "self-managed-kafka"),
        (FN_A, f"{B12}#orders", "self-managed-kafka"),
    ),
]


@pytest.mark.parametrize("action", ["create", "update"])
@pytest.mark.parametrize(
    ("create", "delete"),
    [(c, d) for _, c, d in AWS_NEEDS_ORDER],
    ids=[name for name, _, _ in AWS_NEEDS_ORDER],
)
def test_every_order_aws_needs_is_kept(
    create: tuple[str, str, str], delete: tuple[str, str, str], action: str
) -> None:
    """The engine starts no update or create before every UUID of deleted_first is gone
    (ordering.py): whatever that order is, it holds every pair AWS needs ordered."""
    starting = change(action, *create, uuid="new" if action == "update" else None)
    for deleting in (change("delete", *delete, uuid="old"), change("replace", *delete, uuid="old")):
        for plan in ([starting, deleting], [deleting, starting]):
            gone_first = ordering.deleted_first(plan)
            assert "old" in gone_first
            assert "new" not in gone_first


def test_a_replaces_own_delete_goes_first() -> None:
    replace = change("replace", FN_A, Q1, "sqs", uuid="old")
    assert ordering.deleted_first([replace]) == ["old"]


def test_deleted_first_names_every_delete_and_replace_by_uuid_in_plan_order() -> None:
    changes = [
        change("create", FN_A, Q1, "sqs"),
        change("delete", FN_A, Q1, "sqs", uuid="d1"),
        change("replace", FN_A, Q2, "sqs", uuid="r2"),
        change("update", FN_A, STREAM, "kinesis", uuid="u1"),  # updates are not waited for
        change("delete", FN_A, STREAM, "kinesis"),  # no UUID: nothing to wait for
        change("delete", FN_B, f"{B12}#t", "self-managed-kafka", uuid="k1"),
        change("delete", FN_B, f"{MSK1}#t", "msk", uuid="m1"),
    ]
    assert ordering.deleted_first(changes) == ["d1", "r2", "k1", "m1"]
    assert ordering.deleted_first([c for c in changes if c.action in ("create", "update")]) == []


# -- watcher.Watcher -----------------------------------------------------------------------------


class StubApi:
    """What a Watcher asks of the mapping API: Get and the pages of an unfiltered List."""

    def __init__(self, page_size: int = PAGE_SIZE) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.get_errors: dict[str, BaseException] = {}
        self.list_error: BaseException | None = None
        self.listed: dict[str, dict[str, Any]] | None = None  # what List shows, if not records
        self.page_size = page_size
        self.got: list[str] = []
        self.listed_pages = 0

    def get(self, uuid: str) -> dict[str, Any]:
        self.got.append(uuid)
        if uuid in self.get_errors:
            raise self.get_errors[uuid]
        if uuid not in self.records:
            raise not_found()
        return dict(self.records[uuid])

    def pages(self, **filters: str) -> Iterator[dict[str, Any]]:
        assert not filters  # a sweep lists the whole region
        if self.list_error is not None:
            raise self.list_error
        items = list((self.records if self.listed is None else self.listed).values())
        for start in range(0, max(len(items), 1), self.page_size):
            self.listed_pages += 1
            yield {"EventSourceMappings": [dict(i) for i in items[start : start + self.page_size]]}


class Scene:
    """A Watcher over a StubApi, and how each of its waits ended."""

    def __init__(
        self, page_size: int = PAGE_SIZE, poll_start: float = 1.0, poll_max: float = 10.0
    ) -> None:
        self.api = StubApi(page_size)
        self.watcher = Watcher(self.api, poll_start=poll_start, poll_max=poll_max)  # type: ignore[arg-type]
        self.ended: list[tuple[Wait, str, Any]] = []
        self.ended_at: dict[str, float] = {}  # by UUID, when `drive` saw the wait end
        self.got_at: list[tuple[float, str]] = []  # (when, UUID) of every Get `drive` made

    def wait(
        self,
        uuid: str,
        goal: str = SETTLED,
        kind: str = "create",
        since: float = 0.0,
        deadline: float = 600.0,
        baseline: Any = None,
        answered: bool = False,
    ) -> Wait:
        holder: list[Wait] = []
        wait = Wait(
            uuid,
            goal,
            kind,
            since=since,
            deadline=deadline,
            on_end=lambda how, found: self.ended.append((holder[0], how, found)),
            baseline=baseline,
        )
        holder.append(wait)
        self.watcher.add(wait, answered)
        return wait

    def mapping(self, uuid: str, state: str, modified: Any = None) -> None:
        self.api.records[uuid] = record(uuid, state, LastModified=modified)

    def how(self, wait: Wait) -> str | None:
        return next((how for w, how, _ in self.ended if w is wait), None)

    def found(self, wait: Wait) -> Any:
        return next(found for w, _, found in self.ended if w is wait)

    def poll(
        self, now: float, submitting: bool = False, absorb_at: float | None = None
    ) -> Poll | None:
        """next_poll at `now`; if there is one, run it and absorb it (at `absorb_at`)."""
        poll = self.watcher.next_poll(now, submitting)
        if poll is not None:
            self.watcher.run(poll)
            self.watcher.absorb(poll, now if absorb_at is None else absorb_at)
        return poll

    def drive(self, start: float, until: float, step: float = 0.25) -> None:
        """What the engine's loop does, every `step` seconds from `start` to `until`: end the
        waits past their deadline, and make and absorb the poll due, if any."""
        ticks = round((until - start) / step)
        for tick in range(ticks + 1):
            now = start + tick * step
            self.watcher.expire(now)
            poll = self.poll(now)
            if poll is not None:
                self.got_at += [(now, uuid) for uuid in poll.gets]
            for wait, _, _ in self.ended:
                self.ended_at.setdefault(wait.uuid, now)

    def sweep(
        self, started: float, listed: dict[str, dict[str, Any]], now: float | None = None
    ) -> None:
        """Absorb a sweep that began at `started` and listed these mappings."""
        poll = Poll(sweep=True, started=started, listed=listed, pages=1)
        self.watcher.absorb(poll, started if now is None else now)


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Looks come exactly when backoff says (the watcher's ±20 % jitter off)."""
    monkeypatch.setattr(watcher_module, "_jitter", lambda seconds: seconds)


# A poll_start at which sweeps are 0.5 s a page of the last sweep apart (as on AWS).
HALF = 0.5


def uuids(n: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# when to look ------------------------------------------------------------------------------------


def test_few_waits_are_looked_at_by_get_one_poll_at_a_time() -> None:
    scene = Scene()
    waits = [scene.wait(u) for u in uuids(SWEEP_MIN_WAITS - 1)]
    for u in uuids(SWEEP_MIN_WAITS - 1):
        scene.mapping(u, "Creating")
    poll = scene.watcher.next_poll(0.0, submitting=False)
    assert poll is not None and not poll.sweep
    assert poll.gets == uuids(SWEEP_MIN_WAITS - 1)
    assert scene.watcher.next_poll(0.0, submitting=False) is None  # one poll out at a time
    scene.watcher.run(poll)
    scene.watcher.absorb(poll, 0.0)
    assert scene.api.got == uuids(SWEEP_MIN_WAITS - 1) and scene.api.listed_pages == 0
    assert scene.ended == [] and scene.watcher.gets == len(waits)
    assert all(w.state == "Creating" for w in waits)


def test_many_waits_are_swept() -> None:
    scene = Scene()
    for u in uuids(SWEEP_MIN_WAITS):
        scene.wait(u)
        scene.mapping(u, "Creating")
    poll = scene.poll(0.0)
    assert poll is not None and poll.sweep and poll.gets == []
    assert scene.api.got == [] and scene.api.listed_pages == 1
    assert (scene.watcher.sweeps, scene.watcher.pages, scene.watcher.last_sweep) == (1, 1, 0.0)


def test_an_answered_wait_is_first_looked_at_after_poll_start() -> None:
    scene = Scene(poll_start=1.0)
    scene.wait("u0", since=5.0, answered=True)
    assert scene.watcher.next_poll(5.9, submitting=False) is None
    poll = scene.watcher.next_poll(6.0, submitting=False)
    assert poll is not None and poll.gets == ["u0"]


@pytest.mark.parametrize(
    ("settled", "sweeps"),
    [(3, False), (2, False), (1, True)],
    ids=["5 wait, 6 pages", "6 wait, 6 pages", "7 wait, 6 pages"],
)
def test_gets_unless_more_wait_than_the_last_sweep_took_pages(settled: int, sweeps: bool) -> None:
    scene = Scene(page_size=2, poll_start=HALF)
    for u in uuids(8):
        scene.wait(u)
        scene.mapping(u, "Creating")
    for u in uuids(4, prefix="other"):
        scene.mapping(u, "Enabled")
    for u in uuids(settled):
        scene.mapping(u, "Enabled")
    first = scene.poll(0.0)
    assert first is not None and first.sweep
    waiting = uuids(8)[settled:]
    assert scene.watcher.pages == 6 and len(scene.watcher) == len(waiting)
    second = scene.poll(15.0)  # all due, a sweep allowed again, none stale yet
    assert second is not None and second.sweep is sweeps
    assert second.gets == ([] if sweeps else waiting)


def swept_region(pages: int, waits: int, poll_start: float) -> Scene:
    """A watcher whose first sweep (at 0) listed `pages` pages, `waits` mappings waiting."""
    page_size = -(-waits // pages)
    scene = Scene(page_size=page_size, poll_start=poll_start)
    for u in uuids(waits):
        scene.wait(u)
        scene.mapping(u, "Creating")
    for u in uuids(page_size * pages - waits, prefix="other"):
        scene.mapping(u, "Enabled")
    assert scene.poll(0.0).sweep  # type: ignore[union-attr]
    assert scene.watcher.pages == pages
    return scene


def sweep_gap(scene: Scene, step: float = 0.05) -> float:
    """How long after the last sweep began the next one is made, every wait being due; no
    poll at all is made before."""
    start = scene.watcher.last_sweep
    for wait in scene.watcher.pending:
        wait.next_look = start
    for tick in range(1, 2000):
        now = start + tick * step
        poll = scene.watcher.next_poll(now, submitting=False)
        if poll is not None:
            assert poll.sweep and poll.gets == []
            return now - start
    raise AssertionError("no sweep within 100 s")


@pytest.mark.parametrize("poll_start", [HALF, 2.0])
def test_sweeps_are_at_least_poll_start_apart(poll_start: float) -> None:
    scene = swept_region(pages=1, waits=SWEEP_MIN_WAITS, poll_start=poll_start)
    assert sweep_gap(scene) >= poll_start - 1e-9


def test_a_bigger_region_is_swept_less_often() -> None:
    small = sweep_gap(swept_region(pages=1, waits=SWEEP_MIN_WAITS, poll_start=HALF))
    big = swept_region(pages=6, waits=8, poll_start=HALF)
    gap = sweep_gap(big)
    assert gap >= 6 * HALF - 1e-9  # at most a List page every 0.5 s
    assert gap > small


def test_wake_at_names_when_the_next_sweep_is_allowed() -> None:
    scene = swept_region(pages=6, waits=8, poll_start=HALF)
    for wait in scene.watcher.pending:
        wait.next_look = HALF  # due, but the sweep is held back
    assert scene.watcher.next_poll(HALF, submitting=False) is None
    wake = scene.watcher.wake_at(HALF, submitting=False)
    assert wake is not None and wake >= 6 * HALF
    assert scene.watcher.next_poll(wake - 0.01, submitting=False) is None
    poll = scene.watcher.next_poll(wake, submitting=False)
    assert poll is not None and poll.sweep


def test_asked_gets_go_out_while_a_sweep_is_held_back() -> None:
    scene = Scene(page_size=4)
    for u in uuids(5):
        scene.wait(u)
    for u in uuids(4)[1:] + ["u4"]:
        scene.mapping(u, "Creating")
    for u in uuids(7, prefix="other"):
        scene.mapping(u, "Enabled")
    assert scene.poll(0.0).sweep  # type: ignore[union-attr]  # u0 not listed: asks a Get
    assert scene.watcher.pages == 3
    asked = scene.watcher.waits["u0"][0]
    assert asked.ask_get
    poll = scene.watcher.next_poll(1.0, submitting=False)  # three pages: no sweep before 1.5
    assert poll is not None and not poll.sweep and poll.gets == ["u0"]


IDLE_TABLE = [
    # (blocking, ask_get, deadline, submitting, first time it is looked at)
    ("not submitting", False, False, 600.0, False, 0.0),
    ("submitting: deferred", False, False, 600.0, True, IDLE_LOOK),
    ("submitting, blocking", True, False, 600.0, True, 0.0),
    ("submitting, a Get asked", False, True, 600.0, True, 0.0),
    ("submitting, near its deadline", False, False, IDLE_LOOK + 10.0, True, 10.0),
    ("submitting, deadline within IDLE_LOOK", False, False, 5.0, True, 0.0),
]


@pytest.mark.parametrize(
    ("blocking", "ask_get", "deadline", "submitting", "first"),
    [row[1:] for row in IDLE_TABLE],
    ids=[row[0] for row in IDLE_TABLE],
)
def test_while_submitting_only_waits_that_matter_are_looked_at(
    blocking: bool, ask_get: bool, deadline: float, submitting: bool, first: float
) -> None:
    scene = Scene()
    wait = scene.wait("u0", goal=GONE, kind="delete", deadline=deadline)
    if blocking:
        scene.watcher.block("u0")
    wait.ask_get = ask_get
    if first > 0:
        assert scene.watcher.next_poll(first - 0.01, submitting) is None
        assert scene.watcher.wake_at(0.0, submitting) == first
    poll = scene.watcher.next_poll(first, submitting)
    assert poll is not None and poll.gets == ["u0"]


def test_block_marks_every_wait_of_the_mapping() -> None:
    scene = Scene()
    waits = [scene.wait("u0", goal=GONE, kind="delete"), scene.wait("u0")]
    other = scene.wait("u1")
    scene.watcher.block("u0")
    assert [w.blocking for w in waits] == [True, True] and not other.blocking


def test_nothing_to_wait_for_wakes_nothing() -> None:
    scene = Scene()
    assert scene.watcher.next_poll(0.0, submitting=False) is None
    assert scene.watcher.wake_at(0.0, submitting=False) is None


# what a sweep says -------------------------------------------------------------------------------

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 30, 12, 0, 1, tzinfo=UTC)
NAIVE_T1 = datetime(2026, 11, 30, 12, 0, 1)

SWEEP_TABLE: list[tuple[str, str, str, Any, dict[str, Any] | None, str | None, bool]] = [
    # (name, goal, kind, baseline, listed record or None, how it ends or None, asks a Get)
    ("gone: absent", GONE, "delete", None, None, GONE, False),
    ("gone: still Deleting", GONE, "delete", None, record(state="Deleting"), None, False),
    ("create: Enabled", SETTLED, "create", None, record(state="Enabled"), SETTLED, False),
    ("create: Disabled", SETTLED, "create", None, record(state="Disabled"), SETTLED, False),
    ("create: Creating", SETTLED, "create", None, record(state="Creating"), None, False),
    ("create: absent", SETTLED, "create", None, None, None, True),
    ("update: absent", SETTLED, "update", 5.0, None, None, True),
    (
        "update: Updating",
        SETTLED,
        "update",
        5.0,
        record(state="Updating", LastModified=6.0),
        None,
        False,
    ),
    (
        "update: settled, same LastModified",
        SETTLED,
        "update",
        5.0,
        record(LastModified=5.0),
        None,
        True,
    ),
    (
        "update: settled, older LastModified",
        SETTLED,
        "update",
        5.0,
        record(LastModified=4.0),
        None,
        True,
    ),
    ("update: settled, no LastModified", SETTLED, "update", 5.0, record(), None, True),
    ("update: settled, no baseline", SETTLED, "update", None, record(LastModified=6.0), None, True),
    (
        "update: settled, later LastModified",
        SETTLED,
        "update",
        5.0,
        record(LastModified=6.0),
        SETTLED,
        False,
    ),
    (
        "update: Disabled, later LastModified",
        SETTLED,
        "update",
        5.0,
        record(state="Disabled", LastModified=6.0),
        SETTLED,
        False,
    ),
    ("update: datetimes, later", SETTLED, "update", T0, record(LastModified=T1), SETTLED, False),
    ("update: datetimes, same", SETTLED, "update", T0, record(LastModified=T0), None, True),
    ("update: naive vs aware", SETTLED, "update", T0, record(LastModified=NAIVE_T1), None, True),
]


@pytest.mark.parametrize(
    ("goal", "kind", "baseline", "listed", "how", "asks_get"),
    [row[1:] for row in SWEEP_TABLE],
    ids=[row[0] for row in SWEEP_TABLE],
)
def test_what_a_sweep_after_the_answer_decides(
    goal: str,
    kind: str,
    baseline: Any,
    listed: dict[str, Any] | None,
    how: str | None,
    asks_get: bool,
) -> None:
    scene = Scene()
    wait = scene.wait(UUID, goal=goal, kind=kind, since=1.0, baseline=baseline, answered=True)
    scene.sweep(started=2.0, listed={UUID: listed} if listed else {"other": record("other")})
    assert scene.how(wait) == how
    assert wait.ask_get is asks_get
    if how is None:
        assert scene.watcher.pending == [wait]
        assert wait.last_look == 2.0 and wait.next_look > 2.0  # looked at: backs off
    else:
        assert scene.watcher.pending == []
        assert scene.found(wait) == listed
        assert scene.watcher.longest_swept == 1.0


def test_a_get_asked_by_a_sweep_goes_out_with_the_next_one() -> None:
    scene = Scene()
    for u in uuids(SWEEP_MIN_WAITS):
        scene.wait(u)
    for u in uuids(SWEEP_MIN_WAITS)[1:]:
        scene.mapping(u, "Creating")
    assert scene.poll(0.0).sweep  # type: ignore[union-attr]
    assert [w.ask_get for w in scene.watcher.pending] == [True, False, False, False]
    scene.mapping("u0", "Enabled")
    poll = scene.poll(10.0)  # a sweep is allowed again
    assert poll is not None and poll.sweep and poll.gets == ["u0"]
    assert scene.api.got == ["u0"]
    assert [how for _, how, _ in scene.ended] == [SETTLED]
    assert len(scene.watcher) == SWEEP_MIN_WAITS - 1


def test_an_update_settled_but_not_later_is_confirmed_by_get() -> None:
    scene = Scene()
    wait = scene.wait(UUID, kind="update", baseline=5.0, answered=True)
    scene.sweep(started=1.0, listed={UUID: record(LastModified=5.0)})
    assert scene.how(wait) is None and wait.ask_get
    scene.mapping(UUID, "Enabled", modified=5.0)
    poll = scene.poll(wait.next_look)
    assert poll is not None and poll.gets == [UUID]
    assert scene.how(wait) == SETTLED and not wait.ask_get  # a Get is the confirmation


def lagging_list(scene: Scene, n: int) -> list[Wait]:
    """`n` creates that Get shows Enabled and List shows Creating, for good."""
    waits = [scene.wait(u, answered=True) for u in uuids(n)]
    for u in uuids(n):
        scene.mapping(u, "Enabled")
    scene.api.listed = {u: record(u, "Creating") for u in uuids(n)}
    return waits


def test_a_list_that_lags_for_good_costs_a_get_each_after_get_after_never_a_timeout() -> None:
    scene = Scene(poll_start=HALF, poll_max=2.0)
    waits = lagging_list(scene, 6)
    scene.drive(0.0, until=GET_AFTER + 10)
    assert [scene.how(w) for w in waits] == [SETTLED] * 6
    assert sorted(scene.api.got) == uuids(6)  # one Get each
    assert min(when for when, _ in scene.got_at) >= GET_AFTER
    assert max(scene.ended_at.values()) <= GET_AFTER + 5
    assert scene.watcher.sweeps >= 10  # swept meanwhile


def test_gets_of_a_lagging_list_wait_twice_the_longest_a_sweep_took_to_end_a_wait() -> None:
    scene = Scene(poll_start=HALF, poll_max=2.0)
    waits = lagging_list(scene, 4)
    quick = scene.wait("quick", goal=GONE, kind="delete", answered=True)
    scene.api.listed["quick"] = record("quick", "Deleting")  # type: ignore[index]
    scene.drive(0.0, until=15.0)
    del scene.api.listed["quick"]  # type: ignore[attr-defined]
    scene.drive(15.25, until=60.0)
    assert scene.how(quick) == GONE
    longest = scene.watcher.longest_swept
    assert 15.0 <= longest <= 16.0 and 2 * longest > GET_AFTER
    assert [scene.how(w) for w in waits] == [SETTLED] * 4
    assert min(when for when, _ in scene.got_at) >= 2 * longest
    assert max(scene.ended_at[w.uuid] for w in waits) <= 2 * longest + 5


def test_a_list_that_does_not_lag_costs_no_gets() -> None:
    scene = Scene(poll_start=HALF, poll_max=2.0)
    waits = [scene.wait(u, answered=True) for u in uuids(6)]
    for u in uuids(6):
        scene.mapping(u, "Creating")
    scene.drive(0.0, until=10.0)
    assert scene.ended == []
    for u in uuids(6):
        scene.mapping(u, "Enabled")
    scene.drive(10.25, until=15.0)
    assert [scene.how(w) for w in waits] == [SETTLED] * 6
    assert max(scene.ended_at.values()) <= 10.25 + 2.0  # within a look's backoff
    assert scene.api.got == []


def test_a_failed_sweep_decides_nothing() -> None:
    scene = Scene()
    waits = [scene.wait(u, goal=GONE, kind="delete") for u in uuids(SWEEP_MIN_WAITS)]
    scene.api.list_error = throttled()
    poll = scene.poll(0.0)
    assert poll is not None and poll.sweep and poll.listed is None
    assert scene.ended == []  # absent from a List that failed is not gone
    assert scene.watcher.sweeps == 0 and not scene.watcher.busy
    assert scene.watcher.pending == waits


def test_a_failed_sweep_is_not_made_again_at_once() -> None:
    """A List that failed (throttled past the protocol's retries, or refused) is not asked
    again on the next turn of the loop: its waits back off and the sweep spacing holds."""
    scene = Scene()
    for u in uuids(SWEEP_MIN_WAITS):
        scene.wait(u, goal=GONE, kind="delete")
    scene.api.list_error = aws_error("AccessDeniedException", "not authorized", 403)
    assert scene.poll(0.0).sweep  # type: ignore[union-attr]
    again = scene.watcher.next_poll(0.0, submitting=False)
    assert again is None or not again.sweep


def test_a_list_that_fails_for_good_still_ends_the_waits_by_get() -> None:
    """E.g. a role allowed GetEventSourceMapping but not List: after a few failed sweeps, Gets."""
    scene = Scene(poll_start=HALF, poll_max=2.0)
    waits = [scene.wait(u, deadline=60.0, answered=True) for u in uuids(SWEEP_MIN_WAITS)]
    for u in uuids(SWEEP_MIN_WAITS):
        scene.mapping(u, "Enabled")
    scene.api.list_error = aws_error("AccessDeniedException", "not authorized", 403)
    scene.drive(0.0, until=61.0)
    assert [scene.how(w) for w in waits] == [SETTLED] * SWEEP_MIN_WAITS


# what a Get says ---------------------------------------------------------------------------------

GET_TABLE: list[tuple[str, str, str, Any, str | None]] = [
    # (name, goal, kind, the Get's answer (record or exception), how it ends or None)
    ("gone: NotFound", GONE, "delete", not_found(), GONE),
    ("settled: NotFound", SETTLED, "create", not_found(), MISSING),
    ("gone: still Deleting", GONE, "delete", record(state="Deleting"), None),
    ("create: Enabled", SETTLED, "create", record(state="Enabled"), SETTLED),
    ("create: Disabled", SETTLED, "create", record(state="Disabled"), SETTLED),
    ("create: Creating", SETTLED, "create", record(state="Creating"), None),
    ("update: Enabled, not later", SETTLED, "update", record(LastModified=1.0), SETTLED),
    ("update: Updating", SETTLED, "update", record(state="Updating"), None),
    ("throttled", SETTLED, "create", throttled("1"), None),
    ("ThrottlingException", GONE, "delete", aws_error("ThrottlingException", "Rate"), None),
    ("500", SETTLED, "create", service_exception(), None),
    ("connection", GONE, "delete", EndpointConnectionError(endpoint_url=ENDPOINT), None),
    ("read timeout", SETTLED, "update", ReadTimeoutError(endpoint_url=ENDPOINT), None),
    ("access denied", SETTLED, "create", aws_error("AccessDeniedException", "no", 403), UNREADABLE),
    (
        "access denied, gone",
        GONE,
        "delete",
        aws_error("AccessDeniedException", "no", 403),
        UNREADABLE,
    ),
    ("not an AWS answer", GONE, "delete", foreign_answer(), UNREADABLE),
]


@pytest.mark.parametrize(
    ("goal", "kind", "answer", "how"),
    [row[1:] for row in GET_TABLE],
    ids=[row[0] for row in GET_TABLE],
)
def test_what_a_get_decides(goal: str, kind: str, answer: Any, how: str | None) -> None:
    scene = Scene()
    wait = scene.wait(UUID, goal=goal, kind=kind, baseline=5.0 if kind == "update" else None)
    if isinstance(answer, BaseException):
        scene.api.get_errors[UUID] = answer
    else:
        scene.api.records[UUID] = answer
    poll = scene.poll(0.0, absorb_at=0.5)
    assert poll is not None and poll.gets == [UUID]
    assert scene.how(wait) == how
    if how is None:  # open: looked at, backing off
        assert scene.watcher.pending == [wait] and not wait.ask_get
        assert wait.last_get == 0.5 and wait.next_look == 0.5 + scene.watcher.poll_start
    elif isinstance(answer, BaseException):
        assert scene.found(wait) is answer
    else:
        assert scene.found(wait) == answer


# waits and polls in time -------------------------------------------------------------------------


def test_a_wait_added_after_a_sweep_started_is_not_decided_by_it() -> None:
    scene = Scene()
    for u in uuids(SWEEP_MIN_WAITS):
        scene.wait(u)
        scene.mapping(u, "Creating")
    poll = scene.watcher.next_poll(10.0, submitting=False)
    assert poll is not None and poll.sweep
    late = scene.wait("deleted", goal=GONE, kind="delete", since=11.0, answered=True)
    scene.watcher.run(poll)  # "deleted" is not listed
    scene.watcher.absorb(poll, 12.0)
    assert scene.how(late) is None and late.last_look == 11.0
    scene.sweep(started=11.0, listed={})  # a sweep that began after the answer may
    assert scene.how(late) == GONE


def test_a_wait_added_after_a_get_started_is_not_decided_by_it() -> None:
    scene = Scene()
    early = scene.wait(UUID, goal=GONE, kind="delete")
    poll = scene.watcher.next_poll(0.0, submitting=False)
    assert poll is not None and poll.gets == [UUID]
    late = scene.wait(UUID, goal=GONE, kind="delete", since=1.0, answered=True)
    scene.watcher.run(poll)  # NotFound
    scene.watcher.absorb(poll, 2.0)
    assert scene.how(early) == GONE
    assert scene.how(late) is None and scene.watcher.pending == [late]


def test_a_wait_whose_answer_came_as_the_sweep_began_is_decided_by_it() -> None:
    scene = Scene()
    wait = scene.wait(UUID, goal=GONE, kind="delete", since=3.0, answered=True)
    scene.sweep(started=3.0, listed={})
    assert scene.how(wait) == GONE


def test_expire_ends_the_waits_past_their_deadline() -> None:
    scene = Scene()
    soon = scene.wait("u0", deadline=10.0)
    later = scene.wait("u1", goal=GONE, kind="delete", deadline=20.0)
    scene.watcher.expire(9.99)
    assert scene.ended == []
    scene.watcher.expire(10.0)
    assert scene.how(soon) == TIMED_OUT and scene.found(soon) is None
    assert scene.watcher.pending == [later]
    scene.watcher.expire(25.0)
    assert scene.how(later) == TIMED_OUT and len(scene.watcher) == 0
    assert len(scene.ended) == 2  # each wait ends once
