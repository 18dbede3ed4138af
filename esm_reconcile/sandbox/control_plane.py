"""Lambda's control-plane quota and latency, and the server's request/response logs.

Both are WSGI layers between the caller's middleware and the AWS-like mappings; see
`sandbox()` for the order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from esm_reconcile.aws import RateLimiter

from .wsgi import WSGIApp, call_app, lambda_error, lambda_region, read_body


@dataclass(eq=False)
class LambdaControlPlane:
    """Lambda's request quota and latency, for Lambda requests only (not STS, SQS, ...).

    The quota is per account and region, as AWS's is: one token bucket per region (the
    sandbox hosts one account). A request without a token gets what Lambda answers when the
    control-plane rate is exceeded: 429 TooManyRequestsException, which botocore retries as
    throttling. Off until `armed`, so seeding the sandbox is neither throttled nor slowed.
    """

    app: WSGIApp
    _: KW_ONLY
    region: str  # for unsigned requests, which name none
    quota_rps: float | None = None
    latency_s: float = 0.0
    armed: bool = False
    # A RateLimiter per region that is only asked, never waited on: no token means a 429.
    _buckets: dict[str, RateLimiter] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        region = lambda_region(environ, self.region) if self.armed else None
        if region is None:
            return self.app(environ, start_response)
        allowed = self._take(region)
        if self.latency_s:
            time.sleep(self.latency_s)
        if allowed:
            return self.app(environ, start_response)
        read_body(environ)  # drain it: the connection is kept alive for the next request
        throttled = lambda_error(
            429, "TooManyRequestsException", "Rate exceeded", Reason="CallerRateLimitExceeded"
        )
        return throttled.send(start_response)

    def _take(self, region: str) -> bool:
        if self.quota_rps is None:
            return True
        with self._lock:
            bucket = self._buckets.setdefault(region, RateLimiter(self.quota_rps))
        return bucket.try_acquire() == 0


@dataclass(eq=False)
class RequestLog:
    """Appends every request to `request_log` as it arrives: (method, path), and to
    `response_log` as it is answered: (time.monotonic(), method, path, HTTP status)."""

    app: WSGIApp
    request_log: list[tuple[str, str]] | None = None
    response_log: list[tuple[float, str, str, int]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if self.request_log is not None:
            self.request_log.append((method, path))  # list.append is atomic: no lock needed
        if self.response_log is None:
            return self.app(environ, start_response)
        answer = call_app(self.app, environ)
        self.response_log.append((time.monotonic(), method, path, answer.code))
        return answer.send(start_response)
