"""The sandbox: an embedded moto server, seeded, that plain boto3 clients reach via the env."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit

import boto3
import pytest

from esm_reconcile.errors import EsmError
from esm_reconcile.sandbox import sandbox

pytest.importorskip("moto.server")

REGION = "us-east-1"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"

QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-queue"
FIFO_QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-queue.fifo"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
TABLE_STREAM = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/audit/stream/2024-01-01T00:00:00.000"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:failures"
REFS = ["orders", "clicks:live", "clicks", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:audit:3"]


def test_seeded_sandbox_hosts_mappings_for_plain_boto3_clients() -> None:
    sources = [
        QUEUE,
        FIFO_QUEUE,
        STREAM,
        TABLE_STREAM,
        TOPIC,
        # moto cannot host these; the sandbox skips them instead of failing.
        f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/c/0123-abcd",
        f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/views/consumer/app:1700000000",
    ]
    with sandbox(REFS, sources, REGION) as url:
        assert urlsplit(url).hostname == "127.0.0.1"
        # No endpoint_url: the clients must find the sandbox through AWS_ENDPOINT_URL.
        lam = boto3.client("lambda")
        mappings = {
            QUEUE: "orders",
            FIFO_QUEUE: "orders",
            STREAM: "clicks:live",
            TABLE_STREAM: "audit:3",
        }
        for source, function in mappings.items():
            extra = {} if source.startswith("arn:aws:sqs") else {"StartingPosition": "LATEST"}
            lam.create_event_source_mapping(EventSourceArn=source, FunctionName=function, **extra)

        listed = lam.list_event_source_mappings()["EventSourceMappings"]
        assert {m["EventSourceArn"] for m in listed} == set(mappings)

        aliases = lam.list_aliases(FunctionName="clicks")["Aliases"]
        assert [a["Name"] for a in aliases] == ["live"]
        versions = lam.list_versions_by_function(FunctionName="audit")["Versions"]
        assert "3" in {v["Version"] for v in versions}
        assert lam.get_function(FunctionName="orders")["Configuration"]["Runtime"] == "python3.12"

        attrs = boto3.client("sqs").get_queue_attributes(
            QueueUrl=boto3.client("sqs").get_queue_url(QueueName="orders-queue.fifo")["QueueUrl"],
            AttributeNames=["FifoQueue"],
        )["Attributes"]
        assert attrs["FifoQueue"] == "true"
        topics = boto3.client("sns").list_topics()["Topics"]
        assert [t["TopicArn"] for t in topics] == [TOPIC]
        assert sorted(boto3.client("kinesis").list_streams()["StreamNames"]) == ["clicks", "views"]
        assert boto3.client("sts").get_caller_identity()["Account"] == ACCOUNT


def test_account_id_is_the_account_of_sts_and_seeded_resources() -> None:
    with sandbox(["orders"], [f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:q"], REGION, OTHER_ACCOUNT):
        assert boto3.client("sts").get_caller_identity()["Account"] == OTHER_ACCOUNT
        sqs = boto3.client("sqs")
        arn = sqs.get_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName="q")["QueueUrl"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        assert arn == f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:q"
        function_arn = boto3.client("lambda").get_function(FunctionName="orders")["Configuration"][
            "FunctionArn"
        ]
        assert function_arn == f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:orders"


def test_account_is_taken_from_the_arns_when_not_given() -> None:
    table_stream = (
        f"arn:aws:dynamodb:eu-west-1:{OTHER_ACCOUNT}:table/t/stream/2024-05-05T10:00:00.000"
    )
    with sandbox([f"{OTHER_ACCOUNT}:function:f"], [table_stream], "eu-west-1"):
        assert boto3.client("sts").get_caller_identity()["Account"] == OTHER_ACCOUNT
        boto3.client("lambda").create_event_source_mapping(
            EventSourceArn=table_stream, FunctionName="f", StartingPosition="LATEST"
        )


def test_more_than_one_account_is_refused() -> None:
    with (
        pytest.raises(EsmError, match="single account"),
        sandbox(["orders"], [QUEUE, f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:q"], REGION),
    ):
        pass
    with (
        pytest.raises(EsmError, match="single account"),
        sandbox([], [QUEUE], REGION, OTHER_ACCOUNT),
    ):
        pass


def test_environment_restored_and_server_stopped_on_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "real-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "https://sqs.example.com")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    before = dict(os.environ)

    with pytest.raises(RuntimeError), sandbox([], [], "eu-central-1") as url:
        assert os.environ["AWS_ENDPOINT_URL"] == url
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
        assert os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"
        assert os.environ["AWS_DEFAULT_REGION"] == os.environ["AWS_REGION"] == "eu-central-1"
        for gone in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_SQS"):
            assert gone not in os.environ
        boto3.client("sqs").create_queue(QueueName="inside")
        raise RuntimeError("the body failed")

    assert dict(os.environ) == before
    address = urlsplit(url)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address.hostname, address.port), timeout=2).close()


def test_missing_moto_is_an_esm_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)  # makes the import raise ImportError
    with pytest.raises(EsmError, match="pip install"), sandbox([], [], REGION):
        pass


def test_unreadable_function_ref_is_an_esm_error() -> None:
    with pytest.raises(EsmError, match="which function"), sandbox(["a:b:c:d"], [], REGION):
        pass


def test_sandbox_pages_list_like_aws() -> None:
    """moto returns every mapping at once; the sandbox pages by <=100 with NextMarker like AWS."""
    queues = [f"arn:aws:sqs:us-east-1:123456789012:page-q{i}" for i in range(5)]
    log: list[tuple[str, str]] = []
    with sandbox(["pager"], queues, "us-east-1", request_log=log):
        client = boto3.client("lambda")
        for arn in queues:
            client.create_event_source_mapping(FunctionName="pager", EventSourceArn=arn)
        first = client.list_event_source_mappings(MaxItems=2)
        assert len(first["EventSourceMappings"]) == 2 and first["NextMarker"]
        log.clear()
        pages = list(
            client.get_paginator("list_event_source_mappings").paginate(
                PaginationConfig={"PageSize": 2}
            )
        )
        assert [len(p["EventSourceMappings"]) for p in pages] == [2, 2, 1]
        assert {m["EventSourceArn"] for p in pages for m in p["EventSourceMappings"]} == set(queues)
        assert len(log) == 3
