"""Fixtures for the LocalStack tier (tests marked `localstack`).

These tests run only against a LocalStack that answers at LOCALSTACK_ENDPOINT (start one with
`../shared/tools/localstack start` and `eval "$(../shared/tools/localstack env)"`, or run
`.ci/localstack-tier`). Without one they are skipped; with LOCALSTACK_REQUIRED=1 (set by
`.ci/localstack-tier`) a missing or unhealthy LocalStack is a failure instead, so CI cannot go
green by skipping.

Every resource a session creates carries a per-run prefix, so runs against a long-lived
LocalStack do not collide, and is deleted at the end of the session.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "000000000000"  # LocalStack's default account for the "test" access key
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
SERVICES = ("lambda", "sqs", "iam", "sts")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "localstack: needs a running LocalStack at LOCALSTACK_ENDPOINT (skipped without one; "
        "see .ci/localstack-tier)",
    )


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("LOCALSTACK_REQUIRED") == "1":
        pytest.fail(f"LOCALSTACK_REQUIRED=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def localstack_endpoint() -> str:
    """LOCALSTACK_ENDPOINT, checked to answer /_localstack/health with the services we use."""
    url = os.environ.get("LOCALSTACK_ENDPOINT", "").rstrip("/")
    if not url:
        _unavailable(
            "LOCALSTACK_ENDPOINT is not set (run .ci/localstack-tier, or "
            '../shared/tools/localstack start && eval "$(../shared/tools/localstack env)")'
        )
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=5) as response:
            health = json.load(response)
    except (OSError, ValueError) as exc:
        _unavailable(f"LocalStack at {url} does not answer /_localstack/health: {exc}")
    services = health.get("services", {})
    missing = [s for s in SERVICES if services.get(s) not in ("available", "running")]
    if missing:
        _unavailable(f"LocalStack at {url} does not offer {', '.join(missing)}: {services}")
    return url


@pytest.fixture
def localstack_env(
    localstack_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """boto3's ordinary chain pointed at LocalStack: endpoint, fake credentials, region, and
    nothing from the machine (no AWS_*/ESM_* variables, no shared config). Returns the URL."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "ESM_")):
            monkeypatch.delenv(name)
    empty = tmp_path_factory.mktemp("aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", localstack_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return localstack_endpoint


def _handler_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


class LocalStackWorld:
    """Resources of one test session in LocalStack, created with plain boto3 (independent of
    the code under test), all named `<prefix>-...` and deleted by `cleanup()`."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.prefix = f"esm-it-{uuid.uuid4().hex[:8]}"
        self.lam = self.client("lambda")
        self.sqs = self.client("sqs")
        self.iam = self.client("iam")
        self.functions: dict[str, str] = {}  # name -> ARN
        self.queue_urls: list[str] = []
        self._role_arn: str | None = None

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint, **CREDENTIALS)

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    @property
    def role_arn(self) -> str:
        if self._role_arn is None:
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
            self._role_arn = self.iam.create_role(
                RoleName=self.name("role"), AssumeRolePolicyDocument=json.dumps(trust)
            )["Role"]["Arn"]
        return self._role_arn

    def create_functions(self, *shorts: str, timeout: float = 60) -> list[str]:
        """Create python3.12 functions and wait until each has left Pending; returns their ARNs.

        LocalStack without Docker cannot prepare a runtime, so a function may end Failed
        ("Error while creating lambda: ...") rather than Active. Event source mappings do not
        need it to run (nothing here sends messages), and LocalStack accepts mappings on it, so
        Failed is accepted; Pending past the timeout is not.
        """
        names = [self.name(s) for s in shorts]
        for name in names:
            self.functions[name] = self.lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=self.role_arn,
                Handler="handler.handler",
                Code={"ZipFile": _handler_zip()},
            )["FunctionArn"]
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                state = self.lam.get_function(FunctionName=name)["Configuration"].get("State")
                if state in ("Active", "Failed"):
                    break
                assert time.monotonic() < deadline, f"function {name} still {state}"
                time.sleep(0.5)
        return [self.functions[n] for n in names]

    def create_queues(self, *shorts: str) -> list[str]:
        """Standard SQS queues; returns their ARNs."""
        arns = []
        for short in shorts:
            url = self.sqs.create_queue(QueueName=self.name(short))["QueueUrl"]
            self.queue_urls.append(url)
            arns.append(
                self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
            )
        return arns

    def mappings(self, function_arn: str) -> list[dict[str, Any]]:
        """Every listed mapping of exactly this function ARN (all pages; LocalStack's FunctionName
        filter matches substrings, so the match is redone here)."""
        paginator = self.lam.get_paginator("list_event_source_mappings")
        return [
            m
            for page in paginator.paginate(FunctionName=function_arn)
            for m in page["EventSourceMappings"]
            if m["FunctionArn"] == function_arn
        ]

    def get(self, uuid_: str) -> dict[str, Any]:
        return self.lam.get_event_source_mapping(UUID=uuid_)

    def cleanup(self) -> None:
        """Best effort: a leftover here must not fail the run. (Deleting a Failed function
        answers 500 "Unable to find version manager" in LocalStack, yet deletes it.)"""
        for arn in self.functions.values():
            with contextlib.suppress(ClientError):
                for mapping in self.mappings(arn):
                    with contextlib.suppress(ClientError):  # LocalStack lists some deleted ones
                        self.lam.delete_event_source_mapping(UUID=mapping["UUID"])
        for name in self.functions:
            with contextlib.suppress(ClientError):
                self.lam.delete_function(FunctionName=name)
        for url in self.queue_urls:
            with contextlib.suppress(ClientError):
                self.sqs.delete_queue(QueueUrl=url)
        if self._role_arn is not None:
            with contextlib.suppress(ClientError):
                self.iam.delete_role(RoleName=self.name("role"))


@pytest.fixture(scope="session")
def localstack_world(localstack_endpoint: str) -> Iterator[LocalStackWorld]:
    world = LocalStackWorld(localstack_endpoint)
    try:
        yield world
    finally:
        world.cleanup()


@pytest.fixture
def spec_file(tmp_path: Path) -> Callable[..., Path]:
    """spec_file({"fn": [{...}]}, name=...) → a version-1 spec for LocalStack's account/region."""

    def write(functions: dict[str, list[dict[str, Any]]], name: str = "spec.yaml") -> Path:
        document = {"version": 1, "region": REGION, "account_id": ACCOUNT, "functions": functions}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    return write
