"""Planning many regions: no scope waits for the slowest scope's account before it reads, errors
come as they would scope by scope, and the sandbox answers a List page at about the page's cost
(benchmarks/regions_plan.py measures the wall times)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from esm_reconcile import app
from esm_reconcile import aws as aws_module
from esm_reconcile.aws import AwsContext
from esm_reconcile.errors import EsmError
from esm_reconcile.live import LiveReader
from esm_reconcile.ownership import Scope
from esm_reconcile.planning import plan_scopes
from esm_reconcile.sandbox import create_mappings_in_backend, sandbox
from esm_reconcile.sandbox.moto_adapter import ListedMappings
from esm_reconcile.validate import load_spec
from tests.conftest import seed

ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")
WAIT_S = 10  # a scope that waits this long for another is stuck behind it


def write(path: Path, functions: dict[str, Any], **top: Any) -> Path:
    path.write_text(json.dumps({"version": 1, **top, "functions": functions}), encoding="utf-8")
    return path


@pytest.fixture
def regions(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Scope]:
    """Three regions, each with `orders` and one queue mapped in its spec file; their scopes."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    for region in REGIONS:
        queue = seed(functions=["orders"], queues=["q"], endpoint_url=moto_server, region=region)
        write(
            tmp_path / f"{region}.yaml",
            {"orders": [{"event_source_arn": queue.queues["q"]}]},
            region=region,
        )
    return app.scopes(app.load([tmp_path]), app.Settings())


@pytest.fixture
def first_read(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set when any scope begins reading its mappings."""
    event = threading.Event()
    real = LiveReader.mappings

    def mappings(self: LiveReader, function_arns: set[str] | None, **options: Any) -> Any:
        event.set()
        return real(self, function_arns, **options)

    monkeypatch.setattr(LiveReader, "mappings", mappings)
    return event


def connect(scope: Scope, identity: Callable[[], dict[str, str]] | None = None) -> AwsContext:
    """The scope's clients; `identity` (given the real lookup) stands in for its STS call."""
    context = aws_module.connect(region=scope.region, max_rps=100)
    if identity is not None:
        real = context.identity
        context.identity = lambda: identity(real)  # type: ignore[method-assign]
    return context


def test_no_scope_waits_for_the_others_accounts_before_reading(
    regions: list[Scope], first_read: threading.Event
) -> None:
    """The one-owner check needs every account, but reading does not wait for it: a region
    whose STS answers slowly holds back only itself."""

    def slow(real: Callable[[], dict[str, str]]) -> dict[str, str]:
        assert first_read.wait(WAIT_S), "every scope waited for the slowest identity"
        return real()

    contexts = [connect(regions[0])] + [connect(s, slow) for s in regions[1:]]
    planned = plan_scopes(regions, contexts)
    assert [p.aws.region for p in planned] == [s.region for s in regions]
    assert [p.plan.summary()["create"] for p in planned] == [1, 1, 1]


def test_errors_come_in_scope_order_identity_then_owner_then_plan(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two files in one region that both manage `orders`, the second also mapping a function
    that does not exist: the conflict is the error, however the threads ran, unless a scope
    could not say who it is."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    queue = seed(functions=["orders"], queues=["q"], endpoint_url=moto_server).queues["q"]
    a = load_spec([write(tmp_path / "a.yaml", {"orders": []}, region="us-east-1")])
    b = load_spec(
        [
            write(
                tmp_path / "b.yaml",
                {"orders": [], "missing": [{"event_source_arn": queue}]},
                region="us-east-1",
            )
        ]
    )
    scopes = [Scope("us-east-1", None, a), Scope("us-east-1", None, b)]
    with pytest.raises(EsmError, match="function does not exist"):
        plan_scopes(scopes[1:], [connect(scopes[1])])
    with pytest.raises(EsmError, match="is managed as orders in .*a.yaml.*one file must own it"):
        plan_scopes(scopes, [connect(s) for s in scopes])

    def no_credentials(_real: Callable[[], dict[str, str]]) -> dict[str, str]:
        raise EsmError("no AWS credentials found")

    with pytest.raises(EsmError, match="no AWS credentials"):
        plan_scopes(scopes, [connect(scopes[0]), connect(scopes[1], no_credentials)])


# -- the sandbox: a List page costs about a page ------------------------------------------------


class CountingApp:
    """A WSGI app that answers every request with a body naming how often it was called."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.calls += 1
        body = json.dumps({"EventSourceMappings": [], "call": self.calls}).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]


def request(
    wsgi_app: Any, method: str, path: str, query: str = "", region: str = "us-east-1"
) -> Any:
    auth = f"AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/lambda/aws4_request"
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_AUTHORIZATION": auth,
        "CONTENT_LENGTH": "0",
        "wsgi.input": io.BytesIO(b""),
    }
    chunks: Iterator[bytes] = wsgi_app(environ, lambda status, headers, exc_info=None: None)
    return json.loads(b"".join(chunks))["call"]


def test_list_answers_are_kept_until_something_changes() -> None:
    moto = CountingApp()
    listed = ListedMappings(moto, "us-east-1")
    path = "/2015-03-31/event-source-mappings/"
    pages = [request(listed, "GET", path, f"MaxItems=100&Marker={n * 100}") for n in range(5)]
    assert pages == [1] * 5  # moto answered once: it ignores Marker and MaxItems anyway
    assert request(listed, "GET", path, "EventSourceArn=arn:aws:sqs:x") == 2  # another filter
    assert request(listed, "GET", path, region="eu-west-1") == 3  # another region
    assert request(listed, "GET", path) == 1
    assert request(listed, "GET", "/2015-03-31/functions/") == 4  # other reads pass through
    assert request(listed, "POST", path) == 5  # a change...
    assert request(listed, "GET", path) == 6  # ...drops what was kept
    assert request(listed, "PUT", "/2017-03-31/tags/arn") == 7  # any change does
    assert request(listed, "GET", path) == 8
    assert request(listed, "GET", path) == 8
    create_mappings_in_backend(ACCOUNT, "us-east-1", [])  # moto changed behind the server
    assert request(listed, "GET", path) == 9


def test_the_sandbox_lists_what_changed_since_the_last_page() -> None:
    queues = [f"arn:aws:sqs:us-east-1:{ACCOUNT}:kept-q{i}" for i in range(4)]
    with sandbox(["kept"], queues, "us-east-1"):
        lam = boto3.client("lambda")

        def listed() -> dict[str, int]:
            pages = lam.get_paginator("list_event_source_mappings").paginate()
            return {
                m["EventSourceArn"]: m["BatchSize"] for p in pages for m in p["EventSourceMappings"]
            }

        made = lam.create_event_source_mapping(FunctionName="kept", EventSourceArn=queues[0])
        assert listed() == {queues[0]: 10}
        create_mappings_in_backend(
            ACCOUNT, "us-east-1", [{"FunctionName": "kept", "EventSourceArn": queues[1]}]
        )
        assert listed() == {queues[0]: 10, queues[1]: 10}
        lam.update_event_source_mapping(UUID=made["UUID"], BatchSize=7)
        assert listed() == {queues[0]: 7, queues[1]: 10}
        lam.delete_event_source_mapping(UUID=made["UUID"])
        assert listed() == {queues[1]: 10}
