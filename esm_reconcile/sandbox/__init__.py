"""A local AWS to try specs against: an embedded moto server, seeded with what the specs name.

The server runs in this process, listens on 127.0.0.1 only, and lives exactly as long as the
``sandbox()`` context. Inside the context the environment points every boto3 client this
process creates at it, so the rest of the package needs no sandbox special cases.

Requests pass, outermost first: the caller's middleware, the request/response logs, Lambda's
quota and latency (control_plane), AWS-like mapping answers (fidelity), moto's List answers
kept while nothing changes (moto_adapter.ListedMappings), moto (moto_adapter).

moto hosts mappings for SQS, Kinesis streams and DynamoDB only; the AWS-like layer hosts the
other kinds itself (MSK, self-managed Kafka, MQ, DocumentDB, Kinesis consumers: hosted.py),
answering with the sandbox's own record of AWS's per-kind answers (aws_answers.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from . import moto_adapter
from .control_plane import LambdaControlPlane, RequestLog
from .environment import fresh_default_session, sandbox_environ
from .fidelity import AwsLikeMappings, MappingIdentity
from .moto_adapter import create_mappings_in_backend
from .references import choose_account, function_ref
from .seeding import Seeder
from .wsgi import (
    MAPPINGS_PATH,
    Answer,
    WSGIApp,
    call_app,
    in_use_error,
    is_lambda_request,
    lambda_error,
    read_body,
)

__all__ = [
    "MAPPINGS_PATH",
    "Answer",
    "MappingIdentity",
    "WSGIApp",
    "call_app",
    "choose_account",
    "create_mappings_in_backend",
    "in_use_error",
    "is_lambda_request",
    "lambda_error",
    "read_body",
    "sandbox",
    "sandbox_environ",
]


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
    moto_adapter.require_moto()
    # Parse and check everything before starting anything, so bad input needs no cleanup.
    raw_refs = list(dict.fromkeys(function_refs))
    refs = [function_ref(ref, region) for ref in raw_refs]
    raw_arns = list(dict.fromkeys(source_arns))
    account = choose_account(account_id, raw_refs, raw_arns)

    controls: list[LambdaControlPlane] = []

    def wrap(moto_app: WSGIApp) -> WSGIApp:
        listed = moto_adapter.ListedMappings(moto_app, region)
        mappings = AwsLikeMappings(listed, account=account, region=region, settle_s=settle_s)
        control = LambdaControlPlane(
            mappings, region=region, quota_rps=quota_rps, latency_s=latency_s
        )
        controls.append(control)
        logged = RequestLog(control, request_log, response_log)
        return middleware(logged) if middleware is not None else logged

    with (
        moto_adapter.serving(wrap) as url,
        sandbox_environ(url, region, account),
        fresh_default_session(),
    ):
        Seeder(url, account, region).seed(refs, raw_arns)
        for control in controls:
            control.armed = True  # quota and latency only after seeding
        yield url
