"""WSGI plumbing for the layers in front of moto: call an app and keep its answer, answer
errors as Lambda does, read a request body without consuming it, tell Lambda requests apart.

Nothing here knows moto; the fault injector in the tests uses the same helpers.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
"""A WSGI application; `sandbox(middleware=...)` takes a function that wraps one."""

MAPPINGS_PATH = "/2015-03-31/event-source-mappings"

# The API versions in Lambda's request paths (botocore's lambda model). Only unsigned requests
# are told apart by path: a signed one names its service in the credential scope, and other
# services use dated paths too (Route 53, CloudFront).
_LAMBDA_PATH = re.compile(
    r"^/(?:2014-11-13|2015-03-31|2016-08-19|2017-03-31|2017-10-31|2018-10-31|2019-09-25"
    r"|2019-09-30|2020-04-22|2020-06-30|2021-07-20|2021-10-31|2021-11-15|2024-08-31"
    r"|2025-11-30|2025-12-01)/"
)
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/([^/]+)/([^/]+)/aws4_request")


def lambda_region(environ: dict[str, Any], default_region: str) -> str | None:
    """The region of a Lambda request, None for a request to any other service.

    An unsigned request names no region: it gets `default_region`.
    """
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is not None:
        return scope[1] if scope[2] == "lambda" else None
    return default_region if _LAMBDA_PATH.match(environ.get("PATH_INFO", "")) else None


def is_lambda_request(environ: dict[str, Any]) -> bool:
    return lambda_region(environ, default_region="") is not None


@dataclass
class Answer:
    """A buffered WSGI response, so a layer can read and rewrite it before sending it on."""

    status: str  # the status line, e.g. "200 OK"
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

    def with_data(self, data: Any, code: int | None = None) -> Answer:
        """The same answer with another JSON body (and, if given, another status)."""
        body = json.dumps(data).encode()
        headers = [(k, v) for k, v in self.headers if k.lower() != "content-length"]
        status = self.status if code is None else status_line(code)
        return Answer(status, [*headers, ("Content-Length", str(len(body)))], body)

    def send(self, start_response: Callable[..., Any]) -> list[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


def status_line(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def call_app(app: WSGIApp, environ: dict[str, Any]) -> Answer:
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
    return Answer(captured["status"], captured["headers"], b"".join(written) + body)


def lambda_error(
    code: int,
    error_type: str,
    message: str,
    *,
    fault: str = "User",
    message_key: str = "message",
    **extra: str,
) -> Answer:
    """An error as Lambda sends it: the code in x-amzn-ErrorType, Type and message in the body.

    `fault` is Lambda's Type (`User`, or `Service` for its own failures); `message_key` is the
    model's spelling (`message` or `Message`; botocore reads both).
    """
    body = json.dumps({"Type": fault, message_key: message, **extra}).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", error_type),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    return Answer(status_line(code), headers, body)


_IN_USE = "Cannot {verb} the event source mapping because it is in use."


def in_use_error(verb: str, *, message_key: str = "message") -> Answer:
    """What Lambda answers an Update or Delete (`verb`) of a mapping that is changing."""
    return lambda_error(
        400, "ResourceInUseException", _IN_USE.format(verb=verb), message_key=message_key
    )


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so the next layer can read it again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


def bodyless_copy(
    environ: dict[str, Any], method: str, path: str | None = None, query: str = ""
) -> dict[str, Any]:
    """A copy of a request with another method and no body, for a layer's own calls behind it.

    werkzeug's per-request objects are left out: the copy may run after the request ended.
    """
    copy = {k: v for k, v in environ.items() if not k.startswith("werkzeug.")}
    copy.update(REQUEST_METHOD=method, CONTENT_LENGTH="0", QUERY_STRING=query)
    if path is not None:
        copy.update(PATH_INFO=path, RAW_URI=path, REQUEST_URI=path)
    copy.pop("CONTENT_TYPE", None)
    copy["wsgi.input"] = io.BytesIO(b"")
    return copy
