"""Amazon MSK, self-managed Kafka, Amazon MQ (ActiveMQ, RabbitMQ) and DocumentDB, end to end
without AWS: moto hosts none of them, so validation runs through `load_spec`, planning through the
pure `diff` against read-backs shaped like AWS's (reference A.4), and apply through botocore's
Stubber with a fake clock (reference B's state machine).

Reference sections: A.1 (kinds), A.2-A.3 (shapes, applicability), A.4 (read-back defaults),
A.5 (cross-field rules), A.8 (pollers, metrics), A.9 (create-only), B (states, identity).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from esm_reconcile.apply import ApplyResult
from esm_reconcile.diff import diff
from esm_reconcile.errors import SpecErrors
from esm_reconcile.model import LiveMapping, ManagedFunction, parse_function_ref
from esm_reconcile.plan import Change, FieldChange, Plan
from esm_reconcile.validate import load_spec
from tests.aws_shapes import (
    ACCOUNT,
    FN,
    QUEUE,
    REGION,
    ApplyHarness,
    U,
    documentdb_readback,
    esm_arn,
    live_mapping,
    mq_readback,
    msk_readback,
    self_managed_kafka_readback,
    stubbed_lambda,
)

FUNCTION = "orders-handler"  # FN's name
MSK = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/orders/7c9e6679-7425-40de-944b-e07fc1f90ae7-2"
BROKERS = ["b-1.kafka.example.com:9096", "b-2.kafka.example.com:9096", "b-3.kafka.example.com:9096"]
ACTIVEMQ = f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:orders-amq:b-9b5e0f1c-3d2a-4e6f-8a7b-1c2d3e4f5a6b"
RABBITMQ = f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:orders-rmq:b-4f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8"
DOCDB = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:orders-docdb"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/orders"
DDB = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/stream/2025-01-01T00:00:00.000"
DLQ = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-dlq"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:orders-reader-Ab12Cd"
SECRET2 = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:orders-reader-rotated-Ef34Gh"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}:registry/orders"
GLUE2 = f"arn:aws:glue:{REGION}:{ACCOUNT}:registry/orders-v2"
UUID = U("live-1")


def basic(uri: str = SECRET) -> dict[str, str]:
    return {"type": "BASIC_AUTH", "uri": uri}


def vhost(uri: str = "/production") -> dict[str, str]:
    return {"type": "VIRTUAL_HOST", "uri": uri}


# -- specs (spec form) ----------------------------------------------------------------------------


def msk(**extra: Any) -> dict[str, Any]:
    return {"event_source_arn": MSK, "topics": ["orders"], "starting_position": "LATEST", **extra}


def smk(**extra: Any) -> dict[str, Any]:
    return {
        # written in another order than AWS returns them: brokers are a set
        "self_managed_event_source": {
            "endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [BROKERS[1], BROKERS[2], BROKERS[0]]}
        },
        "topics": ["orders"],
        "source_access_configurations": [{"type": "SASL_SCRAM_512_AUTH", "uri": SECRET}],
        **extra,
    }


def activemq(**extra: Any) -> dict[str, Any]:
    return {
        "event_source_arn": ACTIVEMQ,
        "queues": ["orders"],
        "source_access_configurations": [basic()],
        **extra,
    }


def rabbitmq(**extra: Any) -> dict[str, Any]:
    return {
        "event_source_arn": RABBITMQ,
        "queues": ["orders"],
        "source_access_configurations": [basic(), vhost()],
        **extra,
    }


def docdb(**extra: Any) -> dict[str, Any]:
    return {
        "event_source_arn": DOCDB,
        "starting_position": "LATEST",
        "document_db_event_source_config": {"database_name": "shop", "collection_name": "orders"},
        "source_access_configurations": [basic()],
        **extra,
    }


SPECS: dict[str, Callable[..., dict[str, Any]]] = {
    "msk": msk,
    "self-managed-kafka": smk,
    "activemq": activemq,
    "rabbitmq": rabbitmq,
    "documentdb": docdb,
}
KAFKA = ("msk", "self-managed-kafka")
MQ = ("activemq", "rabbitmq")
POLLERS = {"provisioned_poller_config": {"minimum_pollers": 1, "maximum_pollers": 10}}


def without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


# -- AWS-shaped read-backs (Get / List items) -----------------------------------------------------


def msk_response(uuid: str = UUID, state: str = "Enabled", **overrides: Any) -> dict[str, Any]:
    return msk_readback(uuid, state, source=MSK, **overrides)


def smk_response(uuid: str = UUID, state: str = "Enabled", **overrides: Any) -> dict[str, Any]:
    brokers = sorted(BROKERS)  # as AWS returns them
    return self_managed_kafka_readback(uuid, state, brokers=brokers, secret=SECRET, **overrides)


def activemq_response(uuid: str = UUID, state: str = "Enabled", **overrides: Any) -> dict:
    return mq_readback(uuid, state, source=ACTIVEMQ, secret=SECRET, **overrides)


def rabbitmq_response(uuid: str = UUID, state: str = "Enabled", **overrides: Any) -> dict:
    return mq_readback(
        uuid, state, source=RABBITMQ, secret=SECRET, virtual_host="/production", **overrides
    )


def docdb_response(uuid: str = UUID, state: str = "Enabled", **overrides: Any) -> dict:
    return documentdb_readback(uuid, state, source=DOCDB, secret=SECRET, **overrides)


RESPONSES: dict[str, Callable[..., dict[str, Any]]] = {
    "msk": msk_response,
    "self-managed-kafka": smk_response,
    "activemq": activemq_response,
    "rabbitmq": rabbitmq_response,
    "documentdb": docdb_response,
}

# A 2026 live report says Kafka mappings also read back the stream-style error-handling
# defaults (A.4); whichever AWS does, neither is drift.
KAFKA_STREAM_STYLE = {
    "MaximumRetryAttempts": -1,
    "MaximumRecordAgeInSeconds": -1,
    "BisectBatchOnFunctionError": False,
    "DestinationConfig": {"OnFailure": {}},
    "FunctionResponseTypes": [],
}


# -- loading and planning -------------------------------------------------------------------------


def write(tmp_path: Path, mappings: list[dict[str, Any]], **top: Any) -> Path:
    path = tmp_path / "spec.yaml"
    document = {"version": 1, **top, "functions": {FUNCTION: mappings}}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def problems(tmp_path: Path, *mappings: dict[str, Any], **top: Any) -> list[tuple[str, str]]:
    """(field path inside the mapping, message) of every validation error; [] when valid."""
    try:
        load_spec([write(tmp_path, list(mappings), **top)], now=datetime(2026, 1, 1, tzinfo=UTC))
    except SpecErrors as exc:
        return [
            (re.sub(r"^functions\.[^\[]+\[\d+\]\.?", "", e.field), e.message) for e in exc.errors
        ]
    return []


def plan(tmp_path: Path, mappings: list[dict[str, Any]], live_mappings: list[LiveMapping]) -> Plan:
    spec = load_spec([write(tmp_path, mappings)], now=datetime(2026, 1, 1, tzinfo=UTC))
    functions = [
        ManagedFunction(label, parse_function_ref(label).arn(REGION, ACCOUNT), found)
        for label, found in spec.functions.items()
    ]
    assert functions[0].arn == FN
    return diff(functions, live_mappings)


def only(p: Plan) -> Change:
    assert len(p.changes) == 1, [c.to_json() for c in p.changes]
    return p.changes[0]


def no_changes(p: Plan) -> None:
    assert p.changes == [], [c.to_json() for c in p.changes]


def assert_problem(found: list[tuple[str, str]], field: str, *words: str) -> None:
    hits = [m for f, m in found if f == field and all(w.lower() in m.lower() for w in words)]
    assert hits, f"expected an error at {field!r} mentioning {words}; got {found}"


# =================================================================================================
# validation
# =================================================================================================


@pytest.mark.parametrize("kind", SPECS)
def test_complete_mapping_of_each_kind_is_valid(tmp_path: Path, kind: str) -> None:
    assert problems(tmp_path, SPECS[kind]()) == []


@pytest.mark.parametrize(
    ("mapping", "field", "words"),
    [
        pytest.param(without(msk(), "topics"), "topics", ("required",), id="msk-topics"),
        pytest.param(
            without(msk(), "starting_position"),
            "starting_position",
            ("required",),
            id="msk-starting-position",
        ),
        pytest.param(without(smk(), "topics"), "topics", ("required",), id="smk-topics"),
        pytest.param(
            without(smk(), "source_access_configurations"),
            "source_access_configurations",
            ("required",),
            id="smk-access",
        ),
        pytest.param(
            smk(source_access_configurations=[]),
            "source_access_configurations",
            ("required",),
            id="smk-access-empty",
        ),
        pytest.param(without(activemq(), "queues"), "queues", ("required",), id="activemq-queues"),
        pytest.param(
            without(activemq(), "source_access_configurations"),
            "source_access_configurations",
            ("required", "BASIC_AUTH"),
            id="activemq-access",
        ),
        pytest.param(
            rabbitmq(source_access_configurations=[vhost()]),
            "source_access_configurations",
            ("BASIC_AUTH",),
            id="rabbitmq-vhost-without-basic-auth",
        ),
        pytest.param(
            without(docdb(), "source_access_configurations"),
            "source_access_configurations",
            ("required", "BASIC_AUTH"),
            id="docdb-access",
        ),
        pytest.param(
            without(docdb(), "document_db_event_source_config"),
            "document_db_event_source_config",
            ("required",),
            id="docdb-config",
        ),
        pytest.param(
            docdb(document_db_event_source_config={"collection_name": "orders"}),
            "document_db_event_source_config.database_name",
            ("required",),
            id="docdb-database-name",
        ),
        pytest.param(
            without(smk(), "self_managed_event_source"),
            "event_source_arn",
            ("required",),
            id="smk-no-source",
        ),
    ],
)
def test_required_fields(
    tmp_path: Path, mapping: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    assert_problem(problems(tmp_path, mapping), field, *words)


def test_documentdb_starting_position_is_required(tmp_path: Path) -> None:
    # Reference A.3: StartingPosition for DocumentDB is "Y (R per docs table)", like MSK's "R
    # (docs)", which the validator does require. Accepting an omitted one is worse than strict:
    # the diff has no DocumentDB default for it, so the LATEST that AWS reads back would be drift
    # that forces a replacement on every run.
    assert_problem(
        problems(tmp_path, without(docdb(), "starting_position")), "starting_position", "required"
    )


@pytest.mark.parametrize(
    ("mapping", "field", "words"),
    [
        pytest.param(
            msk(parallelization_factor=2),
            "parallelization_factor",
            ("not supported",),
            id="msk-parallelization",
        ),
        pytest.param(
            smk(parallelization_factor=2),
            "parallelization_factor",
            ("not supported",),
            id="smk-parallelization",
        ),
        pytest.param(
            msk(scaling_config={"maximum_concurrency": 5}),
            "scaling_config",
            ("not supported",),
            id="msk-scaling",
        ),
        pytest.param(
            smk(scaling_config={"maximum_concurrency": 5}),
            "scaling_config",
            ("not supported",),
            id="smk-scaling",
        ),
        pytest.param(
            msk(tumbling_window_in_seconds=60),
            "tumbling_window_in_seconds",
            ("not supported",),
            id="msk-tumbling",
        ),
        pytest.param(msk(queues=["orders"]), "queues", ("not supported",), id="msk-queues"),
        pytest.param(
            msk(self_managed_kafka_event_source_config={"consumer_group_id": "g1"}),
            "self_managed_kafka_event_source_config",
            ("not supported",),
            id="msk-self-managed-config",
        ),
        pytest.param(
            smk(amazon_managed_kafka_event_source_config={"consumer_group_id": "g1"}),
            "amazon_managed_kafka_event_source_config",
            ("not supported",),
            id="smk-amazon-managed-config",
        ),
        pytest.param(
            msk(self_managed_event_source=smk()["self_managed_event_source"]),
            "self_managed_event_source",
            ("not both",),
            id="arn-and-brokers",
        ),
        pytest.param(
            activemq(destination_config={"on_failure": {"destination": DLQ}}),
            "destination_config",
            ("not supported",),
            id="activemq-destination",
        ),
        pytest.param(
            rabbitmq(destination_config={"on_failure": {"destination": DLQ}}),
            "destination_config",
            ("not supported",),
            id="rabbitmq-destination",
        ),
        pytest.param(
            docdb(destination_config={"on_failure": {"destination": DLQ}}),
            "destination_config",
            ("not supported",),
            id="docdb-destination",
        ),
        pytest.param(
            activemq(starting_position="LATEST"),
            "starting_position",
            ("not supported",),
            id="activemq-position",
        ),
        pytest.param(
            activemq(topics=["orders"]), "topics", ("not supported",), id="activemq-topics"
        ),
        pytest.param(
            activemq(maximum_retry_attempts=3),
            "maximum_retry_attempts",
            ("not supported",),
            id="activemq-retries",
        ),
        pytest.param(
            rabbitmq(function_response_types=["ReportBatchItemFailures"]),
            "function_response_types",
            ("not supported",),
            id="rabbitmq-partial-batch",
        ),
        pytest.param(
            docdb(function_response_types=["ReportBatchItemFailures"]),
            "function_response_types",
            ("not supported",),
            id="docdb-partial-batch",
        ),
        pytest.param(
            activemq(**POLLERS),
            "provisioned_poller_config",
            ("not supported",),
            id="activemq-pollers",
        ),
        pytest.param(
            docdb(**POLLERS), "provisioned_poller_config", ("not supported",), id="docdb-pollers"
        ),
        pytest.param(
            docdb(logging_config={"system_log_level": "WARN"}),
            "logging_config",
            ("not supported",),
            id="docdb-logging",
        ),
        pytest.param(
            msk(source_access_configurations=[vhost()]),
            "source_access_configurations[0].type",
            ("VIRTUAL_HOST",),
            id="msk-virtual-host",
        ),
        pytest.param(
            smk(source_access_configurations=[basic(), vhost()]),
            "source_access_configurations[1].type",
            ("VIRTUAL_HOST",),
            id="smk-virtual-host",
        ),
        pytest.param(
            {
                "event_source_arn": STREAM,
                "starting_position": "LATEST",
                "destination_config": {"on_failure": {"destination": "kafka://orders-failed"}},
            },
            "destination_config.on_failure.destination",
            ("kafka",),
            id="kinesis-kafka-destination",
        ),
        pytest.param(
            {
                "event_source_arn": DDB,
                "starting_position": "LATEST",
                "destination_config": {"on_failure": {"destination": "kafka://orders-failed"}},
            },
            "destination_config.on_failure.destination",
            ("kafka",),
            id="dynamodb-kafka-destination",
        ),
        pytest.param(
            msk(destination_config={"on_failure": {"destination": "kafka://orders"}}),
            "destination_config.on_failure.destination",
            ("differ",),
            id="msk-same-topic-on-failure",
        ),
        pytest.param(
            smk(destination_config={"on_failure": {"destination": "kafka://orders"}}),
            "destination_config.on_failure.destination",
            ("differ",),
            id="smk-same-topic-on-failure",
        ),
    ],
)
def test_forbidden_fields(
    tmp_path: Path, mapping: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    assert_problem(problems(tmp_path, mapping), field, *words)


@pytest.mark.parametrize(
    "destination", ["kafka://orders-failed", DLQ, "arn:aws:s3:::orders-failed"]
)
@pytest.mark.parametrize("kind", KAFKA)
def test_kafka_on_failure_destinations_accepted(
    tmp_path: Path, kind: str, destination: str
) -> None:
    mapping = SPECS[kind](destination_config={"on_failure": {"destination": destination}})
    assert problems(tmp_path, mapping) == []


# Access-entry types each kind takes (reference A.3, SourceAccessConfigurations row).
ACCEPTED_ACCESS = {
    "msk": {"SASL_SCRAM_512_AUTH", "CLIENT_CERTIFICATE_TLS_AUTH"},
    "self-managed-kafka": {
        "BASIC_AUTH",
        "SASL_SCRAM_256_AUTH",
        "SASL_SCRAM_512_AUTH",
        "CLIENT_CERTIFICATE_TLS_AUTH",
        "SERVER_ROOT_CA_CERTIFICATE",
        "VPC_SUBNET",
        "VPC_SECURITY_GROUP",
    },
    "activemq": {"BASIC_AUTH", "VIRTUAL_HOST"},  # the ARN does not tell ActiveMQ from RabbitMQ
    "documentdb": {"BASIC_AUTH"},
}
ACCESS_TYPES = [
    "BASIC_AUTH",
    "VPC_SUBNET",
    "VPC_SECURITY_GROUP",
    "SASL_SCRAM_512_AUTH",
    "SASL_SCRAM_256_AUTH",
    "VIRTUAL_HOST",
    "CLIENT_CERTIFICATE_TLS_AUTH",
    "SERVER_ROOT_CA_CERTIFICATE",
]
ACCESS_URI = {
    "VPC_SUBNET": "subnet:subnet-0a1b2c3d",
    "VPC_SECURITY_GROUP": "security_group:sg-0a1b2c3d",
    "VIRTUAL_HOST": "/production",
}


@pytest.mark.parametrize("entry_type", ACCESS_TYPES)
@pytest.mark.parametrize("kind", ACCEPTED_ACCESS)
def test_access_entry_types_per_kind(tmp_path: Path, kind: str, entry_type: str) -> None:
    entry = {"type": entry_type, "uri": ACCESS_URI.get(entry_type, SECRET2)}
    if kind in ("activemq", "documentdb"):
        # these need their BASIC_AUTH entry; test the other type beside it
        entries = [basic()] if entry_type == "BASIC_AUTH" else [basic(), entry]
    else:
        entries = [entry]
    found = problems(tmp_path, SPECS[kind](source_access_configurations=entries))
    type_errors = [(f, m) for f, m in found if f.startswith("source_access_configurations")]
    if entry_type in ACCEPTED_ACCESS[kind]:
        assert type_errors == []
    else:
        assert any(entry_type in m for _, m in type_errors), found


def test_mq_takes_one_basic_auth_entry(tmp_path: Path) -> None:
    found = problems(tmp_path, activemq(source_access_configurations=[basic(), basic(SECRET2)]))
    assert_problem(found, "source_access_configurations", "one BASIC_AUTH")


@pytest.mark.parametrize(
    ("mapping", "ok", "field", "words"),
    [
        # SQS: minimum 2-200, maximum 2-2000 (A.8)
        (
            {
                "event_source_arn": QUEUE,
                "provisioned_poller_config": {"minimum_pollers": 2, "maximum_pollers": 2},
            },
            True,
            "",
            (),
        ),
        (
            {"event_source_arn": QUEUE, "provisioned_poller_config": {"minimum_pollers": 1}},
            False,
            "provisioned_poller_config.minimum_pollers",
            ("at least 2",),
        ),
        (
            {"event_source_arn": QUEUE, "provisioned_poller_config": {"maximum_pollers": 1}},
            False,
            "provisioned_poller_config.maximum_pollers",
            ("at least 2",),
        ),
        (
            {
                "event_source_arn": QUEUE,
                "provisioned_poller_config": {"minimum_pollers": 5, "maximum_pollers": 3},
            },
            False,
            "provisioned_poller_config.minimum_pollers",
            ("maximum",),
        ),
        # Kafka: minimum 1-200, maximum 1-2000 (A.8)
        (msk(provisioned_poller_config={"minimum_pollers": 1, "maximum_pollers": 1}), True, "", ()),
        (
            smk(provisioned_poller_config={"minimum_pollers": 200, "maximum_pollers": 2000}),
            True,
            "",
            (),
        ),
        (
            msk(provisioned_poller_config={"minimum_pollers": 0}),
            False,
            "provisioned_poller_config.minimum_pollers",
            ("greater than or equal to 1",),
        ),
        (
            smk(provisioned_poller_config={"minimum_pollers": 201}),
            False,
            "provisioned_poller_config.minimum_pollers",
            ("200",),
        ),
        (
            msk(provisioned_poller_config={"maximum_pollers": 2001}),
            False,
            "provisioned_poller_config.maximum_pollers",
            ("2000",),
        ),
        (
            msk(provisioned_poller_config={"minimum_pollers": 10, "maximum_pollers": 5}),
            False,
            "provisioned_poller_config.minimum_pollers",
            ("maximum",),
        ),
        (
            smk(provisioned_poller_config={"minimum_pollers": 10, "maximum_pollers": 5}),
            False,
            "provisioned_poller_config.minimum_pollers",
            ("maximum",),
        ),
    ],
    ids=[
        "sqs-2-2",
        "sqs-min-1",
        "sqs-max-1",
        "sqs-min-over-max",
        "msk-1-1",
        "smk-200-2000",
        "msk-min-0",
        "smk-min-201",
        "msk-max-2001",
        "msk-min-over-max",
        "smk-min-over-max",
    ],
)
def test_poller_ranges_per_kind(
    tmp_path: Path, mapping: dict[str, Any], ok: bool, field: str, words: tuple[str, ...]
) -> None:
    found = problems(tmp_path, mapping)
    if ok:
        assert found == []
    else:
        assert_problem(found, field, *words)


@pytest.mark.parametrize("metric", ["ErrorCount", "KafkaMetrics"])
@pytest.mark.parametrize(
    "mapping",
    [
        {"event_source_arn": QUEUE},
        {"event_source_arn": STREAM, "starting_position": "LATEST"},
        {"event_source_arn": DDB, "starting_position": "LATEST"},
    ],
    ids=["sqs", "kinesis", "dynamodb"],
)
def test_kafka_only_metrics_refused_elsewhere(
    tmp_path: Path, mapping: dict[str, Any], metric: str
) -> None:
    found = problems(tmp_path, {**mapping, "metrics_config": {"metrics": ["EventCount", metric]}})
    assert_problem(found, "metrics_config.metrics", metric, "Kafka")


@pytest.mark.parametrize("kind", KAFKA)
def test_kafka_metrics_accepted_on_kafka(tmp_path: Path, kind: str) -> None:
    mapping = SPECS[kind](metrics_config={"metrics": ["EventCount", "ErrorCount", "KafkaMetrics"]})
    assert problems(tmp_path, mapping) == []


ERROR_HANDLING = [
    ("maximum_retry_attempts", 3),
    ("maximum_record_age_in_seconds", 3600),
    ("bisect_batch_on_function_error", True),
    ("function_response_types", ["ReportBatchItemFailures"]),
]


@pytest.mark.parametrize(("field", "value"), ERROR_HANDLING, ids=[f for f, _ in ERROR_HANDLING])
@pytest.mark.parametrize("kind", KAFKA)
def test_kafka_error_handling_needs_provisioned_mode(
    tmp_path: Path, kind: str, field: str, value: Any
) -> None:
    assert_problem(
        problems(tmp_path, SPECS[kind](**{field: value})), field, "provisioned_poller_config"
    )
    assert problems(tmp_path, SPECS[kind](**{field: value}, **POLLERS)) == []


@pytest.mark.parametrize("kind", KAFKA)
def test_kafka_error_handling_at_aws_defaults_needs_no_pollers(tmp_path: Path, kind: str) -> None:
    mapping = SPECS[kind](
        maximum_retry_attempts=-1,
        maximum_record_age_in_seconds=-1,
        bisect_batch_on_function_error=False,
    )
    assert problems(tmp_path, mapping) == []


def test_kafka_error_handling_from_defaults_section_points_at_defaults(tmp_path: Path) -> None:
    found = problems(tmp_path, msk(), defaults={"maximum_retry_attempts": 3})
    assert found, "a default that makes an MSK mapping invalid must be reported"
    assert any("provisioned_poller_config" in m for _, m in found), found


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        (msk(topics=[]), "topics"),
        (msk(topics=["orders", "inventory"]), "topics"),
        (smk(topics=["orders", "inventory"]), "topics"),
        (activemq(queues=[]), "queues"),
        (rabbitmq(queues=["orders", "refunds"]), "queues"),
    ],
    ids=["msk-none", "msk-two", "smk-two", "activemq-none", "rabbitmq-two"],
)
def test_exactly_one_topic_or_queue(tmp_path: Path, mapping: dict[str, Any], field: str) -> None:
    found = problems(tmp_path, mapping)
    assert any(f == field for f, _ in found), found


# =================================================================================================
# identity
# =================================================================================================


def test_msk_same_cluster_other_topic_is_another_mapping(tmp_path: Path) -> None:
    p = plan(tmp_path, [msk(topics=["inventory"])], [live_mapping(msk_response())])
    assert sorted(c.action for c in p.changes) == ["create", "delete"]
    delete = next(c for c in p.changes if c.action == "delete")
    create = next(c for c in p.changes if c.action == "create")
    assert delete.uuid == UUID and delete.event_source == f"{MSK}#orders"
    assert create.event_source == f"{MSK}#inventory"
    assert create.create_request["Topics"] == ["inventory"]
    assert all(c.update_request is None for c in p.changes)
    # Deletes go first: AWS refuses nothing here, but the plan order is the apply order.
    assert [c.action for c in p.changes] == ["delete", "create"]


def test_msk_two_topics_of_one_cluster_live_side_by_side(tmp_path: Path) -> None:
    p = plan(tmp_path, [msk(), msk(topics=["inventory"])], [live_mapping(msk_response())])
    assert only(p).action == "create"
    assert only(p).create_request["Topics"] == ["inventory"]


def test_self_managed_other_topic_is_another_mapping(tmp_path: Path) -> None:
    p = plan(tmp_path, [smk(topics=["inventory"])], [live_mapping(smk_response())])
    assert sorted(c.action for c in p.changes) == ["create", "delete"]


def test_brokers_compare_as_a_set(tmp_path: Path) -> None:
    # AWS returns the brokers sorted; the spec lists them in another order.
    no_changes(plan(tmp_path, [smk()], [live_mapping(smk_response())]))
    unsorted = smk_response(
        SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": BROKERS[::-1]}}
    )
    no_changes(plan(tmp_path, [smk()], [live_mapping(unsorted)]))


def test_other_broker_set_is_another_mapping(tmp_path: Path) -> None:
    mapping = smk(
        self_managed_event_source={
            "endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [*BROKERS, "b-4.kafka.example.com:9096"]}
        }
    )
    p = plan(tmp_path, [mapping], [live_mapping(smk_response())])
    assert [c.action for c in p.changes] == ["delete", "create"]


def test_mq_other_queue_is_another_mapping(tmp_path: Path) -> None:
    p = plan(tmp_path, [rabbitmq(queues=["refunds"])], [live_mapping(rabbitmq_response())])
    assert [c.action for c in p.changes] == ["delete", "create"]
    assert p.changes[1].create_request["Queues"] == ["refunds"]


@pytest.mark.parametrize(
    "pair",
    [
        (msk(), msk(batch_size=10)),
        (
            smk(),
            smk(
                self_managed_event_source={
                    "endpoints": {"KAFKA_BOOTSTRAP_SERVERS": sorted(BROKERS)}
                }
            ),
        ),
        (activemq(), activemq(batch_size=10)),
        (rabbitmq(), rabbitmq(source_access_configurations=[basic(SECRET2), vhost("/other")])),
        (docdb(), docdb(document_db_event_source_config={"database_name": "other"})),
    ],
    ids=["msk", "self-managed-kafka", "activemq", "rabbitmq", "documentdb"],
)
def test_two_mappings_with_one_identity_refused(tmp_path: Path, pair: tuple[dict, dict]) -> None:
    found = problems(tmp_path, *pair)
    assert any("duplicate mapping" in m for _, m in found), found


# =================================================================================================
# diff against AWS-shaped read-backs
# =================================================================================================


@pytest.mark.parametrize("kind", SPECS)
def test_default_readback_is_no_change(tmp_path: Path, kind: str) -> None:
    no_changes(plan(tmp_path, [SPECS[kind]()], [live_mapping(RESPONSES[kind]())]))


@pytest.mark.parametrize("kind", KAFKA)
def test_kafka_stream_style_readback_is_no_change(tmp_path: Path, kind: str) -> None:
    no_changes(
        plan(tmp_path, [SPECS[kind]()], [live_mapping(RESPONSES[kind](**KAFKA_STREAM_STYLE))])
    )


def test_provisioned_pollers_read_back_with_defaults_is_no_change(tmp_path: Path) -> None:
    mapping = msk(provisioned_poller_config={"maximum_pollers": 100}, maximum_retry_attempts=3)
    response = msk_response(
        ProvisionedPollerConfig={"MinimumPollers": 1, "MaximumPollers": 100},
        MaximumRetryAttempts=3,
    )
    no_changes(plan(tmp_path, [mapping], [live_mapping(response)]))


@pytest.mark.parametrize("kind", SPECS)
def test_batch_size_change_updates_only_batch_size(tmp_path: Path, kind: str) -> None:
    change = only(plan(tmp_path, [SPECS[kind](batch_size=500)], [live_mapping(RESPONSES[kind]())]))
    assert change.action == "update"
    assert change.fields == [FieldChange("batch_size", 100, 500, False)]
    assert change.update_request == {"UUID": UUID, "BatchSize": 500}
    assert change.create_request is None and change.tag_changes is None


@pytest.mark.parametrize("kind", SPECS)
def test_hand_edited_batch_size_is_drift_back_to_default(tmp_path: Path, kind: str) -> None:
    change = only(plan(tmp_path, [SPECS[kind]()], [live_mapping(RESPONSES[kind](BatchSize=300))]))
    assert change.action == "update"
    assert change.update_request == {"UUID": UUID, "BatchSize": 100}


KAFKA_CONFIG = {
    "msk": ("amazon_managed_kafka_event_source_config", "AmazonManagedKafkaEventSourceConfig"),
    "self-managed-kafka": (
        "self_managed_kafka_event_source_config",
        "SelfManagedKafkaEventSourceConfig",
    ),
}


@pytest.mark.parametrize("group", [None, "orders-lambda"], ids=["group-omitted", "group-given"])
@pytest.mark.parametrize("kind", KAFKA)
def test_schema_registry_change_updates_without_consumer_group(
    tmp_path: Path, kind: str, group: str | None
) -> None:
    spec_key, api_key = KAFKA_CONFIG[kind]
    registry = {"schema_registry_uri": GLUE2, "event_record_format": "JSON"}
    config: dict[str, Any] = {"schema_registry_config": registry}
    if group:
        config["consumer_group_id"] = group
    live_config = {
        "ConsumerGroupId": group or UUID,
        "SchemaRegistryConfig": {"SchemaRegistryURI": GLUE, "EventRecordFormat": "JSON"},
    }
    change = only(
        plan(
            tmp_path,
            [SPECS[kind](**{spec_key: config})],
            [live_mapping(RESPONSES[kind](**{api_key: live_config}))],
        )
    )
    assert change.action == "update"
    assert [(f.name, f.before, f.after, f.forces_replacement) for f in change.fields] == [
        (f"{spec_key}.schema_registry_config.schema_registry_uri", GLUE, GLUE2, False)
    ]
    # ConsumerGroupId is create-only (A.9): never sent on Update.
    assert change.update_request == {
        "UUID": UUID,
        api_key: {
            "SchemaRegistryConfig": {"SchemaRegistryURI": GLUE2, "EventRecordFormat": "JSON"}
        },
    }


@pytest.mark.parametrize("kind", KAFKA)
def test_consumer_group_change_is_replace(tmp_path: Path, kind: str) -> None:
    spec_key, api_key = KAFKA_CONFIG[kind]
    mapping = SPECS[kind](**{spec_key: {"consumer_group_id": "orders-v2"}})
    response = RESPONSES[kind](**{api_key: {"ConsumerGroupId": "orders-v1"}})
    change = only(plan(tmp_path, [mapping], [live_mapping(response)]))
    assert change.action == "replace"
    assert change.uuid == UUID
    assert change.fields == [
        FieldChange(f"{spec_key}.consumer_group_id", "orders-v1", "orders-v2", True)
    ]
    assert change.update_request is None
    assert change.create_request[api_key] == {"ConsumerGroupId": "orders-v2"}
    assert any("read position" in w for w in change.warnings)


@pytest.mark.parametrize("kind", KAFKA)
def test_consumer_group_given_equal_to_live_is_no_change(tmp_path: Path, kind: str) -> None:
    spec_key, api_key = KAFKA_CONFIG[kind]
    mapping = SPECS[kind](**{spec_key: {"consumer_group_id": "orders-v1"}})
    response = RESPONSES[kind](**{api_key: {"ConsumerGroupId": "orders-v1"}})
    no_changes(plan(tmp_path, [mapping], [live_mapping(response)]))


@pytest.mark.parametrize(
    ("kind", "spec_position", "live_position"),
    [
        ("msk", "TRIM_HORIZON", "LATEST"),
        ("self-managed-kafka", "LATEST", "TRIM_HORIZON"),
        ("self-managed-kafka", None, "LATEST"),  # omitted means TRIM_HORIZON (A.4)
        ("documentdb", "TRIM_HORIZON", "LATEST"),
    ],
)
def test_starting_position_change_is_replace_with_position_warning(
    tmp_path: Path, kind: str, spec_position: str | None, live_position: str
) -> None:
    mapping = without(SPECS[kind](), "starting_position")
    if spec_position:
        mapping["starting_position"] = spec_position
    change = only(
        plan(tmp_path, [mapping], [live_mapping(RESPONSES[kind](StartingPosition=live_position))])
    )
    assert change.action == "replace"
    assert change.fields == [
        FieldChange("starting_position", live_position, spec_position or "TRIM_HORIZON", True)
    ]
    assert change.update_request is None
    assert change.create_request.get("StartingPosition") == spec_position
    if kind in KAFKA:
        # The spec names no consumer group: the new mapping joins the old one's (AWS's
        # default, its UUID), so committed offsets resume (tests/test_kafka_offsets.py).
        assert change.create_request[KAFKA_CONFIG[kind][1]] == {"ConsumerGroupId": UUID}
        assert change.warnings and "consumer group" in change.warnings[0]
    else:
        assert change.warnings and "read position" in change.warnings[0]


def test_rabbitmq_virtual_host_change_is_replace(tmp_path: Path) -> None:
    mapping = rabbitmq(source_access_configurations=[basic(), vhost("/staging")])
    change = only(plan(tmp_path, [mapping], [live_mapping(rabbitmq_response())]))
    assert change.action == "replace"
    assert [f.forces_replacement for f in change.fields] == [True]
    assert change.update_request is None
    assert {"Type": "VIRTUAL_HOST", "URI": "/staging"} in change.create_request[
        "SourceAccessConfigurations"
    ]


def test_rabbitmq_virtual_host_removed_is_replace(tmp_path: Path) -> None:
    mapping = rabbitmq(source_access_configurations=[basic()])
    change = only(plan(tmp_path, [mapping], [live_mapping(rabbitmq_response())]))
    assert change.action == "replace"
    assert change.create_request["SourceAccessConfigurations"] == [
        {"Type": "BASIC_AUTH", "URI": SECRET}
    ]


@pytest.mark.parametrize("kind", ["activemq", "rabbitmq", "documentdb"])
def test_basic_auth_secret_change_is_in_place_update(tmp_path: Path, kind: str) -> None:
    entries = [basic(SECRET2), vhost()] if kind == "rabbitmq" else [basic(SECRET2)]
    mapping = SPECS[kind](source_access_configurations=entries)
    change = only(plan(tmp_path, [mapping], [live_mapping(RESPONSES[kind]())]))
    assert change.action == "update"
    assert [f.name for f in change.fields] == ["source_access_configurations"]
    assert not change.fields[0].forces_replacement
    # AWS refuses VIRTUAL_HOST on Update (A.9): only the credentials entry is sent.
    assert change.update_request == {
        "UUID": UUID,
        "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": SECRET2}],
    }


def test_kafka_credentials_change_is_in_place_update(tmp_path: Path) -> None:
    mapping = smk(source_access_configurations=[{"type": "SASL_SCRAM_512_AUTH", "uri": SECRET2}])
    change = only(plan(tmp_path, [mapping], [live_mapping(smk_response())]))
    assert change.action == "update"
    assert change.update_request == {
        "UUID": UUID,
        "SourceAccessConfigurations": [{"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET2}],
    }


@pytest.mark.parametrize("kind", SPECS)
def test_window_set_live_but_omitted_in_spec_is_replace(tmp_path: Path, kind: str) -> None:
    # A.4: the 500 ms default cannot be sent in whole seconds; only re-creating gets it back.
    change = only(
        plan(
            tmp_path,
            [SPECS[kind]()],
            [live_mapping(RESPONSES[kind](MaximumBatchingWindowInSeconds=5))],
        )
    )
    assert change.action == "replace"
    assert change.fields == [FieldChange("maximum_batching_window_in_seconds", 5, None, True)]
    assert change.update_request is None
    assert "MaximumBatchingWindowInSeconds" not in change.create_request


@pytest.mark.parametrize("kind", SPECS)
def test_window_set_in_spec_is_in_place_update(tmp_path: Path, kind: str) -> None:
    change = only(
        plan(
            tmp_path,
            [SPECS[kind](maximum_batching_window_in_seconds=5)],
            [live_mapping(RESPONSES[kind]())],
        )
    )
    assert change.action == "update"
    assert change.update_request == {"UUID": UUID, "MaximumBatchingWindowInSeconds": 5}


@pytest.mark.parametrize("kind", SPECS)
def test_window_lowered_to_zero_is_in_place_update(tmp_path: Path, kind: str) -> None:
    change = only(
        plan(
            tmp_path,
            [SPECS[kind](maximum_batching_window_in_seconds=0)],
            [live_mapping(RESPONSES[kind](MaximumBatchingWindowInSeconds=5))],
        )
    )
    assert change.action == "update"
    assert change.update_request == {"UUID": UUID, "MaximumBatchingWindowInSeconds": 0}


def test_documentdb_full_document_default_matches_readback_without_it(tmp_path: Path) -> None:
    mapping = docdb(
        document_db_event_source_config={
            "database_name": "shop",
            "collection_name": "orders",
            "full_document": "Default",
        }
    )
    no_changes(plan(tmp_path, [mapping], [live_mapping(docdb_response())]))
    explicit = docdb_response(
        DocumentDBEventSourceConfig={
            "DatabaseName": "shop",
            "CollectionName": "orders",
            "FullDocument": "Default",
        }
    )
    no_changes(plan(tmp_path, [docdb()], [live_mapping(explicit)]))


def test_documentdb_full_document_change_sends_whole_config(tmp_path: Path) -> None:
    mapping = docdb(
        document_db_event_source_config={
            "database_name": "shop",
            "collection_name": "orders",
            "full_document": "UpdateLookup",
        }
    )
    change = only(plan(tmp_path, [mapping], [live_mapping(docdb_response())]))
    assert change.action == "update"
    assert change.fields == [
        FieldChange("document_db_event_source_config.full_document", "Default", "UpdateLookup")
    ]
    # Nested objects sent on Update replace the stored one: send all of it.
    assert change.update_request == {
        "UUID": UUID,
        "DocumentDBEventSourceConfig": {
            "DatabaseName": "shop",
            "CollectionName": "orders",
            "FullDocument": "UpdateLookup",
        },
    }


@pytest.mark.parametrize("kind", SPECS)
def test_declared_tags_converge(tmp_path: Path, kind: str) -> None:
    mapping = SPECS[kind](tags={"team": "orders", "env": "prod"})
    current = live_mapping(
        RESPONSES[kind](), tags={"team": "checkout", "env": "prod", "owner": "bob"}
    )
    change = only(plan(tmp_path, [mapping], [current]))
    assert change.action == "update"
    assert change.update_request is None  # tags have their own API
    assert change.tag_changes == {
        "arn": esm_arn(UUID),
        "set": {"team": "orders"},
        "remove": ["owner"],
    }
    assert sorted((f.name, f.before, f.after) for f in change.fields) == [
        ("tags.owner", "bob", None),
        ("tags.team", "checkout", "orders"),
    ]


@pytest.mark.parametrize("kind", SPECS)
def test_tags_not_declared_are_left_alone(tmp_path: Path, kind: str) -> None:
    current = live_mapping(RESPONSES[kind](), tags={"team": "checkout"})
    no_changes(plan(tmp_path, [SPECS[kind]()], [current]))


@pytest.mark.parametrize("kind", SPECS)
def test_equal_tags_are_no_change(tmp_path: Path, kind: str) -> None:
    current = live_mapping(RESPONSES[kind](), tags={"team": "orders"})
    no_changes(plan(tmp_path, [SPECS[kind](tags={"team": "orders"})], [current]))


@pytest.mark.parametrize("kind", SPECS)
def test_create_request_shape_per_kind(tmp_path: Path, kind: str) -> None:
    change = only(plan(tmp_path, [SPECS[kind](tags={"team": "orders"})], []))
    request = change.create_request
    assert change.action == "create" and request["FunctionName"] == FN
    assert request["Tags"] == {"team": "orders"}
    expected_source = {
        "msk": {
            "EventSourceArn": MSK,
            "Topics": ["orders"],
            "StartingPosition": "LATEST",
        },
        "self-managed-kafka": {
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": sorted(BROKERS)}},
            "Topics": ["orders"],
            "SourceAccessConfigurations": [{"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET}],
        },
        "activemq": {
            "EventSourceArn": ACTIVEMQ,
            "Queues": ["orders"],
            "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": SECRET}],
        },
        "rabbitmq": {
            "EventSourceArn": RABBITMQ,
            "Queues": ["orders"],
            "SourceAccessConfigurations": [
                {"Type": "BASIC_AUTH", "URI": SECRET},
                {"Type": "VIRTUAL_HOST", "URI": "/production"},
            ],
        },
        "documentdb": {
            "EventSourceArn": DOCDB,
            "StartingPosition": "LATEST",
            "DocumentDBEventSourceConfig": {"DatabaseName": "shop", "CollectionName": "orders"},
            "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": SECRET}],
        },
    }[kind]
    rest = {k: v for k, v in request.items() if k not in ("FunctionName", "Tags")}
    if "SourceAccessConfigurations" in rest:
        rest["SourceAccessConfigurations"] = sorted(
            rest["SourceAccessConfigurations"], key=lambda e: e["Type"]
        )
    assert rest == expected_source


# =================================================================================================
# apply with botocore's Stubber
# =================================================================================================


@pytest.fixture
def h() -> Iterator[ApplyHarness]:
    with stubbed_lambda() as harness:
        yield harness


APPLY_KINDS = ("self-managed-kafka", "rabbitmq")


def done(result: ApplyResult) -> None:
    assert [o.status for o in result.outcomes] == ["done"] * len(result.outcomes), [
        (o.status, o.message) for o in result.outcomes
    ]
    assert result.ok and result.changed


@pytest.mark.parametrize("kind", APPLY_KINDS)
def test_apply_create_sends_the_planned_request(h: ApplyHarness, tmp_path: Path, kind: str) -> None:
    p = plan(tmp_path, [SPECS[kind](batch_size=50, tags={"team": "orders"})], [])
    change = only(p)
    new = U(f"new-{kind}")
    # The request is exactly the plan's (Stubber checks every parameter, botocore its shape).
    h.ok(
        "create_event_source_mapping",
        RESPONSES[kind](new, "Creating", BatchSize=50),
        **change.create_request,
    )
    h.get(RESPONSES[kind](new, "Creating", BatchSize=50))
    h.get(RESPONSES[kind](new, "Enabled", BatchSize=50))

    result = h.applier().apply(p)

    done(result)
    assert h.ops == ["CreateEventSourceMapping", "GetEventSourceMapping", "GetEventSourceMapping"]
    assert h.calls[0][1] == change.create_request
    assert h.calls[0][1]["Tags"] == {"team": "orders"}
    assert result.outcomes[0].created_uuid == new
    assert len(h.time.sleeps) == 2  # Create said Creating: each Get after a sleep


@pytest.mark.parametrize("kind", APPLY_KINDS)
def test_apply_update_waits_until_enabled(h: ApplyHarness, tmp_path: Path, kind: str) -> None:
    p = plan(tmp_path, [SPECS[kind](batch_size=500)], [live_mapping(RESPONSES[kind]())])
    change = only(p)
    assert change.update_request == {"UUID": UUID, "BatchSize": 500}
    h.ok(
        "update_event_source_mapping",
        RESPONSES[kind](state="Updating", BatchSize=500),
        **change.update_request,
    )
    h.get(RESPONSES[kind](state="Updating", BatchSize=500))
    h.get(RESPONSES[kind](state="Enabled", BatchSize=500))

    done(h.applier().apply(p))
    assert h.ops == ["UpdateEventSourceMapping", "GetEventSourceMapping", "GetEventSourceMapping"]


def test_apply_mq_credentials_update_never_sends_virtual_host(
    h: ApplyHarness, tmp_path: Path
) -> None:
    p = plan(
        tmp_path,
        [rabbitmq(source_access_configurations=[basic(SECRET2), vhost()])],
        [live_mapping(rabbitmq_response())],
    )
    change = only(p)
    h.ok(
        "update_event_source_mapping", rabbitmq_response(state="Updating"), **change.update_request
    )
    h.get(rabbitmq_response(state="Enabled"))

    done(h.applier().apply(p))
    sent = h.calls[0][1]["SourceAccessConfigurations"]
    assert sent == [{"Type": "BASIC_AUTH", "URI": SECRET2}]


REPLACE_SPECS = {
    # consumer group is create-only for Kafka; VIRTUAL_HOST for RabbitMQ
    "self-managed-kafka": smk(
        self_managed_kafka_event_source_config={"consumer_group_id": "orders-v2"}
    ),
    "rabbitmq": rabbitmq(source_access_configurations=[basic(), vhost("/staging")]),
}


@pytest.mark.parametrize("kind", APPLY_KINDS)
def test_apply_replace_deletes_waits_gone_then_creates(
    h: ApplyHarness, tmp_path: Path, kind: str
) -> None:
    p = plan(tmp_path, [REPLACE_SPECS[kind]], [live_mapping(RESPONSES[kind]())])
    change = only(p)
    assert change.action == "replace"
    new = U(f"replacement-{kind}")
    h.ok("delete_event_source_mapping", RESPONSES[kind](state="Deleting"), UUID=UUID)
    h.get(RESPONSES[kind](state="Deleting"))
    h.gone(UUID)
    h.ok("create_event_source_mapping", RESPONSES[kind](new, "Creating"), **change.create_request)
    h.get(RESPONSES[kind](new, "Enabled"))

    result = h.applier().apply(p)

    done(result)
    assert h.ops == [
        "DeleteEventSourceMapping",
        "GetEventSourceMapping",
        "GetEventSourceMapping",
        "CreateEventSourceMapping",
        "GetEventSourceMapping",
    ]
    gets = [params["UUID"] for op, params in h.calls if op == "GetEventSourceMapping"]
    assert gets == [UUID, UUID, new]
    assert result.outcomes[0].created_uuid == new


@pytest.mark.parametrize("kind", APPLY_KINDS)
def test_apply_delete_waits_until_gone(h: ApplyHarness, tmp_path: Path, kind: str) -> None:
    p = plan(tmp_path, [], [live_mapping(RESPONSES[kind]())])
    assert only(p).action == "delete"
    h.ok("delete_event_source_mapping", RESPONSES[kind](state="Deleting"), UUID=UUID)
    h.get(RESPONSES[kind](state="Deleting"))
    h.gone(UUID)

    done(h.applier().apply(p))
    assert h.ops == ["DeleteEventSourceMapping", "GetEventSourceMapping", "GetEventSourceMapping"]


@pytest.mark.parametrize("kind", APPLY_KINDS)
def test_apply_tag_convergence(h: ApplyHarness, tmp_path: Path, kind: str) -> None:
    p = plan(
        tmp_path,
        [SPECS[kind](tags={"team": "orders", "env": "prod"})],
        [live_mapping(RESPONSES[kind](), tags={"team": "checkout", "owner": "bob"})],
    )
    h.ok(
        "tag_resource",
        {},
        Resource=esm_arn(UUID),
        Tags={"team": "orders", "env": "prod"},
    )
    h.ok("untag_resource", {}, Resource=esm_arn(UUID), TagKeys=["owner"])

    done(h.applier().apply(p))
    assert h.ops == ["TagResource", "UntagResource"]  # no Update, nothing to wait for


@pytest.mark.parametrize("kind", APPLY_KINDS)
def test_apply_update_and_tags_together(h: ApplyHarness, tmp_path: Path, kind: str) -> None:
    p = plan(
        tmp_path,
        [SPECS[kind](batch_size=500, tags={"team": "orders"})],
        [live_mapping(RESPONSES[kind](), tags={})],
    )
    change = only(p)
    h.ok("update_event_source_mapping", RESPONSES[kind](state="Updating"), **change.update_request)
    h.get(RESPONSES[kind](state="Enabled", BatchSize=500))
    h.ok("tag_resource", {}, Resource=esm_arn(UUID), Tags={"team": "orders"})

    done(h.applier().apply(p))
    assert h.ops == ["UpdateEventSourceMapping", "GetEventSourceMapping", "TagResource"]


def test_consumer_group_unique_per_kafka_source(tmp_path: Path) -> None:
    """AWS refuses a second mapping with the same consumer group on one Kafka source."""
    cluster = (
        "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abcd1234-ab12-cd34-ef56-abcdef123456-1"
    )
    mapping = {
        "event_source_arn": cluster,
        "starting_position": "LATEST",
        "amazon_managed_kafka_event_source_config": {"consumer_group_id": "shared"},
    }
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "functions": {
                    "a": [{**mapping, "topics": ["t1"]}],
                    "b": [{**mapping, "topics": ["t2"]}],
                },
            }
        )
    )
    with pytest.raises(SpecErrors) as caught:
        load_spec([spec])
    (error,) = caught.value.errors
    assert (
        error.field == "functions.b[0].amazon_managed_kafka_event_source_config.consumer_group_id"
    )
    assert "'shared' is already used" in error.message
