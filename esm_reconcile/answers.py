"""Answers that are not AWS's: a proxy or captive portal (HTML, redirects), a wrong
AWS_ENDPOINT_URL, JSON of the wrong shape. botocore event handlers on each client refuse them,
naming the endpoint and the operation, before botocore's parser turns them into KeyErrors, a
"0 mappings" page, or a ResponseParserError (which is not a BotoCoreError)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from botocore.exceptions import BotoCoreError
from botocore.parsers import ResponseParserError


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
