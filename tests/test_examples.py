"""The shipped example specs: they validate, match the JSON Schema, and plan to the exact API calls.

Every file in examples/ (one per source kind, plus the Terraform page's Example Usage blocks
translated) and mappings.example.yaml must:

- load through the real validator (`load_spec`), one file at a time and all together;
- validate against the JSON Schema that `esm schema` prints (what an editor checks);
- plan, against an account with no mappings, to creates only, whose CreateEventSourceMapping
  requests are exactly the ones written out below (botocore's own parameter validation agrees);
- plan to "no changes" once AWS holds those mappings, read back with AWS's defaults (reference
  A.4), so an example never shows spurious drift after its first apply.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
import yaml
from botocore.validate import ParamValidator

from esm_reconcile.diff import diff
from esm_reconcile.model import ManagedFunction, parse_function_ref
from esm_reconcile.plan import Plan
from esm_reconcile.rules import Kind
from esm_reconcile.schema import spec_schema
from esm_reconcile.validate import Spec, load_spec
from tests.aws_shapes import U, live_mapping, readback_of_create

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
ALL_FILES = [*EXAMPLE_FILES, ROOT / "mappings.example.yaml"]
SEED_002 = sorted(Path("/work/shared/reference/seeds").glob("002_*.txt"))

PER_KIND = {
    "sqs.yaml",
    "sqs-fifo.yaml",
    "kinesis.yaml",
    "dynamodb.yaml",
    "msk.yaml",
    "self-managed-kafka.yaml",
    "activemq.yaml",
    "rabbitmq.yaml",
    "documentdb.yaml",
}

LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def load(path: Path) -> Spec:
    return load_spec([path], now=datetime(2026, 1, 1, tzinfo=UTC))


def managed(spec: Spec) -> list[ManagedFunction]:
    """ManagedFunction per function key, with the qualified ARN AWS reports for it."""
    return [
        ManagedFunction(label, parse_function_ref(label).arn(REGION, ACCOUNT), mappings)
        for label, mappings in spec.functions.items()
    ]


def plan_on_empty_account(path: Path) -> Plan:
    return diff(managed(load(path)), [])


def unordered(request: dict[str, Any]) -> dict[str, Any]:
    """Order that carries no meaning for AWS (access entries, filters, metrics) taken out.
    Broker lists keep their order: the plan must send them sorted, as AWS returns them."""
    out = copy.deepcopy(request)
    if "SourceAccessConfigurations" in out:
        out["SourceAccessConfigurations"] = sorted(
            out["SourceAccessConfigurations"], key=lambda e: (e["Type"], e["URI"])
        )
    filters = (out.get("FilterCriteria") or {}).get("Filters")
    if filters:
        out["FilterCriteria"]["Filters"] = sorted(
            filters, key=lambda f: json.dumps(json.loads(f["Pattern"]), sort_keys=True)
        )
    if "MetricsConfig" in out:
        out["MetricsConfig"]["Metrics"] = sorted(out["MetricsConfig"]["Metrics"])
    return out


def pattern(obj: dict[str, Any]) -> str:
    """A filter pattern as the JSON text the plan sends (compared by meaning, see below)."""
    return json.dumps(obj)


# -- the expected CreateEventSourceMapping requests, per example file -----------------------------

MSK_PAYMENTS = (
    f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/payments/7c9e6679-7425-40de-944b-e07fc1f90ae7-2"
)
SMK_BROKERS = [
    "kafka-1.internal.example.com:9096",
    "kafka-2.internal.example.com:9096",
    "kafka-3.internal.example.com:9096",
]
TF_MSK = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/example/4e4f1d7a-0b3c-4d2e-9f8a-7b6c5d4e3f2a-1"

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "sqs.yaml": [
        {
            "FunctionName": LAMBDA + "order-events-processor",
            "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:order-events",
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 100},
            "FilterCriteria": {
                "Filters": [
                    {
                        "Pattern": pattern(
                            {
                                "body": {
                                    "status": ["created", "paid"],
                                    "total": [{"numeric": [">", 0]}],
                                }
                            }
                        )
                    },
                    {"Pattern": pattern({"body": {"priority": ["high"]}})},
                ]
            },
            "KMSKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "MetricsConfig": {"Metrics": ["EventCount"]},
            "Tags": {"team": "checkout", "cost-center": "4711"},
        },
        {
            "FunctionName": LAMBDA + "order-events-processor",
            "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:refund-requests",
            "BatchSize": 10,
            "ProvisionedPollerConfig": {"MinimumPollers": 2, "MaximumPollers": 20},
            "Enabled": False,
        },
    ],
    "sqs-fifo.yaml": [
        {
            "FunctionName": LAMBDA + "ledger-writer:live",
            "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ledger-entries.fifo",
            "BatchSize": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 10},
            "Tags": {"team": "finance"},
        }
    ],
    "kinesis.yaml": [
        {
            "FunctionName": LAMBDA + "clickstream-aggregator",
            "EventSourceArn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clickstream",
            "StartingPosition": "LATEST",
            "BatchSize": 500,
            "MaximumBatchingWindowInSeconds": 10,
            "ParallelizationFactor": 2,
            "TumblingWindowInSeconds": 300,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {
                "OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:clickstream-dlq"}
            },
            "FilterCriteria": {
                "Filters": [{"Pattern": pattern({"data": {"event_type": ["click", "view"]}})}]
            },
            # from the file's defaults section
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 5,
            "MaximumRecordAgeInSeconds": 3600,
        },
        {
            "FunctionName": LAMBDA + "clickstream-archiver",
            "EventSourceArn": (
                f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clickstream/consumer/archiver:1700000000"
            ),
            "StartingPosition": "AT_TIMESTAMP",
            "StartingPositionTimestamp": "2025-01-01T00:00:00Z",
            "BatchSize": 1000,
            "MaximumRetryAttempts": -1,  # the mapping's own value wins over the default
            "MaximumRecordAgeInSeconds": 86400,
            "BisectBatchOnFunctionError": True,
            "DestinationConfig": {
                "OnFailure": {"Destination": "arn:aws:s3:::clickstream-archiver-failures"}
            },
            "MetricsConfig": {"Metrics": ["EventCount"]},
        },
    ],
    "dynamodb.yaml": [
        {
            "FunctionName": LAMBDA + "cart-projector",
            "EventSourceArn": (
                f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/carts/stream/2025-01-15T10:20:30.123"
            ),
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 200,
            "MaximumBatchingWindowInSeconds": 1,
            "ParallelizationFactor": 4,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 3,
            "MaximumRecordAgeInSeconds": 21600,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {
                "OnFailure": {
                    "Destination": f"arn:aws:sns:{REGION}:{ACCOUNT}:cart-projector-failures"
                }
            },
            "FilterCriteria": {
                "Filters": [
                    {
                        "Pattern": pattern(
                            {
                                "eventName": ["INSERT", "MODIFY"],
                                "dynamodb": {
                                    "NewImage": {"itemCount": {"N": [{"anything-but": ["0"]}]}}
                                },
                            }
                        )
                    }
                ]
            },
            "Tags": {"team": "storefront"},
        }
    ],
    "msk.yaml": [
        {
            "FunctionName": LAMBDA + "payments-consumer",
            "EventSourceArn": MSK_PAYMENTS,
            "Topics": ["payments"],
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 500,
            "MaximumBatchingWindowInSeconds": 2,
            "AmazonManagedKafkaEventSourceConfig": {
                "ConsumerGroupId": "payments-lambda",
                "SchemaRegistryConfig": {
                    "SchemaRegistryURI": f"arn:aws:glue:{REGION}:{ACCOUNT}:registry/payments",
                    "EventRecordFormat": "JSON",
                    "SchemaValidationConfigs": [{"Attribute": "VALUE"}],
                },
            },
            "SourceAccessConfigurations": [
                {"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET + "AmazonMSK_payments-lambda-Ab12Cd"}
            ],
            "ProvisionedPollerConfig": {"MinimumPollers": 2, "MaximumPollers": 50},
            "MaximumRetryAttempts": 3,
            "BisectBatchOnFunctionError": True,
            "MaximumRecordAgeInSeconds": 3600,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {"OnFailure": {"Destination": "kafka://payments-failed"}},
            "MetricsConfig": {"Metrics": ["EventCount", "ErrorCount", "KafkaMetrics"]},
            "LoggingConfig": {"SystemLogLevel": "WARN"},
            "Tags": {"team": "payments"},
        },
        {
            "FunctionName": LAMBDA + "payments-consumer",
            "EventSourceArn": MSK_PAYMENTS,
            "Topics": ["refunds"],
            "StartingPosition": "AT_TIMESTAMP",
            "StartingPositionTimestamp": "2025-01-01T00:00:00Z",
            "AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": "refunds-lambda"},
            "FilterCriteria": {
                "Filters": [{"Pattern": pattern({"value": {"currency": ["EUR", "USD"]}})}]
            },
        },
    ],
    "self-managed-kafka.yaml": [
        {
            "FunctionName": LAMBDA + "inventory-sync",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": SMK_BROKERS}},
            "Topics": ["inventory-updates"],
            "StartingPosition": "LATEST",
            "BatchSize": 250,
            "MaximumBatchingWindowInSeconds": 1,
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "inventory-sync"},
            "SourceAccessConfigurations": [
                {"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET + "kafka/inventory-sync-Xy12Ab"},
                {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": SECRET + "kafka/private-ca-Cd34Ef"},
                {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0a1b2c3d4e5f60718"},
                {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0f9e8d7c6b5a43210"},
                {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123456789abcdef0"},
            ],
            "ProvisionedPollerConfig": {
                "MinimumPollers": 1,
                "MaximumPollers": 10,
                "PollerGroupName": "inventory",
            },
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {
                "OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:inventory-sync-dlq"}
            },
        },
        {
            "FunctionName": LAMBDA + "inventory-sync",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": SMK_BROKERS}},
            "Topics": ["inventory-snapshots"],
            "SelfManagedKafkaEventSourceConfig": {
                "SchemaRegistryConfig": {
                    "SchemaRegistryURI": "https://schema-registry.internal.example.com:8081",
                    "EventRecordFormat": "SOURCE",
                    "AccessConfigs": [
                        {"Type": "BASIC_AUTH", "URI": SECRET + "kafka/schema-registry-Gh56Ij"}
                    ],
                    "SchemaValidationConfigs": [{"Attribute": "KEY"}, {"Attribute": "VALUE"}],
                }
            },
            "SourceAccessConfigurations": [
                {"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET + "kafka/inventory-sync-Xy12Ab"},
                {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0a1b2c3d4e5f60718"},
                {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123456789abcdef0"},
            ],
        },
    ],
    "activemq.yaml": [
        {
            "FunctionName": LAMBDA + "shipment-notifier",
            "EventSourceArn": (
                f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:logistics:b-9b5e0f1c-3d2a-4e6f-8a7b-1c2d3e4f5a6b"
            ),
            "Queues": ["shipments.dispatched"],
            "BatchSize": 50,
            "MaximumBatchingWindowInSeconds": 3,
            "SourceAccessConfigurations": [
                {"Type": "BASIC_AUTH", "URI": SECRET + "mq/shipment-notifier-Qr78St"}
            ],
            "Tags": {"team": "logistics"},
        }
    ],
    "rabbitmq.yaml": [
        {
            "FunctionName": LAMBDA + "email-dispatcher",
            "EventSourceArn": (
                f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:messaging:b-4f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8"
            ),
            "Queues": ["outbound-email"],
            "BatchSize": 20,
            "SourceAccessConfigurations": [
                {"Type": "BASIC_AUTH", "URI": SECRET + "mq/email-dispatcher-Uv90Wx"},
                {"Type": "VIRTUAL_HOST", "URI": "/production"},
            ],
            "FilterCriteria": {
                "Filters": [{"Pattern": pattern({"data": {"priority": ["high", "normal"]}})}]
            },
        }
    ],
    "documentdb.yaml": [
        {
            "FunctionName": LAMBDA + "customer-audit-log",
            "EventSourceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:customers-docdb",
            "StartingPosition": "LATEST",
            "BatchSize": 50,
            "MaximumBatchingWindowInSeconds": 2,
            "DocumentDBEventSourceConfig": {
                "DatabaseName": "crm",
                "CollectionName": "customers",
                "FullDocument": "UpdateLookup",
            },
            "SourceAccessConfigurations": [
                {"Type": "BASIC_AUTH", "URI": SECRET + "docdb/audit-reader-Yz12Ab"}
            ],
            "Tags": {"team": "crm", "data-classification": "confidential"},
        }
    ],
    "terraform-seed-examples.yaml": [
        # DynamoDB Stream
        {
            "FunctionName": LAMBDA + "example-dynamodb",
            "EventSourceArn": (
                f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/example/stream/2025-01-01T00:00:00.000"
            ),
            "StartingPosition": "LATEST",
            "Tags": {"Name": "dynamodb-stream-mapping"},
        },
        # Kinesis Stream
        {
            "FunctionName": LAMBDA + "example-kinesis",
            "EventSourceArn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/example",
            "StartingPosition": "LATEST",
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 5,
            "ParallelizationFactor": 2,
            "DestinationConfig": {
                "OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"}
            },
        },
        # SQS Queue
        {
            "FunctionName": LAMBDA + "example-sqs",
            "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:example",
            "BatchSize": 10,
            "ScalingConfig": {"MaximumConcurrency": 100},
        },
        # SQS with Event Filtering
        {
            "FunctionName": LAMBDA + "example-sqs-filtering",
            "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:example",
            "FilterCriteria": {
                "Filters": [
                    {
                        "Pattern": pattern(
                            {
                                "body": {
                                    "Temperature": [{"numeric": [">", 0, "<=", 100]}],
                                    "Location": ["New York"],
                                }
                            }
                        )
                    }
                ]
            },
        },
        # Amazon MSK (one mapping per topic: AWS takes exactly one)
        {
            "FunctionName": LAMBDA + "example-msk",
            "EventSourceArn": TF_MSK,
            "Topics": ["orders"],
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 100,
            "AmazonManagedKafkaEventSourceConfig": {
                "ConsumerGroupId": "lambda-consumer-group-orders"
            },
        },
        {
            "FunctionName": LAMBDA + "example-msk",
            "EventSourceArn": TF_MSK,
            "Topics": ["inventory"],
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 100,
            "AmazonManagedKafkaEventSourceConfig": {
                "ConsumerGroupId": "lambda-consumer-group-inventory"
            },
        },
        # Self-Managed Apache Kafka
        {
            "FunctionName": LAMBDA + "example-self-managed-kafka",
            "SelfManagedEventSource": {
                "Endpoints": {
                    "KAFKA_BOOTSTRAP_SERVERS": [
                        "kafka1.example.com:9092",
                        "kafka2.example.com:9092",
                    ]
                }
            },
            "Topics": ["orders"],
            "StartingPosition": "TRIM_HORIZON",
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "lambda-consumer-group"},
            "SourceAccessConfigurations": [
                {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0a1b2c3d4e5f60001"},
                {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0a1b2c3d4e5f60002"},
                {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0a1b2c3d4e5f60003"},
            ],
            "ProvisionedPollerConfig": {"MaximumPollers": 100, "MinimumPollers": 10},
        },
        # Amazon MQ (ActiveMQ)
        {
            "FunctionName": LAMBDA + "example-activemq",
            "EventSourceArn": (
                f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:example-activemq:"
                "b-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
            ),
            "Queues": ["orders"],
            "BatchSize": 10,
            "SourceAccessConfigurations": [
                {"Type": "BASIC_AUTH", "URI": SECRET + "example-mq-AbCdEf"}
            ],
        },
        # Amazon MQ (RabbitMQ)
        {
            "FunctionName": LAMBDA + "example-rabbitmq",
            "EventSourceArn": (
                f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:example-rabbitmq:"
                "b-6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"
            ),
            "Queues": ["orders"],
            "BatchSize": 1,
            "SourceAccessConfigurations": [
                {"Type": "VIRTUAL_HOST", "URI": "/production"},
                {"Type": "BASIC_AUTH", "URI": SECRET + "example-mq-AbCdEf"},
            ],
        },
        # DocumentDB Change Stream
        {
            "FunctionName": LAMBDA + "example-documentdb",
            "EventSourceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:example",
            "StartingPosition": "LATEST",
            "DocumentDBEventSourceConfig": {
                "DatabaseName": "orders",
                "CollectionName": "transactions",
                "FullDocument": "UpdateLookup",
            },
            "SourceAccessConfigurations": [
                {"Type": "BASIC_AUTH", "URI": SECRET + "example-docdb-AbCdEf"}
            ],
        },
    ],
    "mappings.example.yaml": [
        {
            "FunctionName": LAMBDA + "orders-handler",
            "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders",
            "BatchSize": 50,
            "MaximumBatchingWindowInSeconds": 5,
            "ScalingConfig": {"MaximumConcurrency": 100},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "FilterCriteria": {
                "Filters": [
                    {
                        "Pattern": pattern(
                            {"body": {"Temperature": [{"numeric": [">", 0, "<=", 100]}]}}
                        )
                    }
                ]
            },
        },
        {
            "FunctionName": LAMBDA + "orders-handler",
            "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-priority.fifo",
            "BatchSize": 10,
        },
        {
            "FunctionName": LAMBDA + "clicks-handler:live",
            "EventSourceArn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks",
            "StartingPosition": "LATEST",
            "ParallelizationFactor": 2,
            "DestinationConfig": {
                "OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:clicks-dlq"}
            },
            "MaximumRetryAttempts": 3,  # the file's default reaches stream mappings only
        },
        {
            "FunctionName": LAMBDA + "clicks-handler:live",
            "EventSourceArn": (
                f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/carts/stream/2024-01-01T00:00:00.000"
            ),
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 200,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 3,
        },
    ],
}


def test_every_kind_has_an_example() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert PER_KIND | {"terraform-seed-examples.yaml"} <= names
    assert set(EXPECTED) == {p.name for p in ALL_FILES}, "every example needs its expected calls"
    kinds = {m.kind for p in EXAMPLE_FILES if p.name in PER_KIND for m in load(p).mappings()}
    assert kinds == set(Kind)


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_example_validates(path: Path) -> None:
    spec = load(path)
    assert spec.mappings(), "an example should show at least one mapping"
    (spec_file,) = spec.files
    assert spec_file.region == REGION
    assert spec_file.account_id == ACCOUNT


def test_all_examples_validate_together() -> None:
    # One `esm validate -f examples/` run: no function is claimed by two files.
    spec = load_spec(EXAMPLE_FILES, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert len(spec.files) == len(EXAMPLE_FILES)


PER_KIND_FILES = [p for p in EXAMPLE_FILES if p.name in PER_KIND]


@pytest.mark.parametrize("path", PER_KIND_FILES, ids=ids(PER_KIND_FILES))
def test_per_kind_example_is_commented(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 5, "the examples double as documentation"


# -- JSON Schema (what an editor checks) ----------------------------------------------------------


def _as_editor_sees(value: Any) -> Any:
    """YAML timestamps become strings, as a YAML language server hands them to the schema."""
    if isinstance(value, dict):
        return {k: _as_editor_sees(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_editor_sees(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    schema = spec_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_example_matches_json_schema(path: Path, schema_validator: Any) -> None:
    document = _as_editor_sees(yaml.safe_load(path.read_text(encoding="utf-8")))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in schema_validator.iter_errors(document)
    ]
    assert errors == []


def test_json_schema_is_not_vacuous(schema_validator: Any) -> None:
    document = yaml.safe_load((EXAMPLES / "msk.yaml").read_text(encoding="utf-8"))
    document["functions"]["payments-consumer"][0]["topic"] = "payments"  # misspelt key
    document["functions"]["payments-consumer"][1]["batch_size"] = 0
    assert len(list(schema_validator.iter_errors(_as_editor_sees(document)))) == 2


# -- planning against an empty account ------------------------------------------------------------


@pytest.fixture(scope="module")
def create_input_validator() -> Any:
    client = boto3.client(
        "lambda", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    shape = client.meta.service_model.operation_model("CreateEventSourceMapping").input_shape

    def check(request: dict[str, Any]) -> None:
        report = ParamValidator().validate(request, shape)
        assert not report.has_errors(), report.generate_report()

    return check


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_example_plans_exact_create_requests(path: Path, create_input_validator: Any) -> None:
    plan = plan_on_empty_account(path)
    spec = load(path)

    assert {c.action for c in plan.changes} == {"create"}
    assert plan.summary()["create"] == len(spec.mappings())
    for change in plan.changes:
        assert change.uuid is None
        assert change.update_request is None and change.tag_changes is None
        assert change.create_request is not None
        assert change.create_request["FunctionName"] == change.function_arn
        create_input_validator(change.create_request)

    def key(request: dict[str, Any]) -> str:
        return json.dumps(request, sort_keys=True)

    # Filter patterns compare by meaning; everything else must be exactly what AWS is sent.
    got = sorted((_patterns_parsed(unordered(c.create_request)) for c in plan.changes), key=key)
    want = sorted((_patterns_parsed(unordered(r)) for r in EXPECTED[path.name]), key=key)
    assert got == want


def _patterns_parsed(request: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(request)
    for f in (out.get("FilterCriteria") or {}).get("Filters", []):
        f["Pattern"] = json.loads(f["Pattern"])
    return out


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_example_filter_patterns_are_json_strings(path: Path) -> None:
    for change in plan_on_empty_account(path).changes:
        for f in (change.create_request.get("FilterCriteria") or {}).get("Filters", []):
            assert isinstance(f["Pattern"], str)
            assert isinstance(json.loads(f["Pattern"]), dict)


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_example_identity_shapes(path: Path) -> None:
    for change in plan_on_empty_account(path).changes:
        request = change.create_request
        # Exactly one way to name the source.
        assert ("EventSourceArn" in request) != ("SelfManagedEventSource" in request)
        servers = request.get("SelfManagedEventSource", {}).get("Endpoints", {})
        if servers:
            assert list(servers) == ["KAFKA_BOOTSTRAP_SERVERS"]
            brokers = servers["KAFKA_BOOTSTRAP_SERVERS"]
            assert brokers == sorted(brokers), "sent sorted, as AWS returns them"
        for key in ("Topics", "Queues"):
            assert len(request.get(key, ["x"])) == 1
        entries = request.get("SourceAccessConfigurations", [])
        assert all(set(e) == {"Type", "URI"} for e in entries)
        if "Queues" in request or "DocumentDBEventSourceConfig" in request:
            assert [e["Type"] for e in entries].count("BASIC_AUTH") == 1


def test_msk_example_request_shape() -> None:
    plan = plan_on_empty_account(EXAMPLES / "msk.yaml")
    payments = next(c.create_request for c in plan.changes if c.event_source.endswith("#payments"))
    assert payments["EventSourceArn"] == MSK_PAYMENTS
    assert payments["Topics"] == ["payments"]
    assert payments["StartingPosition"] == "TRIM_HORIZON"
    assert payments["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == "payments-lambda"
    assert "SelfManagedKafkaEventSourceConfig" not in payments


def test_self_managed_example_request_shape() -> None:
    plan = plan_on_empty_account(EXAMPLES / "self-managed-kafka.yaml")
    for change in plan.changes:
        request = change.create_request
        assert "EventSourceArn" not in request
        assert request["SelfManagedEventSource"] == {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": SMK_BROKERS}  # sorted, though written 2,1,3
        }
        assert request["SourceAccessConfigurations"]
        assert "AmazonManagedKafkaEventSourceConfig" not in request


@pytest.mark.parametrize(
    ("name", "types"),
    [
        ("activemq.yaml", ["BASIC_AUTH"]),
        ("rabbitmq.yaml", ["BASIC_AUTH", "VIRTUAL_HOST"]),
        ("documentdb.yaml", ["BASIC_AUTH"]),
    ],
)
def test_mq_and_documentdb_example_access_entries(name: str, types: list[str]) -> None:
    (change,) = plan_on_empty_account(EXAMPLES / name).changes
    entries = change.create_request["SourceAccessConfigurations"]
    assert sorted(e["Type"] for e in entries) == types
    basic = next(e for e in entries if e["Type"] == "BASIC_AUTH")
    assert basic["URI"].startswith(SECRET)


def test_documentdb_example_request_shape() -> None:
    (change,) = plan_on_empty_account(EXAMPLES / "documentdb.yaml").changes
    assert change.create_request["DocumentDBEventSourceConfig"] == {
        "DatabaseName": "crm",
        "CollectionName": "customers",
        "FullDocument": "UpdateLookup",
    }


# -- the Terraform page's examples ---------------------------------------------------------------


def test_terraform_seed_translates_every_example_usage_block() -> None:
    if not SEED_002:
        pytest.skip("reference seed 002 is not on this machine")
    text = SEED_002[0].read_text(encoding="utf-8")
    usage = text.split("## Example Usage", 1)[1].split("\n## ", 1)[0]
    titles = re.findall(r"^### (.+)$", usage, flags=re.M)
    assert len(titles) == 9
    translation = (EXAMPLES / "terraform-seed-examples.yaml").read_text(encoding="utf-8")
    for title in titles:
        assert f"# --- {title} " in translation, title
    # Every Terraform block is at least one mapping (MSK's two topics are two).
    assert len(load(EXAMPLES / "terraform-seed-examples.yaml").mappings()) == len(titles) + 1


def test_terraform_seed_adaptations_are_explained() -> None:
    text = (EXAMPLES / "terraform-seed-examples.yaml").read_text(encoding="utf-8")
    assert "ADAPTED" in text
    assert "exactly" in text and "one topic" in text


# -- after apply, the examples show no drift ------------------------------------------------------


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_example_has_no_changes_once_applied(path: Path) -> None:
    functions = managed(load(path))
    first = diff(functions, [])
    # AWS holds what was created, with its defaults, and the tags it was created with.
    live = [
        live_mapping(
            readback_of_create(c.create_request, U(str(i))), c.create_request.get("Tags", {})
        )
        for i, c in enumerate(first.changes)
    ]
    second = diff(functions, live)
    assert second.changes == [], [c.to_json() for c in second.changes]
