"""boto3 clients for one account and region, sharing one client-side rate limit.

Lambda allows about 15 control-plane requests per second per account and region across all its
APIs, so every HTTP attempt (retries included) first takes a token from one bucket.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from botocore.parsers import ResponseParserError

from .errors import AwsError, EsmError

DEFAULT_MAX_RPS = 10.0
# botocore's retries after a first attempt (its `max_attempts` key counts retries), and socket
# timeouts, for every client of a run.
MAX_RETRIES = 8
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
THROTTLING_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
)


class RateLimiter:
    """Token bucket shared by all threads of a run, that backs off when AWS throttles.

    The quota is shared with every other caller in the account and region, so a configured rate
    that was safe can stop being so. A throttled answer halves the rate (at most once a second:
    one burst of 429s is one signal); it then climbs back to the configured rate over about
    RECOVERY_SECONDS (additive increase, multiplicative decrease).
    """

    RECOVERY_SECONDS = 20.0
    MIN_RATE = 0.5

    def __init__(
        self,
        rate: float = DEFAULT_MAX_RPS,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_rate = rate
        self.rate = rate
        self.lowest_rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.updated = clock()
        self.last_cut = -float("inf")
        self.lock = threading.Lock()
        self.acquired = 0
        self.throttled = 0

    def acquire(self, **_: Any) -> None:
        """Take a token, sleeping until there is one (botocore's before-send event)."""
        while (wait := self.try_acquire()) > 0:
            self.sleep(wait)

    def try_acquire(self) -> float:
        """Take a token if there is one: 0. Else take none: the seconds until there is."""
        with self.lock:
            now = self.clock()
            elapsed = now - self.updated
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.rate = min(
                self.max_rate, self.rate + elapsed * self.max_rate / self.RECOVERY_SECONDS
            )
            self.updated = now
            if self.tokens >= 1 - 1e-9:  # float refill can land a hair below 1
                self.tokens = max(0.0, self.tokens - 1)
                self.acquired += 1
                return 0.0
            return (1 - self.tokens) / self.rate

    def observe(self, response: Any = None, **_: Any) -> None:
        """botocore's needs-retry event: note a throttled answer. Returns None, so boto3's own
        retry handler still decides whether to retry."""
        if not response:
            return
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code", "")
        if getattr(http, "status_code", 0) == 429 or code in THROTTLING_CODES:
            self.on_throttle()

    def on_throttle(self) -> None:
        with self.lock:
            self.throttled += 1
            now = self.clock()
            if now - self.last_cut >= 1.0:
                self.last_cut = now
                self.rate = max(min(self.MIN_RATE, self.max_rate / 2), self.rate / 2)
                self.lowest_rate = min(self.lowest_rate, self.rate)
                self.tokens = min(self.tokens, 0.0)  # no burst straight after a throttle


@dataclass
class AwsContext:
    """The clients of one run, plus the account facts looked up once."""

    lambda_client: Any
    sts_client: Any
    limiter: RateLimiter
    region: str
    _identity: dict[str, str] | None = field(default=None, repr=False)

    def identity(self) -> dict[str, str]:
        if self._identity is None:
            try:
                found = self.sts_client.get_caller_identity()
            except (ClientError, BotoCoreError) as exc:
                raise describe_error("the AWS account (sts:GetCallerIdentity)", exc) from None
            self._identity = {"account": found["Account"], "partition": found["Arn"].split(":")[1]}
        return self._identity


def default_region(profile: str | None = None) -> str | None:
    """The region boto3 would use for this profile (environment, then config); no API call."""
    try:
        return boto3.Session(profile_name=profile).region_name
    except BotoCoreError as exc:
        raise EsmError(f"AWS configuration: {exc}") from None


def connect(
    region: str | None = None,
    profile: str | None = None,
    max_rps: float = DEFAULT_MAX_RPS,
) -> AwsContext:
    """Clients from boto3's ordinary chain (profile, region, AWS_ENDPOINT_URL...)."""
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as exc:
        raise EsmError(f"AWS configuration: {exc}") from None
    if not session.region_name:
        raise EsmError("no AWS region: set region in the spec, pass --region, or set AWS_REGION")
    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_RETRIES},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    limiter = RateLimiter(max_rps)
    try:
        lambda_client = session.client("lambda", config=config)
        sts_client = session.client("sts", config=config)
    except (BotoCoreError, NoRegionError) as exc:
        raise EsmError(f"AWS configuration: {exc}") from None
    lambda_client.meta.events.register("before-send.lambda", limiter.acquire)
    lambda_client.meta.events.register("needs-retry.lambda", limiter.observe)
    guard_answers(lambda_client)
    guard_answers(sts_client)
    return AwsContext(lambda_client, sts_client, limiter, session.region_name)


# -- answers that are not from AWS ------------------------------------------------------------


class NotAnAwsAnswer(BotoCoreError):
    """An endpoint answered, but not as the AWS service does: a proxy, a captive portal, or an
    endpoint URL that points at something else. A BotoCoreError, so every caller that reports
    AWS failures reports this one too; botocore does not retry it."""

    fmt = (
        "the {service} endpoint {endpoint} answered {operation} with something that is not "
        "{article} {service} answer ({detail}); check {setting} and proxy settings"
    )


_SERVICE_WORDS = {"lambda": ("Lambda", "a"), "sts": ("STS", "an")}
# Set by before-parse on a 5xx that is not the service's, read (and removed) by after-call.
_FOREIGN_KEY = "EsmNotAnAwsAnswer"
_MAPPING_KEYS = ("UUID", "FunctionArn", "State")


def _mapping_problem(item: Any, keys: tuple[str, ...], where: str) -> str | None:
    if not isinstance(item, dict):
        return f"{where} that is not an object"
    for key in keys:
        value = item.get(key)
        if not isinstance(value, str) or not value:
            return f"{where} without {key}"
    return None


def answer_problem(operation: str, parsed: dict[str, Any]) -> str | None:
    """What a successful answer lacks that the service always sends and this program reads;
    None when nothing is missing. Operations not listed here are not checked."""
    if operation == "ListEventSourceMappings":
        items = parsed.get("EventSourceMappings")
        if not isinstance(items, list):
            return "no EventSourceMappings list"
        problems = (_mapping_problem(item, _MAPPING_KEYS, "a mapping") for item in items)
        return next((problem for problem in problems if problem), None)
    if operation == "GetEventSourceMapping":
        return _mapping_problem(parsed, _MAPPING_KEYS, "a mapping")
    if operation in (
        "CreateEventSourceMapping",
        "UpdateEventSourceMapping",
        "DeleteEventSourceMapping",
    ):
        return _mapping_problem(parsed, ("UUID",), "a mapping")
    if operation == "ListFunctions" and not isinstance(parsed.get("Functions"), list):
        return "no Functions list"
    if operation == "GetFunction" and not isinstance(parsed.get("Configuration"), dict):
        return "no Configuration"
    if operation == "GetCallerIdentity":
        arn = parsed.get("Arn")
        if not isinstance(parsed.get("Account"), str) or not parsed["Account"]:
            return "no Account"
        if not isinstance(arn, str) or len(arn.split(":")) < 3:
            return "no Arn"
    return None


_SHAPE_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "long": int,
    "boolean": bool,
    "float": (int, float),
    "double": (int, float),
    "timestamp": datetime,
    "blob": (bytes, bytearray),
    "list": list,
    "map": dict,
    "structure": dict,
}


def shape_problem(shape: Any, value: Any, path: str = "") -> str | None:
    """Where a parsed answer is not of its model's types (botocore passes JSON strings,
    booleans and nested values through as sent), or None. Only members the model knows are
    looked at; the answer's own depth is bounded by the model's."""
    if shape is None:
        return None
    kind = shape.type_name
    expected = _SHAPE_TYPES.get(kind)
    wrong_int = kind in ("integer", "long") and isinstance(value, bool)
    if (expected is not None and not isinstance(value, expected)) or wrong_int:
        return f"{path or 'the answer'} is a {type(value).__name__}, not a {kind}"
    if kind == "structure":
        inner = [
            (member, value[name], f"{path}.{name}" if path else name)
            for name, member in shape.members.items()
            if name in value
        ]
    elif kind == "list":
        inner = [(shape.member, item, f"{path}[{i}]") for i, item in enumerate(value)]
    elif kind == "map":
        inner = [(shape.value, item, f"{path}.{key}") for key, item in value.items()]
    else:
        return None
    for member, item, where in inner:
        found = shape_problem(member, item, where)
        if found:
            return found
    return None


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # "{namespace}Name" -> "Name"


def _header(headers: Any, name: str) -> str | None:
    return next((v for k, v in (headers or {}).items() if k.lower() == name), None)


class AnswerGuard:
    """botocore event handlers for one client that refuse answers its service would not send,
    naming the endpoint, before botocore's parser turns them into KeyErrors, a "0 mappings"
    page, or a ResponseParserError (which is not a BotoCoreError).

    The body is judged, not the Content-Type: moto server answers Lambda's JSON as text/html.
    """

    def __init__(self, service_id: str, endpoint: str, protocol: str) -> None:
        self.service_id, self.endpoint, self.protocol = service_id, endpoint, protocol
        self.name, self.article = _SERVICE_WORDS.get(service_id, (service_id, "a"))

    def refusal(self, operation: str, detail: str) -> NotAnAwsAnswer:
        return NotAnAwsAnswer(
            service=self.name,
            article=self.article,
            endpoint=self.endpoint,
            operation=operation,
            detail=detail,
            setting=f"AWS_ENDPOINT_URL_{self.service_id.upper().replace('-', '_')} / "
            "AWS_ENDPOINT_URL",
        )

    @staticmethod
    def detail(status: int, content_type: str | None, why: str) -> str:
        media = (content_type or "").split(";")[0].strip() or "no content type"
        return f"HTTP {status}, {media}, {why}"

    def body_problem(self, operation_model: Any, response: dict[str, Any]) -> str | None:
        """Why this raw answer cannot be the service's (before botocore parses it), or None."""
        status = response.get("status_code") or 0
        body = response.get("body") or b""
        if operation_model.has_streaming_output or not isinstance(body, bytes | bytearray):
            return None  # a stream (Invoke's payload) is the caller's to read
        if 300 <= status < 400:  # AWS APIs do not redirect; captive portals do
            location = _header(response.get("headers"), "location")
            return f"a redirect to {location}" if location else "a redirect"
        if not body.strip():
            # botocore reads an empty 5xx as a generic error; an empty query 4xx it cannot parse
            return "an empty error" if self.protocol == "query" and 400 <= status < 500 else None
        if self.protocol in ("rest-json", "json"):
            try:
                decoded = json.loads(body.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError too
                return "not JSON"
            return None if isinstance(decoded, dict) else "JSON that is not an object"
        if self.protocol == "query":
            try:
                root = ElementTree.fromstring(body)
            except ElementTree.ParseError:
                return "not XML"
            if status >= 300:
                found = any(_local_name(node.tag) == "Error" for node in root.iter())
                return None if found else "XML without Error"
            expected = f"{operation_model.name}Response"
            if _local_name(root.tag) != expected:
                return f"XML without {expected}"
            shape = operation_model.output_shape
            wrapper = shape.serialization.get("resultWrapper") if shape is not None else None
            if wrapper and not any(_local_name(child.tag) == wrapper for child in root):
                return f"XML without {wrapper}"
        return None

    def before_parse(
        self,
        operation_model: Any,
        response_dict: dict[str, Any],
        customized_response_dict: dict[str, Any],
        **_: Any,
    ) -> None:
        why = self.body_problem(operation_model, response_dict)
        if why is None:
            return
        status = response_dict.get("status_code") or 0
        detail = self.detail(status, _header(response_dict.get("headers"), "content-type"), why)
        if status >= 500:
            # Perhaps a proxy or load balancer in passing trouble: botocore reads an empty 5xx
            # as a generic error and retries it; if every attempt fails, after_call refuses.
            response_dict["body"] = b""
            customized_response_dict[_FOREIGN_KEY] = detail
            return
        raise self.refusal(operation_model.name, detail)

    def after_call(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        if not isinstance(parsed, dict):
            return
        detail = parsed.pop(_FOREIGN_KEY, None)
        status = getattr(http_response, "status_code", 0) or 0
        if detail is None and status < 300:
            why = answer_problem(model.name, parsed) or shape_problem(model.output_shape, parsed)
            if why is not None:
                content_type = _header(getattr(http_response, "headers", None), "content-type")
                detail = self.detail(status, content_type, why)
        if detail is not None:
            raise self.refusal(model.name, detail)

    def after_call_error(self, exception: Exception, event_name: str = "", **_: Any) -> None:
        """Whatever before_parse let through and botocore still could not parse."""
        # botocore's parsers raise plain ValueError/TypeError/AttributeError on JSON of the
        # wrong types ("BatchSize": "x", "Topics": 5, a bad timestamp).
        if isinstance(exception, ResponseParserError | ValueError | TypeError | AttributeError):
            operation = event_name.rsplit(".", 1)[-1]
            detail = f"an answer botocore cannot parse ({type(exception).__name__}: {exception})"
            raise self.refusal(operation, detail[:300]) from exception


def guard_answers(client: Any) -> None:
    """Make every call of this boto3 client refuse, in words naming the endpoint, an answer
    that its service would not send (HTML from a proxy, `{}`, a page without mappings...)."""
    model = client.meta.service_model
    service_id = model.service_id.hyphenize()
    protocol = getattr(model, "resolved_protocol", None) or model.protocol
    guard = AnswerGuard(service_id, client.meta.endpoint_url, protocol)
    events = client.meta.events
    events.register(f"before-parse.{service_id}", guard.before_parse)
    events.register(f"after-call.{service_id}", guard.after_call)
    events.register(f"after-call-error.{service_id}", guard.after_call_error)


def error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return type(exc).__name__


def describe_error(concerning: str, exc: Exception) -> AwsError:
    """An AWS failure in words, naming what it concerns."""
    if isinstance(exc, NoCredentialsError):
        return AwsError(
            concerning,
            "NoCredentials",
            "no AWS credentials found (set AWS_PROFILE or use --profile)",
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return AwsError(concerning, err.get("Code", "Error"), err.get("Message", str(exc)))
    return AwsError(concerning, type(exc).__name__, str(exc))
