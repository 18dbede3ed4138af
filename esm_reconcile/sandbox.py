"""A local AWS to try specs against: an embedded moto server, seeded with what the specs name.

The server runs in this process (moto's ThreadedMotoServer), listens on 127.0.0.1 only, and
lives exactly as long as the ``sandbox()`` context. Inside the context the environment points
every boto3 client this process creates at it, so the rest of the package needs no sandbox
special cases.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from esm_reconcile import functions, rules
from esm_reconcile.aws import RateLimiter, error_code
from esm_reconcile.errors import EsmError

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's own default account
ROLE_NAME = "esm-sandbox-role"
HOST = "127.0.0.1"  # never 0.0.0.0: nothing of the sandbox may be reachable from elsewhere

_MAX_VERSIONS = 1000  # publishing is one request pair per version; stop absurd qualifiers early
_KINESIS_ACTIVE_TIMEOUT_S = 10.0

_TRUST_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)

# Removed inside the sandbox: each could make a client skip the endpoint or sign as someone else.
# FIPS/dual-stack flags make botocore refuse a custom endpoint outright.
_REMOVED_ENV = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)

_ARN_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class FunctionRef:
    """A function reference from a spec, split into the parts the sandbox needs."""

    region: str
    account: str | None
    name: str
    qualifier: str | None  # None or "$LATEST": the unpublished function itself

    @property
    def version(self) -> int | None:
        return int(self.qualifier) if self.qualifier and self.qualifier.isdigit() else None

    @property
    def alias(self) -> str | None:
        if self.qualifier in (None, "$LATEST") or self.version is not None:
            return None
        return self.qualifier


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str


def parse_function_ref(ref: str, region: str) -> FunctionRef:
    """`name`, `name:qualifier`, a full function ARN or `ACCOUNT:function:name[:qualifier]`."""
    try:
        parsed = functions.parse_function_ref(ref)
    except ValueError:
        raise EsmError(f"sandbox: cannot tell which function {ref!r} names") from None
    return FunctionRef(parsed.region or region, parsed.account, parsed.name, parsed.qualifier)


def parse_arn(arn: str) -> Arn | None:
    """Split an ARN; None for anything that is not one (the spec validator reports those)."""
    parts = rules.parse_arn(arn)
    if parts is None:
        return None
    return Arn(parts["service"], parts["region"], parts["account"], parts["resource"])


def choose_account(account_id: str | None, refs: Iterable[FunctionRef], arns: Iterable[Arn]) -> str:
    """The one account the sandbox hosts: the one asked for or named by the ARNs, else moto's."""
    named = {ref.account for ref in refs if ref.account}
    named |= {arn.account for arn in arns if _ARN_ACCOUNT.match(arn.account)}
    if account_id is not None:
        if not _ARN_ACCOUNT.match(account_id):
            raise EsmError(f"sandbox: account id {account_id!r} is not 12 digits")
        named.add(account_id)
    if len(named) > 1:
        raise EsmError(
            "the sandbox hosts a single account, but the specs name " + ", ".join(sorted(named))
        )
    return named.pop() if named else DEFAULT_ACCOUNT_ID


@dataclass(frozen=True)
class _Moto:
    """The parts of moto the sandbox uses, imported only when a sandbox is started."""

    server_class: Any
    dynamodb_backends: Any
    reset: Callable[[], None]


def _import_moto() -> _Moto:
    try:
        from moto.core.base_backend import BackendDict
        from moto.core.model_instances import reset_model_data
        from moto.dynamodb.models import dynamodb_backends
        from moto.server import ThreadedMotoServer  # needs flask/werkzeug (moto[server])
    except ImportError as exc:
        raise EsmError("the sandbox needs moto: pip install 'esm-reconcile[sandbox]'") from exc

    def reset() -> None:
        # Backends are module globals shared by every server in this process; wipe them so
        # each sandbox starts empty and leaves nothing behind.
        BackendDict.reset()
        reset_model_data()

    return _Moto(_aws_like_server_class(ThreadedMotoServer), dynamodb_backends, reset)


MAPPINGS_PATH = "/2015-03-31/event-source-mappings"
AWS_PAGE_LIMIT = 100  # ListEventSourceMappings returns at most 100 items whatever MaxItems says

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
"""A WSGI application; `sandbox(middleware=...)` takes a function that wraps one."""

# The API versions in Lambda's request paths (botocore's lambda model). Only unsigned requests
# are told apart by path: a signed one names its service in the credential scope, and other
# services use dated paths too (Route 53, CloudFront).
_LAMBDA_PATH = re.compile(
    r"^/(?:2014-11-13|2015-03-31|2016-08-19|2017-03-31|2017-10-31|2018-10-31|2019-09-25"
    r"|2019-09-30|2020-04-22|2020-06-30|2021-07-20|2021-10-31|2021-11-15|2024-08-31"
    r"|2025-11-30|2025-12-01)/"
)
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/([^/]+)/([^/]+)/aws4_request")

_IN_USE = "Cannot {verb} the event source mapping because it is in use."


def _lambda_region(environ: dict[str, Any], default_region: str) -> str | None:
    """The region of a Lambda request, None for a request to any other service."""
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is not None:
        return scope[1] if scope[2] == "lambda" else None
    return default_region if _LAMBDA_PATH.match(environ.get("PATH_INFO", "")) else None


@dataclass
class _Answer:
    """A buffered WSGI response, so a layer can read and rewrite it before sending it on."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def data(self) -> Any:
        """The JSON body, or None when there is none or it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def with_data(self, data: Any, code: int | None = None) -> _Answer:
        body = json.dumps(data).encode()
        headers = [(k, v) for k, v in self.headers if k.lower() != "content-length"]
        status = self.status if code is None else _status_line(code)
        return _Answer(status, [*headers, ("Content-Length", str(len(body)))], body)

    def send(self, start_response: Callable[..., Any]) -> list[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


def _status_line(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _call(app: WSGIApp, environ: dict[str, Any]) -> _Answer:
    """Run a WSGI app to completion and keep what it answered."""
    captured: dict[str, Any] = {}
    written: list[bytes] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.update(status=status, headers=list(headers))
        return written.append  # the legacy write() callable

    chunks = app(environ, capture)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return _Answer(captured["status"], captured["headers"], b"".join(written) + body)


def _lambda_error(
    code: int, error_type: str, message: str, *, message_key: str = "message", **extra: str
) -> _Answer:
    """An error as Lambda sends it: the code in x-amzn-ErrorType, Type and message in the body.

    `message_key` is the model's spelling (`message` or `Message`; botocore reads both).
    """
    body = json.dumps({"Type": "User", message_key: message, **extra}).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", error_type),
        ("Content-Length", str(len(body))),
    ]
    return _Answer(_status_line(code), headers, body)


def _conflict(identity: MappingIdentity, uuid: str) -> _Answer:
    return _lambda_error(409, "ResourceConflictException", identity.conflict_message(uuid))


def _in_use(verb: str) -> _Answer:
    return _lambda_error(
        400, "ResourceInUseException", _IN_USE.format(verb=verb), message_key="Message"
    )


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so the next layer can read it again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


def _bodyless(
    environ: dict[str, Any], method: str, path: str | None = None, query: str = ""
) -> dict[str, Any]:
    """A copy of a request with another method and no body, for the layer's own moto calls.

    werkzeug's per-request objects are left out: the copy may run after the request ended.
    """
    copy = {k: v for k, v in environ.items() if not k.startswith("werkzeug.")}
    copy.update(REQUEST_METHOD=method, CONTENT_LENGTH="0", QUERY_STRING=query)
    if path is not None:
        copy.update(PATH_INFO=path, RAW_URI=path, REQUEST_URI=path)
    copy.pop("CONTENT_TYPE", None)
    copy["wsgi.input"] = io.BytesIO(b"")
    return copy


@dataclass(frozen=True)
class MappingIdentity:
    """What makes two mappings duplicates for Lambda (reference B, "Uniqueness")."""

    function_arn: str  # qualified as requested: `f` and `f:live` are different functions
    source_arn: str | None
    brokers: frozenset[str]  # self-managed Kafka bootstrap servers (no source ARN)
    topics: tuple[str, ...]
    queues: tuple[str, ...]

    @classmethod
    def of(cls, function_arn: str | None, fields: dict[str, Any]) -> MappingIdentity | None:
        """From a Create request's fields or a mapping's; None if it has no function or source."""
        endpoints = (fields.get("SelfManagedEventSource") or {}).get("Endpoints") or {}
        servers = endpoints.get("KAFKA_BOOTSTRAP_SERVERS") or []
        source = fields.get("EventSourceArn") or None
        if function_arn is None or (source is None and not servers):
            return None
        return cls(
            function_arn,
            source,
            frozenset(servers),
            tuple(sorted(fields.get("Topics") or [])),
            tuple(sorted(fields.get("Queues") or [])),
        )

    def conflicts_with(self, other: MappingIdentity) -> bool:
        if (self.function_arn, self.topics, self.queues) != (
            other.function_arn,
            other.topics,
            other.queues,
        ):
            return False
        if self.source_arn is not None:
            return self.source_arn == other.source_arn
        # AWS refuses a broker list that merely overlaps an existing one [AWS-rec 2024].
        return bool(self.brokers & other.brokers)

    def conflict_message(self, uuid: str) -> str:
        """AWS's wording per source kind (reference B), naming the mapping to update instead."""
        tail = f"already exists. Please update or delete the existing mapping with UUID {uuid}"
        name = functions.function_label(self.function_arn)
        topics = ",".join(self.topics)
        if self.source_arn is None:
            brokers = ",".join(sorted(self.brokers))
            return (
                f'An event source mapping with event source ("{brokers}"), function '
                f'("{self.function_arn}"), topics ("{topics}") {tail}'
            )
        service = self.source_arn.split(":")[2] if self.source_arn.count(":") >= 2 else ""
        if service == "sqs":
            return (
                f'An event source mapping with SQS arn (" {self.source_arn} ") '
                f'and function (" {name} ") {tail}'
            )
        if service == "kafka":
            return (
                f'An event source mapping with event source arn ("{self.source_arn}"), '
                f'function ("{self.function_arn}") and topics ("{topics}") {tail}'
            )
        return (
            f'The event source arn (" {self.source_arn} ") and function (" {name} ") '
            f"provided mapping {tail}"
        )


def _qualified_function_arn(requested: Any, region: str, account: str) -> str | None:
    """A FunctionName as sent (name, name:qualifier, partial or full ARN) as a full ARN."""
    if not isinstance(requested, str):
        return None
    try:
        return functions.parse_function_ref(requested).arn(region, account)
    except ValueError:
        return None


@dataclass
class _Transition:
    """A mapping between states: Creating, Updating, Enabling, Disabling or Deleting."""

    state: str
    until: float  # time.monotonic() when it settles
    # Deleting: the DELETE to forward to moto once settled (until then moto still has it).
    pending_delete: dict[str, Any] | None = None


class AwsLikeMappings:
    """WSGI middleware that makes moto's answers about mappings what AWS answers.

    - List: moto returns every mapping in one page; AWS pages by <=100 with NextMarker. Paging
      the same way makes the sandbox cost what AWS costs.
    - FunctionArn: moto reports `f` for `f:$LATEST` and the version ARN for `f:alias`; AWS
      reports the qualified ARN the mapping was created with (reference E.9, A.4).
    - Duplicates: moto accepts any number of mappings for one (function, source); AWS answers
      409 ResourceConflictException naming the existing mapping (reference B).
    - With `settle_s` > 0, states: AWS takes seconds in Creating/Updating/Enabling/Disabling/
      Deleting and refuses Update/Delete meanwhile (ResourceInUseException); a Deleting
      mapping stays readable and still blocks a duplicate until it is really gone.

    Every mapping request runs under one lock: moto answers in milliseconds, and holding the
    lock across "check, forward to moto, record" keeps duplicates and transitions exact when
    the threaded server handles requests at once.
    """

    def __init__(self, app: WSGIApp, *, account: str, region: str, settle_s: float = 0.0) -> None:
        self.app = app
        self.account = account
        self.region = region  # for unsigned requests, which name none
        self.settle_s = settle_s
        self.function_arns: dict[str, str] = {}  # mapping UUID → qualified ARN it was made with
        self.transitions: dict[str, _Transition] = {}  # mapping UUID → its unsettled state
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if not path.startswith(MAPPINGS_PATH):
            if self.transitions:  # unlocked peek: with nothing pending, take no lock
                with self._lock:
                    self._settle_deletes()  # e.g. ListTags must not find a mapping now gone
            return self.app(environ, start_response)
        uuid = path[len(MAPPINGS_PATH) :].strip("/")
        body: Any = {}
        if method in ("POST", "PUT"):
            try:
                body = json.loads(_read_body(environ) or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return self.app(environ, start_response)  # moto words the error
        with self._lock:
            self._settle_deletes()
            if method == "POST" and not uuid:
                answer = self._create(environ, body)
            elif method == "PUT" and uuid:
                answer = self._update(environ, uuid, body)
            elif method == "DELETE" and uuid:
                answer = self._delete(environ, uuid)
            elif method == "GET" and not uuid:
                answer = self._list(environ)
            else:
                answer = self._present_answer(_call(self.app, environ))
        return answer.send(start_response)

    # Requests

    def _create(self, environ: dict[str, Any], body: dict[str, Any]) -> _Answer:
        region = _lambda_region(environ, self.region) or self.region
        function_arn = _qualified_function_arn(body.get("FunctionName"), region, self.account)
        identity = MappingIdentity.of(function_arn, body)
        if identity is not None:
            clash = self._clash(environ, identity)
            if clash is not None:
                return _conflict(identity, clash)
        answer = _call(self.app, environ)
        data = answer.data()
        if not answer.ok or not isinstance(data, dict) or not data.get("UUID"):
            return answer
        uuid = data["UUID"]
        self._remember_function(uuid, data.get("FunctionArn"), body.get("FunctionName"))
        # AWS answers a disabled Create with "Disabled" at once (reference B); only an
        # enabled one goes through Creating.
        if self.settle_s and data.get("State") == "Enabled":
            self._begin(uuid, "Creating")
        return answer.with_data(self._present(data))

    def _update(self, environ: dict[str, Any], uuid: str, body: dict[str, Any]) -> _Answer:
        if self._busy(uuid):
            return _in_use("update")
        current: Any = None
        if "FunctionName" in body or (self.settle_s and "Enabled" in body):
            current = self._present(_call(self.app, _bodyless(environ, "GET")).data())
        if not isinstance(current, dict):
            current = {}
        if "FunctionName" in body:
            # Retargeting must not make a duplicate either [inferred].
            region = _lambda_region(environ, self.region) or self.region
            function_arn = _qualified_function_arn(body["FunctionName"], region, self.account)
            identity = MappingIdentity.of(function_arn, current)
            clash = self._clash(environ, identity, ignore=uuid) if identity else None
            if identity is not None and clash is not None:
                return _conflict(identity, clash)
        answer = _call(self.app, environ)
        data = answer.data()
        if not answer.ok or not isinstance(data, dict) or not data.get("UUID"):
            return answer
        self._remember_function(uuid, data.get("FunctionArn"), body.get("FunctionName"))
        if self.settle_s:
            state = "Updating"
            before = current.get("State")
            # Only a flip of Enabled is Enabling/Disabling; anything else is Updating.
            if before in ("Enabled", "Disabled") and (before == "Enabled") != bool(body["Enabled"]):
                state = "Enabling" if body["Enabled"] else "Disabling"
            self._begin(uuid, state)
        return answer.with_data(self._present(data))

    def _delete(self, environ: dict[str, Any], uuid: str) -> _Answer:
        if self._busy(uuid):
            return _in_use("delete")
        if not self.settle_s:
            answer = self._present_answer(_call(self.app, environ))
            if answer.ok:
                self._forget(uuid)
            return answer
        # Answer like AWS (202, the mapping, State Deleting) but keep it in moto until settled.
        current = _call(self.app, _bodyless(environ, "GET"))
        if not current.ok:
            return current  # unknown UUID: moto's 404 ResourceNotFoundException, like AWS
        self._begin(uuid, "Deleting", pending_delete=_bodyless(environ, "DELETE"))
        return current.with_data(self._present(current.data()), code=202)

    def _list(self, environ: dict[str, Any]) -> _Answer:
        answer = _call(self.app, environ)
        data = answer.data()
        if not answer.ok or not isinstance(data, dict) or "EventSourceMappings" not in data:
            return answer
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        limit = min(int(query.get("MaxItems", [AWS_PAGE_LIMIT])[0]), AWS_PAGE_LIMIT)
        start = int(query.get("Marker", ["0"])[0] or 0)
        items = data["EventSourceMappings"]
        data["EventSourceMappings"] = [self._present(item) for item in items[start : start + limit]]
        data.pop("NextMarker", None)
        if start + limit < len(items):
            data["NextMarker"] = str(start + limit)
        return answer.with_data(data)

    # State (callers hold self._lock)

    def _clash(
        self, environ: dict[str, Any], identity: MappingIdentity, ignore: str | None = None
    ) -> str | None:
        """The UUID of a mapping (Deleting ones included) that `identity` would duplicate.

        Asks moto rather than keeping an index, so mappings made behind the server's back
        (straight in moto's backend, as benchmarks seed) count too.
        """
        query = urllib.parse.urlencode({"EventSourceArn": identity.source_arn or ""})
        listed = _call(self.app, _bodyless(environ, "GET", MAPPINGS_PATH, query)).data()
        for item in (listed or {}).get("EventSourceMappings", []):
            item = self._present(item)
            other = MappingIdentity.of(item.get("FunctionArn"), item)
            if item.get("UUID") != ignore and other and identity.conflicts_with(other):
                return str(item["UUID"])
        return None

    def _begin(self, uuid: str, state: str, pending_delete: dict[str, Any] | None = None) -> None:
        self.transitions[uuid] = _Transition(
            state, time.monotonic() + self.settle_s, pending_delete
        )

    def _transition(self, uuid: str) -> _Transition | None:
        """The mapping's unsettled state, None once it has settled."""
        transition = self.transitions.get(uuid)
        if transition is None:
            return None
        if transition.pending_delete is None and time.monotonic() >= transition.until:
            del self.transitions[uuid]  # settled: from now on moto's state is the state
            return None
        return transition  # a Deleting one lasts until _settle_deletes forwards it

    def _busy(self, uuid: str) -> bool:
        return self._transition(uuid) is not None

    def _settle_deletes(self) -> None:
        """Forward to moto the deletes whose Deleting time is over."""
        now = time.monotonic()
        for uuid, transition in list(self.transitions.items()):
            if transition.pending_delete is not None and now >= transition.until:
                _call(self.app, transition.pending_delete)
                self._forget(uuid)

    def _forget(self, uuid: str) -> None:
        self.function_arns.pop(uuid, None)
        self.transitions.pop(uuid, None)

    def _remember_function(self, uuid: str, reported: Any, requested: Any) -> None:
        if not isinstance(reported, str) or not isinstance(requested, str):
            return
        parts = reported.split(":")  # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:Q]
        if len(parts) < 7:
            return
        # A name or name:qualifier gets the account and region moto reported.
        qualified = _qualified_function_arn(requested, parts[3], parts[4])
        if qualified is not None:
            self.function_arns[uuid] = qualified

    def _present(self, item: Any) -> Any:
        """A mapping as AWS shows it: the FunctionArn it was made with, its unsettled state."""
        if not isinstance(item, dict) or not item.get("UUID"):
            return item
        uuid = item["UUID"]
        if uuid in self.function_arns and item.get("FunctionArn"):
            item["FunctionArn"] = self.function_arns[uuid]
        transition = self._transition(uuid)
        if transition is not None:
            item["State"] = transition.state
        return item

    def _present_answer(self, answer: _Answer) -> _Answer:
        data = answer.data()
        if not answer.ok or not isinstance(data, dict):
            return answer
        return answer.with_data(self._present(data))


class LambdaControlPlane:
    """Lambda's request quota and latency, for Lambda requests only (not STS, SQS, ...).

    The quota is per account and region, as AWS's is: one token bucket per region (the
    sandbox hosts one account). A request without a token gets what Lambda answers when the
    control-plane rate is exceeded: 429 TooManyRequestsException, which botocore retries as
    throttling. Off until `armed`, so seeding the sandbox is neither throttled nor slowed.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        region: str,
        quota_rps: float | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.app = app
        self.region = region
        self.quota_rps = quota_rps
        self.latency_s = latency_s
        self.armed = False
        # A RateLimiter that is only asked, never waited on: no token means a 429.
        self._buckets: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        region = _lambda_region(environ, self.region) if self.armed else None
        if region is None:
            return self.app(environ, start_response)
        allowed = self._take(region)
        if self.latency_s:
            time.sleep(self.latency_s)
        if allowed:
            return self.app(environ, start_response)
        _read_body(environ)  # drain it: the connection is kept alive for the next request
        throttled = _lambda_error(
            429, "TooManyRequestsException", "Rate exceeded", Reason="CallerRateLimitExceeded"
        )
        return throttled.send(start_response)

    def _take(self, region: str) -> bool:
        if self.quota_rps is None:
            return True
        with self._lock:
            bucket = self._buckets.setdefault(region, RateLimiter(self.quota_rps))
        return bucket.try_acquire() == 0


class RequestLog:
    """Appends every request to `request_log` as it arrives: (method, path), and to
    `response_log` as it is answered: (time.monotonic(), method, path, HTTP status)."""

    def __init__(
        self,
        app: WSGIApp,
        request_log: list[tuple[str, str]] | None = None,
        response_log: list[tuple[float, str, str, int]] | None = None,
    ) -> None:
        self.app = app
        self.request_log = request_log
        self.response_log = response_log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if self.request_log is not None:
            self.request_log.append((method, path))  # list.append is atomic: no lock needed
        if self.response_log is None:
            return self.app(environ, start_response)
        answer = _call(self.app, environ)
        self.response_log.append((time.monotonic(), method, path, answer.code))
        return answer.send(start_response)


def _aws_like_server_class(base: type) -> type:
    """moto's ThreadedMotoServer serving the app `wrap` makes of moto's own."""

    class AwsLikeMotoServer(base):  # type: ignore[misc, valid-type]
        wrap: Callable[[WSGIApp], WSGIApp] | None = None
        start_error: Exception | None = None

        def _server_entry(self) -> None:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                create_backend_app,
            )
            from werkzeug.serving import make_server

            try:
                app: WSGIApp = DomainDispatcherApplication(create_backend_app)
                if self.wrap is not None:
                    app = self.wrap(app)
                self._server = make_server(self._ip_address, self._port, app, True)
            except Exception as exc:  # start() waits for the ready event: never leave it hanging
                self.start_error = exc
                self._server_ready_event.set()
                return
            self._server_ready_event.set()
            self._server.serve_forever()

    return AwsLikeMotoServer


@contextlib.contextmanager
def sandbox(
    function_refs: Iterable[str],
    source_arns: Iterable[str],
    region: str,
    account_id: str | None = None,
    request_log: list[tuple[str, str]] | None = None,
    *,
    quota_rps: float | None = None,
    settle_s: float = 0.0,
    latency_s: float = 0.0,
    middleware: Callable[[WSGIApp], WSGIApp] | None = None,
    response_log: list[tuple[float, str, str, int]] | None = None,
) -> Iterator[str]:
    """Start an embedded moto server on 127.0.0.1 (free port), seed it, yield its endpoint URL.

    Mappings behave like AWS's in paging, FunctionArn and duplicate detection (409
    ResourceConflictException) always; the rest is opt-in, and applies after seeding:

    - `quota_rps`: Lambda's per-account control-plane quota; a Lambda request over it gets
      429 TooManyRequestsException (token bucket, burst = rate).
    - `settle_s`: how long a mapping stays Creating/Updating/Enabling/Disabling/Deleting, with
      Update/Delete answering ResourceInUseException meanwhile; 0 settles at once.
    - `latency_s`: sleep before answering each Lambda request.
    - `middleware`: wraps the server's whole WSGI app (outside the logs, quota and moto), e.g.
      to inject faults.
    - `request_log` receives (method, path) of every request the server gets, `response_log`
      (time.monotonic(), method, path, HTTP status) of every one it answers (seeding included).
    """
    if quota_rps is not None and not quota_rps > 0:
        raise ValueError(f"quota_rps must be > 0, not {quota_rps}")
    if settle_s < 0 or latency_s < 0:
        raise ValueError("settle_s and latency_s must be >= 0")
    moto = _import_moto()
    # Parse and check everything before starting anything, so bad input needs no cleanup.
    refs = [parse_function_ref(ref, region) for ref in dict.fromkeys(function_refs)]
    raw_arns = list(dict.fromkeys(source_arns))
    account = choose_account(account_id, refs, [a for a in map(parse_arn, raw_arns) if a])

    layers: list[LambdaControlPlane] = []

    def wrap(moto_app: WSGIApp) -> WSGIApp:
        # Innermost first: moto, its mappings made AWS-like, quota and latency, the logs,
        # then the caller's middleware around everything.
        mappings = AwsLikeMappings(moto_app, account=account, region=region, settle_s=settle_s)
        control = LambdaControlPlane(
            mappings, region=region, quota_rps=quota_rps, latency_s=latency_s
        )
        layers.append(control)
        logged = RequestLog(control, request_log, response_log)
        return middleware(logged) if middleware is not None else logged

    # Port 0: the OS picks a free port at bind time and the server reports it back, with no
    # window between probing for a port and binding it.
    server = moto.server_class(ip_address=HOST, port=0, verbose=False)
    server.wrap = wrap
    moto.reset()
    with _quiet_werkzeug():
        server.start()
        if server.start_error is not None:
            raise EsmError(f"the sandbox server did not start: {server.start_error}")
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            with _sandbox_environ(url, region, account), _fresh_default_session():
                seeder = _Seeder(url, account, region, moto)
                seeder.seed(refs, raw_arns)
                for control in layers:
                    control.armed = True
                yield url
        finally:
            server.stop()
            moto.reset()


@contextlib.contextmanager
def _sandbox_environ(url: str, region: str, account: str) -> Iterator[None]:
    """Point boto3 at the sandbox; on exit put back every touched variable as it was."""
    changes: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # moto reads this on every request before anything else (access key, header), so
        # every client lands in this account whatever credentials it signs with.
        "MOTO_ACCOUNT_ID": account,
        # A user's config/credentials files could add credential_process, SSO, or
        # ignore_configured_endpoint_urls; the sandbox needs none of them.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    changes |= dict.fromkeys(_REMOVED_ENV)
    # Per-service endpoints (AWS_ENDPOINT_URL_SQS, ...) win over AWS_ENDPOINT_URL.
    changes |= dict.fromkeys(k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_"))
    # A proxy would otherwise see (and fail) requests to 127.0.0.1.
    for key in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(key, "")
        changes[key] = f"{current},{HOST}" if current else HOST

    saved = {key: os.environ.get(key) for key in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _fresh_default_session() -> Iterator[None]:
    """boto3's default session caches credentials; a fresh one inside reads the sandbox env."""
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved


@contextlib.contextmanager
def _quiet_werkzeug() -> Iterator[None]:
    """werkzeug logs every request at INFO to stderr unless its logger has a level."""
    logger = logging.getLogger("werkzeug")
    saved = logger.level
    logger.setLevel(max(saved, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(saved)


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


class _Seeder:
    """Creates the functions and sources a spec names, each once."""

    def __init__(self, url: str, account: str, default_region: str, moto: _Moto) -> None:
        self._url = url
        self._account = account
        self._region = default_region
        self._moto = moto
        # Explicit credentials: seeding must not depend on what the environment resolves to.
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._role_arn: str | None = None
        self._zip = _function_zip()
        self._stream_labels: dict[tuple[str, str], str] = {}

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._session.client(
                service,
                region_name=region,
                endpoint_url=self._url,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
        return self._clients[key]

    def seed(self, refs: list[FunctionRef], arns: list[str]) -> None:
        try:
            self._role()  # always there, so later function creation can count on it
            for ref in refs:
                self._function(ref)
            for ref in refs:
                if ref.version is not None:
                    self._ensure_version(ref, ref.version)
            # Aliases last, so each points at the newest version any ref asked for,
            # whatever order the refs came in.
            for ref in refs:
                if ref.alias is not None:
                    self._alias(ref, ref.alias)
            for raw in arns:
                arn = parse_arn(raw)
                if arn is not None:
                    self._source(raw, arn)
        except ClientError as exc:
            raise EsmError(f"sandbox: seeding failed: {exc}") from exc

    # Functions

    def _role(self) -> str:
        if self._role_arn is None:
            iam = self.client("iam", self._region)
            try:
                role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=_TRUST_POLICY)[
                    "Role"
                ]
            except ClientError as exc:
                if error_code(exc) != "EntityAlreadyExists":
                    raise
                role = iam.get_role(RoleName=ROLE_NAME)["Role"]
            self._role_arn = str(role["Arn"])
        return self._role_arn

    def _function(self, ref: FunctionRef) -> None:
        try:
            self.client("lambda", ref.region).create_function(
                FunctionName=ref.name,
                Runtime="python3.12",
                Role=self._role(),
                Handler="index.handler",
                Code={"ZipFile": self._zip},
            )
        except ClientError as exc:
            # `f` and `f:live` share one function.
            if error_code(exc) != "ResourceConflictException":
                raise

    def _published(self, ref: FunctionRef) -> int:
        pages = self.client("lambda", ref.region).get_paginator("list_versions_by_function")
        versions = [
            int(v["Version"])
            for page in pages.paginate(FunctionName=ref.name)
            for v in page["Versions"]
            if v["Version"].isdigit()
        ]
        return max(versions, default=0)

    def _ensure_version(self, ref: FunctionRef, wanted: int) -> None:
        if wanted > _MAX_VERSIONS:
            raise EsmError(
                f"sandbox: {ref.name}:{wanted}: the sandbox publishes at most {_MAX_VERSIONS} versions"
            )
        lam = self.client("lambda", ref.region)
        have = self._published(ref)
        while have < wanted:
            if have:
                # Like Lambda, moto publishes nothing new unless code or configuration changed.
                lam.update_function_configuration(
                    FunctionName=ref.name, Description=f"esm sandbox version {have + 1}"
                )
            published = int(lam.publish_version(FunctionName=ref.name)["Version"])
            if published <= have:
                raise EsmError(f"sandbox: could not publish version {have + 1} of {ref.name}")
            have = published

    def _alias(self, ref: FunctionRef, alias: str) -> None:
        lam = self.client("lambda", ref.region)
        try:
            lam.get_alias(FunctionName=ref.name, Name=alias)
            return
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        self._ensure_version(ref, 1)
        lam.create_alias(
            FunctionName=ref.name, Name=alias, FunctionVersion=str(self._published(ref))
        )

    # Sources and destinations

    def _source(self, raw: str, arn: Arn) -> None:
        region = arn.region or self._region
        if arn.service == "sqs":
            attributes = {"FifoQueue": "true"} if arn.resource.endswith(".fifo") else {}
            self.client("sqs", region).create_queue(QueueName=arn.resource, Attributes=attributes)
        elif arn.service == "sns":
            attributes = {"FifoTopic": "true"} if arn.resource.endswith(".fifo") else {}
            self.client("sns", region).create_topic(Name=arn.resource, Attributes=attributes)
        elif arn.service == "kinesis" and arn.resource.startswith("stream/"):
            # A consumer ARN (stream/NAME/consumer/...) gets its stream only: moto cannot
            # host consumers as event sources.
            self._kinesis_stream(region, arn.resource.split("/")[1])
        elif arn.service == "dynamodb" and arn.resource.startswith("table/"):
            parts = arn.resource.split("/")
            label = parts[3] if len(parts) >= 4 and parts[2] == "stream" else None
            self._dynamodb_table(raw, region, parts[1], label)
        elif arn.service == "s3":
            self._bucket(arn.resource.split("/")[0])
        # Anything else (kafka, mq, rds, ...) moto cannot host: the sandbox leaves it out.

    def _kinesis_stream(self, region: str, name: str) -> None:
        kinesis = self.client("kinesis", region)
        try:
            kinesis.create_stream(StreamName=name, ShardCount=1)
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
        deadline = time.monotonic() + _KINESIS_ACTIVE_TIMEOUT_S
        while True:
            summary = kinesis.describe_stream_summary(StreamName=name)
            if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
            if time.monotonic() > deadline:
                raise EsmError(f"sandbox: kinesis stream {name} did not become ACTIVE")
            time.sleep(0.05)

    def _dynamodb_table(self, raw: str, region: str, table: str, label: str | None) -> None:
        ddb = self.client("dynamodb", region)
        try:
            ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
        if label is None:
            return
        key = (region, table)
        if self._stream_labels.setdefault(key, label) != label:
            raise EsmError(
                f"sandbox: table {table} is named with two stream labels "
                f"({self._stream_labels[key]}, {label}); the sandbox hosts one stream per table"
            )
        # moto labels a stream with its creation time, and Lambda matches EventSourceArn
        # against the stream ARN exactly. The server runs in this process, so set the label
        # on moto's table object to the one the spec names.
        backend = self._moto.dynamodb_backends[self._account][region]
        backend.get_table(table).latest_stream_label = label
        got = ddb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
        if got != raw:
            raise EsmError(f"sandbox: could not give table {table} the stream {raw} (got {got})")

    def _bucket(self, bucket: str) -> None:
        s3 = self.client("s3", self._region)
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self._region != "us-east-1":  # us-east-1 rejects an explicit location constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            s3.create_bucket(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
