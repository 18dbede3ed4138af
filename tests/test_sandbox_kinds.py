"""The sandbox hosts every source kind, answering as AWS does (reference A.4, A.5, B).

- every file in examples/ runs through `esm demo` and its second plan says No changes.;
- the CLI creates, updates and deletes a mapping of each kind through a sandbox;
- the sandbox's per-kind answers: consumer group = the mapping's UUID, brokers sorted, no
  batching-window key where AWS shows none, stream-style defaults, conflicts, states, paging,
  tags, qualified FunctionArn.

The sandbox's record of AWS's answers is its own (esm_reconcile/sandbox/aws_answers.py), never
the diff's tables, so these runs check the diff against AWS's answers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from esm_reconcile.sandbox import aws_answers, sandbox
from tests.cli_runner import run_esm
from tests.conftest import REPO_ROOT

pytest.importorskip("moto.server")

REGION = "us-east-1"
ACCOUNT = "123456789012"
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))

LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
FIFO = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ledger.fifo"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
CONSUMER = f"{STREAM}/consumer/archiver:1700000000"
TABLE_STREAM = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/carts/stream/2025-01-15T10:20:30.123"
MSK = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/payments/7c9e6679-7425-40de-944b-e07fc1f90ae7-2"
BROKER = f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:logistics:b-9b5e0f1c-3d2a-4e6f-8a7b-1c2d3e4f5a6b"
DOCDB = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:customers-docdb"
BROKERS = ["kafka-2.example.com:9096", "kafka-1.example.com:9096", "kafka-3.example.com:9096"]
SOURCES = [QUEUE, FIFO, STREAM, CONSUMER, TABLE_STREAM, MSK, BROKER, DOCDB]

SASL = [{"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET + "kafka/app-Ab12Cd"}]
BASIC = [{"Type": "BASIC_AUTH", "URI": SECRET + "mq/app-Ab12Cd"}]


def lam() -> Any:
    return boto3.client("lambda", region_name=REGION)


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response
    return (
        error["Error"]["Code"],
        error["Error"]["Message"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


# -- every example through `esm demo` --------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_demos_to_no_changes(path: Path) -> None:
    result = run_esm("demo", "-f", path)
    assert result.code == 0, result.output
    assert "Apply complete:" in result.out
    assert result.out.rstrip().endswith("No changes."), result.out


# -- the CLI creates, updates and deletes a mapping of each kind -----------------------------------

# kind: (function, mapping as first applied, the one field changed in place, what Get shows then)
KINDS: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "sqs": (
        "orders-fn",
        {"event_source_arn": QUEUE, "batch_size": 5},
        {"batch_size": 7},
        {"BatchSize": 7},
    ),
    "sqs-fifo": (
        "ledger-fn:live",
        {"event_source_arn": FIFO, "batch_size": 5},
        {"batch_size": 3},
        {"BatchSize": 3},
    ),
    "kinesis": (
        "clicks-fn",
        {"event_source_arn": STREAM, "starting_position": "LATEST"},
        {"maximum_retry_attempts": 4},
        {"MaximumRetryAttempts": 4},
    ),
    "kinesis-consumer": (
        "archiver-fn",
        {"event_source_arn": CONSUMER, "starting_position": "TRIM_HORIZON"},
        {"parallelization_factor": 3},
        {"ParallelizationFactor": 3},
    ),
    "dynamodb": (
        "carts-fn",
        {"event_source_arn": TABLE_STREAM, "starting_position": "LATEST"},
        {"batch_size": 250},
        {"BatchSize": 250},
    ),
    "msk": (
        "payments-fn",
        {"event_source_arn": MSK, "topics": ["payments"], "starting_position": "TRIM_HORIZON"},
        {"batch_size": 50},
        {"BatchSize": 50},
    ),
    "self-managed-kafka": (
        "inventory-fn",
        {
            "self_managed_event_source": {"endpoints": {"KAFKA_BOOTSTRAP_SERVERS": BROKERS}},
            "topics": ["inventory"],
            "source_access_configurations": [
                {"type": "SASL_SCRAM_512_AUTH", "uri": SECRET + "k-Ab12Cd"}
            ],
        },
        {"maximum_batching_window_in_seconds": 2},
        {"MaximumBatchingWindowInSeconds": 2},
    ),
    "activemq": (
        "shipments-fn",
        {
            "event_source_arn": BROKER,
            "queues": ["shipments"],
            "source_access_configurations": [{"type": "BASIC_AUTH", "uri": SECRET + "mq/a-Ab12Cd"}],
        },
        {"source_access_configurations": [{"type": "BASIC_AUTH", "uri": SECRET + "mq/b-Ef34Gh"}]},
        {"SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": SECRET + "mq/b-Ef34Gh"}]},
    ),
    "rabbitmq": (
        "email-fn",
        {
            "event_source_arn": BROKER,
            "queues": ["outbound-email"],
            "source_access_configurations": [
                {"type": "BASIC_AUTH", "uri": SECRET + "mq/a-Ab12Cd"},
                {"type": "VIRTUAL_HOST", "uri": "/production"},
            ],
        },
        {
            "source_access_configurations": [
                {"type": "BASIC_AUTH", "uri": SECRET + "mq/b-Ef34Gh"},
                {"type": "VIRTUAL_HOST", "uri": "/production"},
            ]
        },
        # The virtual host, which Update cannot send, stays as created.
        {
            "SourceAccessConfigurations": [
                {"Type": "BASIC_AUTH", "URI": SECRET + "mq/b-Ef34Gh"},
                {"Type": "VIRTUAL_HOST", "URI": "/production"},
            ]
        },
    ),
    "documentdb": (
        "audit-fn",
        {
            "event_source_arn": DOCDB,
            "starting_position": "LATEST",
            "document_db_event_source_config": {"database_name": "crm"},
            "source_access_configurations": [{"type": "BASIC_AUTH", "uri": SECRET + "d-Ab12Cd"}],
        },
        {
            "document_db_event_source_config": {
                "database_name": "crm",
                "full_document": "UpdateLookup",
            }
        },
        {"DocumentDBEventSourceConfig": {"DatabaseName": "crm", "FullDocument": "UpdateLookup"}},
    ),
}


def write_spec(path: Path, function: str, mappings: list[dict[str, Any]]) -> Path:
    spec = {
        "version": 1,
        "region": REGION,
        "account_id": ACCOUNT,
        "functions": {function: mappings},
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def no_changes(spec: Path, url: str) -> None:
    result = run_esm("plan", "-f", spec, "--detailed-exitcode", endpoint=url)
    assert result.code == 0, result.output
    assert "No changes." in result.out


def only_mapping(function_arn: str) -> dict[str, Any]:
    found = [
        m
        for m in lam().list_event_source_mappings()["EventSourceMappings"]
        if m["FunctionArn"] == function_arn
    ]
    assert len(found) == 1, found
    return lam().get_event_source_mapping(UUID=found[0]["UUID"])


def sorted_access(mapping: dict[str, Any]) -> dict[str, Any]:
    if "SourceAccessConfigurations" in mapping:
        mapping = {
            **mapping,
            "SourceAccessConfigurations": sorted(
                mapping["SourceAccessConfigurations"], key=lambda e: e["Type"]
            ),
        }
    return mapping


@pytest.mark.parametrize("kind", list(KINDS))
def test_cli_creates_updates_and_deletes_each_kind(kind: str, tmp_path: Path) -> None:
    function, mapping, change, shown = KINDS[kind]
    function_arn = LAMBDA + function
    spec = tmp_path / "spec.yaml"
    with sandbox([function], SOURCES, REGION, account_id=ACCOUNT) as url:
        write_spec(spec, function, [mapping])
        created = run_esm("apply", "--auto-approve", "-f", spec, endpoint=url)
        assert created.code == 0, created.output
        assert "1 created" in created.out
        no_changes(spec, url)
        uuid = only_mapping(function_arn)["UUID"]

        write_spec(spec, function, [{**mapping, **change}])
        updated = run_esm("apply", "--auto-approve", "-f", spec, endpoint=url)
        assert updated.code == 0, updated.output
        assert "1 updated" in updated.out and "0 replaced" in updated.out, updated.out
        got = only_mapping(function_arn)
        assert got["UUID"] == uuid  # in place
        assert sorted_access({k: got.get(k) for k in shown}) == sorted_access(shown)
        no_changes(spec, url)

        write_spec(spec, function, [])
        deleted = run_esm("apply", "--auto-approve", "-f", spec, endpoint=url)
        assert deleted.code == 0, deleted.output
        assert "1 deleted" in deleted.out
        assert error_of(lam().get_event_source_mapping, UUID=uuid)[0] == "ResourceNotFoundException"
        no_changes(spec, url)


# -- the per-kind answers ---------------------------------------------------------------------


@pytest.fixture
def box() -> Any:
    with sandbox(["fn", "fn:live", "other"], SOURCES, REGION, account_id=ACCOUNT) as url:
        yield url


def create_smk(**extra: Any) -> dict[str, Any]:
    return lam().create_event_source_mapping(
        FunctionName="fn",
        SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": BROKERS}},
        Topics=["inventory"],
        SourceAccessConfigurations=SASL,
        **extra,
    )


def test_self_managed_kafka_answers_as_aws_recorded(box: str) -> None:
    created = create_smk()
    got = lam().get_event_source_mapping(UUID=created["UUID"])
    for answer in (created, got):
        assert answer["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": answer["UUID"]}
        assert answer["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"] == sorted(
            BROKERS
        )
        assert answer["StartingPosition"] == "TRIM_HORIZON"
        assert answer["BatchSize"] == 100
        assert answer["StateTransitionReason"] == "USER_INITIATED"
        assert answer["MaximumRetryAttempts"] == -1 and answer["MaximumRecordAgeInSeconds"] == -1
        for absent in (
            "MaximumBatchingWindowInSeconds",
            "FunctionResponseTypes",
            "DestinationConfig",
        ):
            assert absent not in answer, absent
        assert answer["FunctionArn"] == LAMBDA + "fn"
        assert answer["EventSourceMappingArn"] == (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{answer['UUID']}"
        )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202


def test_msk_consumer_group_defaults_to_uuid_and_keeps_a_given_one(box: str) -> None:
    plain = lam().create_event_source_mapping(
        FunctionName="fn", EventSourceArn=MSK, Topics=["a"], StartingPosition="LATEST"
    )
    assert plain["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": plain["UUID"]}
    registry = {
        "SchemaRegistryURI": "arn:aws:glue:us-east-1:123456789012:registry/r",
        "EventRecordFormat": "JSON",
    }
    given = lam().create_event_source_mapping(
        FunctionName="fn",
        EventSourceArn=MSK,
        Topics=["b"],
        StartingPosition="LATEST",
        AmazonManagedKafkaEventSourceConfig={"SchemaRegistryConfig": registry},
    )
    # Only the registry given: AWS still fills the group with the UUID.
    config = given["AmazonManagedKafkaEventSourceConfig"]
    assert config["ConsumerGroupId"] == given["UUID"]
    assert config["SchemaRegistryConfig"]["SchemaRegistryURI"] == registry["SchemaRegistryURI"]
    # An Update of the registry keeps the group; changing the group is refused (create-only).
    updated = lam().update_event_source_mapping(
        UUID=given["UUID"],
        AmazonManagedKafkaEventSourceConfig={
            "SchemaRegistryConfig": {**registry, "EventRecordFormat": "SOURCE"}
        },
    )
    assert updated["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == given["UUID"]
    code, _, status = error_of(
        lam().update_event_source_mapping,
        UUID=given["UUID"],
        AmazonManagedKafkaEventSourceConfig={"ConsumerGroupId": "other"},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)


@pytest.mark.parametrize(
    "request_",
    [
        {"EventSourceArn": BROKER, "Queues": ["q"], "SourceAccessConfigurations": BASIC},
        {
            "EventSourceArn": DOCDB,
            "StartingPosition": "LATEST",
            "DocumentDBEventSourceConfig": {"DatabaseName": "crm"},
            "SourceAccessConfigurations": BASIC,
        },
        {"EventSourceArn": MSK, "Topics": ["t"], "StartingPosition": "LATEST"},
    ],
    ids=["mq", "documentdb", "msk"],
)
def test_no_batching_window_key_where_aws_shows_none(box: str, request_: dict[str, Any]) -> None:
    created = lam().create_event_source_mapping(FunctionName="fn", **request_)
    got = lam().get_event_source_mapping(UUID=created["UUID"])
    assert "MaximumBatchingWindowInSeconds" not in got
    assert got["BatchSize"] == 100
    # Once set, the window is shown (and there is no way back to the 500 ms default).
    updated = lam().update_event_source_mapping(
        UUID=created["UUID"], MaximumBatchingWindowInSeconds=3
    )
    assert updated["MaximumBatchingWindowInSeconds"] == 3


def test_documentdb_full_document_defaults(box: str) -> None:
    created = lam().create_event_source_mapping(
        FunctionName="fn",
        EventSourceArn=DOCDB,
        StartingPosition="LATEST",
        DocumentDBEventSourceConfig={"DatabaseName": "crm"},
        SourceAccessConfigurations=BASIC,
    )
    assert created["DocumentDBEventSourceConfig"] == {
        "DatabaseName": "crm",
        "FullDocument": "Default",
    }


def test_kinesis_consumer_and_moto_kinds_carry_stream_and_sqs_defaults(box: str) -> None:
    consumer = lam().create_event_source_mapping(
        FunctionName="fn", EventSourceArn=CONSUMER, StartingPosition="LATEST"
    )
    stream = lam().create_event_source_mapping(
        FunctionName="fn", EventSourceArn=STREAM, StartingPosition="LATEST"
    )
    queue = lam().create_event_source_mapping(FunctionName="fn", EventSourceArn=QUEUE)
    for mapping in (consumer, stream):
        got = lam().get_event_source_mapping(UUID=mapping["UUID"])
        assert {k: got.get(k) for k in aws_answers._STREAM_DEFAULTS} == aws_answers._STREAM_DEFAULTS
        assert got["StateTransitionReason"] == "User action"
    got = lam().get_event_source_mapping(UUID=queue["UUID"])
    assert (
        got["BatchSize"],
        got["MaximumBatchingWindowInSeconds"],
        got["FunctionResponseTypes"],
    ) == (10, 0, [])
    assert got["StateTransitionReason"] == "USER_INITIATED"
    for absent in (
        "DestinationConfig",
        "ParallelizationFactor",
        "MaximumRetryAttempts",
        "StartingPosition",
    ):
        assert absent not in got


def test_refusals_in_aws_words(box: str) -> None:
    create = lam().create_event_source_mapping
    assert error_of(create, FunctionName="fn")[:2] == (
        "InvalidParameterValueException",
        "Unrecognized event source.",
    )
    assert (
        error_of(
            create,
            FunctionName="fn",
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": BROKERS}},
            Topics=["t"],
        )[1]
        == "Required 'sourceAccessConfigurations' parameter is missing."
    )
    assert error_of(
        create, FunctionName="missing", EventSourceArn=MSK, Topics=["t"], StartingPosition="LATEST"
    ) == (
        "InvalidParameterValueException",
        "Function does not exist",
        400,
    )
    assert (
        error_of(
            create, FunctionName="fn", EventSourceArn=BROKER, Queues=["q"], ParallelizationFactor=2
        )[1]
        == "Unsupported ParallelizationFactor parameter for given event source mapping type."
    )
    assert (
        error_of(
            create,
            FunctionName="fn",
            EventSourceArn=MSK,
            Topics=["t"],
            StartingPosition="LATEST",
            DestinationConfig={"OnFailure": {}},
        )[1]
        == "The Destination field is required for an OnFailure configuration."
    )
    rabbit = create(
        FunctionName="fn",
        EventSourceArn=BROKER,
        Queues=["q"],
        SourceAccessConfigurations=[*BASIC, {"Type": "VIRTUAL_HOST", "URI": "/v"}],
    )
    assert (
        error_of(
            lam().update_event_source_mapping,
            UUID=rabbit["UUID"],
            SourceAccessConfigurations=[{"Type": "VIRTUAL_HOST", "URI": "/w"}],
        )[0]
        == "InvalidParameterValueException"
    )


def test_duplicates_conflict_with_aws_messages(box: str) -> None:
    first = create_smk()
    # A broker list that merely overlaps is the same source [AWS-rec 2024].
    code, message, status = error_of(
        lam().create_event_source_mapping,
        FunctionName="fn",
        SelfManagedEventSource={
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka-1.example.com:9096"]}
        },
        Topics=["inventory"],
        SourceAccessConfigurations=SASL,
    )
    assert (code, status) == ("ResourceConflictException", 409)
    assert message.startswith(
        'An event source mapping with event source ("kafka-1.example.com:9096")'
    )
    assert message.endswith(f"existing mapping with UUID {first['UUID']}")
    msk = lam().create_event_source_mapping(
        FunctionName="fn:live", EventSourceArn=MSK, Topics=["t"], StartingPosition="LATEST"
    )
    code, message, _ = error_of(
        lam().create_event_source_mapping,
        FunctionName="fn:live",
        EventSourceArn=MSK,
        Topics=["t"],
        StartingPosition="LATEST",
    )
    assert message == (
        f'An event source mapping with event source arn ("{MSK}"), function ("{LAMBDA}fn:live") and '
        f'topics ("t") already exists. Please update or delete the existing mapping with UUID {msk["UUID"]}'
    )
    # Another topic, or the unqualified function, is another mapping.
    lam().create_event_source_mapping(
        FunctionName="fn:live", EventSourceArn=MSK, Topics=["u"], StartingPosition="LATEST"
    )
    lam().create_event_source_mapping(
        FunctionName="fn", EventSourceArn=MSK, Topics=["t"], StartingPosition="LATEST"
    )
    # A consumer group is unique per Kafka source.
    lam().create_event_source_mapping(
        FunctionName="other",
        EventSourceArn=MSK,
        Topics=["v"],
        StartingPosition="LATEST",
        AmazonManagedKafkaEventSourceConfig={"ConsumerGroupId": "g"},
    )
    code, message, _ = error_of(
        lam().create_event_source_mapping,
        FunctionName="fn",
        EventSourceArn=MSK,
        Topics=["w"],
        StartingPosition="LATEST",
        AmazonManagedKafkaEventSourceConfig={"ConsumerGroupId": "g"},
    )
    assert code == "ResourceConflictException" and 'consumerGroupId ("g")' in message


def test_alias_function_arn_stays_qualified_and_lists_filter(box: str) -> None:
    created = lam().create_event_source_mapping(
        FunctionName="fn:live",
        EventSourceArn=BROKER,
        Queues=["q"],
        SourceAccessConfigurations=BASIC,
    )
    assert created["FunctionArn"] == LAMBDA + "fn:live"
    lam().create_event_source_mapping(FunctionName="fn", EventSourceArn=QUEUE)
    by_source = lam().list_event_source_mappings(EventSourceArn=BROKER)["EventSourceMappings"]
    assert [m["UUID"] for m in by_source] == [created["UUID"]]
    by_function = lam().list_event_source_mappings(FunctionName="fn:live")["EventSourceMappings"]
    assert [m["UUID"] for m in by_function] == [created["UUID"]]
    # Retargeting in place changes the FunctionArn.
    moved = lam().update_event_source_mapping(UUID=created["UUID"], FunctionName="other")
    assert moved["FunctionArn"] == LAMBDA + "other"


def test_paging_merges_hosted_with_moto_mappings_100_a_page(box: str) -> None:
    uuids = [lam().create_event_source_mapping(FunctionName="fn", EventSourceArn=QUEUE)["UUID"]]
    for n in range(120):
        uuids.append(
            lam().create_event_source_mapping(
                FunctionName="fn", EventSourceArn=MSK, Topics=[f"t{n}"], StartingPosition="LATEST"
            )["UUID"]
        )
    first = lam().list_event_source_mappings(MaxItems=1000)
    assert len(first["EventSourceMappings"]) == 100 and first["NextMarker"]
    pages = (
        lam()
        .get_paginator("list_event_source_mappings")
        .paginate(PaginationConfig={"PageSize": 50})
    )
    listed = [m["UUID"] for page in pages for m in page["EventSourceMappings"]]
    assert listed == uuids  # moto's first, then the hosted ones in creation order; stable


def test_tags_of_hosted_mappings(box: str) -> None:
    created = lam().create_event_source_mapping(
        FunctionName="fn",
        EventSourceArn=BROKER,
        Queues=["q"],
        SourceAccessConfigurations=BASIC,
        Tags={"team": "a"},
    )
    arn = created["EventSourceMappingArn"]
    assert "Tags" not in lam().get_event_source_mapping(UUID=created["UUID"])
    assert lam().list_tags(Resource=arn)["Tags"] == {"team": "a"}
    lam().tag_resource(Resource=arn, Tags={"env": "prod"})
    lam().untag_resource(Resource=arn, TagKeys=["team", "never-set"])
    assert lam().list_tags(Resource=arn)["Tags"] == {"env": "prod"}
    lam().delete_event_source_mapping(UUID=created["UUID"])
    assert error_of(lam().list_tags, Resource=arn)[0] == "ResourceNotFoundException"


def test_hosted_states_settle_like_aws() -> None:
    with sandbox(["fn"], [MSK], REGION, account_id=ACCOUNT, settle_s=0.3):
        created = lam().create_event_source_mapping(
            FunctionName="fn", EventSourceArn=MSK, Topics=["t"], StartingPosition="LATEST"
        )
        uuid = created["UUID"]
        assert created["State"] == "Creating"
        assert (
            error_of(lam().update_event_source_mapping, UUID=uuid, BatchSize=5)[0]
            == "ResourceInUseException"
        )
        time.sleep(0.35)
        assert lam().get_event_source_mapping(UUID=uuid)["State"] == "Enabled"
        assert lam().update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
        time.sleep(0.35)
        assert lam().get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
        deleting = lam().delete_event_source_mapping(UUID=uuid)
        assert deleting["State"] == "Deleting"
        assert lam().get_event_source_mapping(UUID=uuid)["State"] == "Deleting"
        # Still Deleting: the same mapping cannot be made again yet.
        code = error_of(
            lam().create_event_source_mapping,
            FunctionName="fn",
            EventSourceArn=MSK,
            Topics=["t"],
            StartingPosition="LATEST",
        )[0]
        assert code == "ResourceConflictException"
        time.sleep(0.35)
        assert error_of(lam().get_event_source_mapping, UUID=uuid)[0] == "ResourceNotFoundException"
        disabled = lam().create_event_source_mapping(
            FunctionName="fn",
            EventSourceArn=MSK,
            Topics=["t"],
            StartingPosition="LATEST",
            Enabled=False,
        )
        assert disabled["State"] == "Disabled"


def test_hosted_mappings_live_in_their_region() -> None:
    west = "eu-west-1"
    with sandbox(
        ["fn", f"arn:aws:lambda:{west}:{ACCOUNT}:function:fn"], [], REGION, account_id=ACCOUNT
    ):
        created = lam().create_event_source_mapping(
            FunctionName="fn", EventSourceArn=MSK, Topics=["t"], StartingPosition="LATEST"
        )
        other = boto3.client("lambda", region_name=west)
        assert other.list_event_source_mappings()["EventSourceMappings"] == []
        assert (
            error_of(other.get_event_source_mapping, UUID=created["UUID"])[0]
            == "ResourceNotFoundException"
        )


def test_answers_table_is_the_sandboxs_own() -> None:
    """The record of AWS's answers must not come from the diff's tables."""
    source = (REPO_ROOT / "esm_reconcile" / "sandbox" / "aws_answers.py").read_text()
    for module in ("rules", "normalize", "diff", "mapping_settings"):
        assert f"esm_reconcile.{module}" not in source.replace("`esm_reconcile.rules`", "").replace(
            "`esm_reconcile.normalize`", ""
        )
    record = aws_answers.created(
        aws_answers.SELF_MANAGED_KAFKA,
        {
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b:1", "a:1"]}},
            "Topics": ["t"],
            "SourceAccessConfigurations": SASL,
            "FunctionResponseTypes": [],
        },
        uuid="u-1",
        function_arn=LAMBDA + "fn",
        esm_arn="arn",
        now=0.0,
    )
    assert record["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"] == [
        "a:1",
        "b:1",
    ]
    assert record["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": "u-1"}
    assert "FunctionResponseTypes" not in record and "MaximumBatchingWindowInSeconds" not in record


def test_seeds_msk_cluster_mq_broker_consumer_and_secrets_with_the_specs_arns() -> None:
    secret = SECRET + "mq/app-Ab12Cd"
    with sandbox(["fn"], [*SOURCES, secret], REGION, account_id=ACCOUNT):
        assert (
            boto3.client("kafka").describe_cluster(ClusterArn=MSK)["ClusterInfo"]["ClusterName"]
            == "payments"
        )
        broker_id = BROKER.rsplit(":", 1)[1]
        assert boto3.client("mq").describe_broker(BrokerId=broker_id)["BrokerArn"] == BROKER
        assert boto3.client("secretsmanager").describe_secret(SecretId=secret)["Name"] == "mq/app"
        consumers = boto3.client("kinesis").list_stream_consumers(StreamARN=STREAM)["Consumers"]
        assert [c["ConsumerName"] for c in consumers] == ["archiver"]
