"""Shared fixtures: a fake AWS environment, moto in-process and as a server, and seeding.

`seed(...)` creates the functions and event sources a test's spec names, either inside
`mock_aws` (no endpoint_url) or on the moto server (endpoint_url=the server's URL), and returns
their ARNs. DynamoDB stream ARNs carry a label moto generates, so specs must be written from
`Seeded.tables`, never from a hand-typed ARN.
"""

from __future__ import annotations

import functools
import io
import socket
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
REPO_ROOT = Path(__file__).resolve().parent.parent

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Anything that could point boto3 at a real account, a real config, or another endpoint.
SCRUBBED_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake credentials and region; no profile, no shared config, no endpoint override."""
    for name in SCRUBBED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    empty = tmp_path_factory.mktemp("aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))


@pytest.fixture
def moto_aws(aws_env: None) -> Iterator[None]:
    """In-process moto: every boto3 call inside the test goes to fresh moto backends."""
    from moto import mock_aws

    with mock_aws():
        yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    """One moto server for the session (stopped at the end); use `moto_server` in tests."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_server(moto_server_url: str, aws_env: None) -> str:
    """The session's moto server, reset to empty for this test. Yields its URL."""
    request = urllib.request.Request(f"{moto_server_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return moto_server_url


# -- seeding --------------------------------------------------------------------------------


@dataclass
class Seeded:
    role_arn: str = ""
    functions: dict[str, str] = field(default_factory=dict)  # "name[:qualifier]" -> its ARN
    queues: dict[str, str] = field(default_factory=dict)  # queue name (with .fifo) -> ARN
    streams: dict[str, str] = field(default_factory=dict)  # Kinesis stream name -> ARN
    tables: dict[str, str] = field(default_factory=dict)  # DynamoDB table -> LatestStreamArn


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


@functools.cache
def client(service: str, endpoint_url: str | None = None, region: str = REGION) -> Any:
    """A plain boto3 client for the in-process mock (no endpoint) or the moto server.

    Made once and kept: making one loads its service model, which is most of what seeding
    would cost (mock_aws starts every test on a new default session). moto intercepts a kept
    client as it does a new one, and its credentials are the fake ones of the first test."""
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url)


def seed(
    *,
    functions: Iterable[str] = (),
    queues: Iterable[str] = (),
    fifo_queues: Iterable[str] = (),
    streams: Iterable[str] = (),
    tables: Iterable[str] = (),
    endpoint_url: str | None = None,
    region: str = REGION,
) -> Seeded:
    """Create an IAM role, functions (`name`, or `name:qualifier` with a published version and,
    for a non-numeric qualifier, an alias on it), SQS queues, FIFO queues, Kinesis streams and
    DynamoDB tables with streams enabled, in `region`."""
    out = Seeded()
    iam = client("iam", endpoint_url, region)
    try:
        out.role_arn = iam.get_role(RoleName="esm-test-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        out.role_arn = iam.create_role(
            RoleName="esm-test-role",
            AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
        )["Role"]["Arn"]

    lam = client("lambda", endpoint_url, region)
    created: set[str] = set()
    for ref in functions:
        name, _, qualifier = ref.partition(":")
        if name not in created:
            arn = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=out.role_arn,
                Handler="handler.handler",
                Code={"ZipFile": _zip()},
            )["FunctionArn"]
            created.add(name)
            out.functions[name] = arn
        base = out.functions[name].split(":function:")[0] + f":function:{name}"
        if qualifier and qualifier != "$LATEST":
            version = qualifier
            if not qualifier.isdigit():
                version = lam.publish_version(FunctionName=name)["Version"]
                lam.create_alias(FunctionName=name, Name=qualifier, FunctionVersion=version)
            else:
                while int(lam.publish_version(FunctionName=name)["Version"]) < int(qualifier):
                    pass
        if qualifier:
            out.functions[ref] = f"{base}:{qualifier}"

    sqs = client("sqs", endpoint_url, region)
    for name, attributes in [(q, {}) for q in queues] + [
        (q if q.endswith(".fifo") else q + ".fifo", {"FifoQueue": "true"}) for q in fifo_queues
    ]:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        out.queues[name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    kinesis = client("kinesis", endpoint_url, region)
    for name in streams:
        kinesis.create_stream(StreamName=name, ShardCount=1)
        out.streams[name] = kinesis.describe_stream_summary(StreamName=name)[
            "StreamDescriptionSummary"
        ]["StreamARN"]

    dynamodb = client("dynamodb", endpoint_url, region)
    for name in tables:
        table = dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        out.tables[name] = table["TableDescription"]["LatestStreamArn"]
    return out


@pytest.fixture(name="seed")
def _seed_fixture() -> Callable[..., Seeded]:
    """The `seed` helper; pass endpoint_url=moto_server for the server."""
    return seed


def list_mappings(endpoint_url: str | None = None, function: str | None = None) -> list[dict]:
    """Every live mapping (moto does not paginate), optionally only one function's (by ARN)."""
    items = client("lambda", endpoint_url).list_event_source_mappings()["EventSourceMappings"]
    return [m for m in items if function is None or m["FunctionArn"] == function]


@pytest.fixture(name="list_mappings")
def _list_mappings_fixture() -> Callable[..., list[dict]]:
    """The `list_mappings` helper: plain boto3 read-back, independent of the code under test."""
    return list_mappings


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """write_spec({"f": [{...}]}, name="spec.yaml", **top) → path of a version-1 spec file."""

    def write(functions: dict[str, list[dict]], name: str = "spec.yaml", **top: Any) -> Path:
        document = {"version": 1, **top, "functions": functions}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    return write
