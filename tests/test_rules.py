"""rules.py against reference/aws-esm-semantics.md sections A.1-A.8 and the spec models, and a
few of the rule functions in checks/ that read its tables, called directly."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.session
import pytest
from botocore.validate import ParamValidator

from esm_reconcile import rules
from esm_reconcile.checks import (
    MAPPING_RULES,
    RuleContext,
    access,
    check_mapping,
    pollers,
    source,
    streams,
)
from esm_reconcile.checks.functions import function_ref_error
from esm_reconcile.model import kind_of_arn
from esm_reconcile.rules import Kind
from esm_reconcile.spec import MappingSettings, field_paths, to_api

FIELDS = set(MappingSettings.model_fields)

# -- A.1 kind detection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        ("arn:aws:sqs:us-east-1:123456789012:orders", Kind.SQS),
        ("arn:aws:sqs:us-east-1:123456789012:orders.fifo", Kind.SQS_FIFO),
        ("arn:aws:sqs:us-east-1:123456789012:fifo-orders", Kind.SQS),  # only the suffix counts
        ("arn:aws-cn:sqs:cn-north-1:123456789012:orders", Kind.SQS),
        ("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q.fifo", Kind.SQS_FIFO),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/clicks", Kind.KINESIS),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1", Kind.KINESIS),
        (
            "arn:aws:dynamodb:us-east-1:123456789012:table/carts/stream/2024-01-01T00:00:00.000",
            Kind.DYNAMODB,
        ),
        (
            "arn:aws:kafka:us-east-1:123456789012:cluster/x/0b1c2d3e-1111-2222-3333-444455556666-1",
            Kind.MSK,
        ),
        ("arn:aws:kafka:us-east-1:123456789012:cluster/x/uuid", Kind.MSK),
        ("arn:aws:mq:us-east-1:123456789012:broker:name:b-1234-abcd", Kind.MQ),
        ("arn:aws:rds:us-east-1:123456789012:cluster:docdb-1", Kind.DOCUMENTDB),
    ],
)
def test_kind_of_arn(arn: str, kind: Kind) -> None:
    assert kind_of_arn(arn) is kind


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sns:us-east-1:123456789012:topic",
        "arn:aws:s3:::bucket",
        "arn:aws:dynamodb:us-east-1:123456789012:table/carts",  # a table, not its stream
        "arn:aws:rds:us-east-1:123456789012:db:instance-1",  # an instance, not a cluster
        "arn:aws:mq:us-east-1:123456789012:configuration:c-1",
        "arn:aws:lambda:us-east-1:123456789012:function:f",
        "orders",
        "",
        "arn:aws:sqs",
    ],
)
def test_unknown_arn_is_none(arn: str) -> None:
    assert kind_of_arn(arn) is None


# -- A.4 defaults ----------------------------------------------------------------------------------

# What AWS returns when a field is omitted, in spec form (reference A.4; Enabled from A.2).
# AWS's "empty" read-backs (FunctionResponseTypes [], DestinationConfig {"OnFailure": {}}) mean
# unset (reference 0.3), so they have no entry.
A4_SQS = {"enabled": True, "batch_size": 10, "maximum_batching_window_in_seconds": 0}
A4_STREAM = {
    "enabled": True,
    "batch_size": 100,
    "bisect_batch_on_function_error": False,
    "maximum_batching_window_in_seconds": 0,
    "maximum_record_age_in_seconds": -1,
    "maximum_retry_attempts": -1,
    "parallelization_factor": 1,
    "tumbling_window_in_seconds": 0,
}
# Keys A.4 lists as absent from an SQS read-back (so no default is compared for them).
A4_SQS_ABSENT = {
    "starting_position",
    "destination_config",
    "bisect_batch_on_function_error",
    "maximum_retry_attempts",
    "maximum_record_age_in_seconds",
    "parallelization_factor",
    "tumbling_window_in_seconds",
    "scaling_config",
    "filter_criteria",
    "kms_key_arn",
    "metrics_config",
    "function_response_types",
}


def test_sqs_defaults() -> None:
    assert rules.DEFAULTS[Kind.SQS] == A4_SQS


def test_sqs_fifo_defaults_are_sqs_defaults_for_the_fields_fifo_has() -> None:
    # A.4 records a FIFO queue with the same read-back; the window does not apply to FIFO (A.3).
    expected = {k: v for k, v in A4_SQS.items() if rules.applies(k, Kind.SQS_FIFO)}
    assert rules.DEFAULTS[Kind.SQS_FIFO] == expected == {"enabled": True, "batch_size": 10}


@pytest.mark.parametrize("kind", [Kind.SQS, Kind.SQS_FIFO])
def test_sqs_has_no_default_for_absent_keys(kind: Kind) -> None:
    assert not A4_SQS_ABSENT & set(rules.DEFAULTS[kind])


@pytest.mark.parametrize("kind", [Kind.KINESIS, Kind.DYNAMODB])
def test_stream_defaults(kind: Kind) -> None:
    assert rules.DEFAULTS[kind] == A4_STREAM
    assert "starting_position" not in rules.DEFAULTS[kind]  # "as given" (required)
    assert "destination_config" not in rules.DEFAULTS[kind]
    assert "function_response_types" not in rules.DEFAULTS[kind]


@pytest.mark.parametrize("kind", list(Kind))
def test_defaults_exist_apply_and_are_valid(kind: Kind) -> None:
    defaults = rules.defaults_for(kind)
    assert set(defaults) <= FIELDS
    assert all(rules.applies(f, kind) for f in defaults), defaults
    MappingSettings.model_validate(defaults)  # within the model's ranges and enums


# -- A.3 applicability for the kinds moto hosts ----------------------------------------------------

S, F, K, D = Kind.SQS, Kind.SQS_FIFO, Kind.KINESIS, Kind.DYNAMODB
A3 = {
    "event_source_arn": {S, F, K, D},
    "enabled": {S, F, K, D},
    "batch_size": {S, F, K, D},
    "tags": {S, F, K, D},
    "kms_key_arn": {S, F, K, D},
    "filter_criteria": {S, F, K, D},
    "function_response_types": {S, F, K, D},
    "metrics_config": {S, F, K, D},
    "maximum_batching_window_in_seconds": {S, K, D},
    "starting_position": {K, D},
    "starting_position_timestamp": {K},
    "parallelization_factor": {K, D},
    "tumbling_window_in_seconds": {K, D},
    "bisect_batch_on_function_error": {K, D},
    "maximum_retry_attempts": {K, D},
    "maximum_record_age_in_seconds": {K, D},
    "destination_config": {K, D},
    "scaling_config": {S, F},
    "provisioned_poller_config": {S, F},
    "logging_config": set(),
    "topics": set(),
    "queues": set(),
    "source_access_configurations": set(),
    "self_managed_event_source": set(),
    "amazon_managed_kafka_event_source_config": set(),
    "self_managed_kafka_event_source_config": set(),
    "document_db_event_source_config": set(),
}


def test_a3_table_covers_every_field() -> None:
    assert set(A3) == FIELDS


@pytest.mark.parametrize("field", sorted(A3))
def test_applicability_matches_reference(field: str) -> None:
    applies = {k for k in (S, F, K, D) if rules.applies(field, k)}
    assert applies == A3[field]


def test_required_fields() -> None:
    assert rules.REQUIRED.get(Kind.KINESIS) == ("starting_position",)
    assert rules.REQUIRED.get(Kind.DYNAMODB) == ("starting_position",)
    assert not rules.REQUIRED.get(Kind.SQS)
    assert not rules.REQUIRED.get(Kind.SQS_FIFO)


def test_fifo_batch_limit() -> None:
    assert rules.MAX_BATCH_SIZE[Kind.SQS_FIFO] == 10
    assert Kind.SQS not in rules.MAX_BATCH_SIZE


def test_filter_limit() -> None:
    assert rules.FILTER_LIMIT == 10


# -- tables name real fields -----------------------------------------------------------------------


def test_applies_to_keys_are_exactly_the_model_fields() -> None:
    assert set(rules.APPLIES_TO) == FIELDS


def test_applies_to_values_are_kinds() -> None:
    for field, kinds in rules.APPLIES_TO.items():
        assert kinds, field
        assert set(kinds) <= set(Kind), field


def test_clear_value_keys_are_fields() -> None:
    assert set(rules.CLEAR_VALUE) <= FIELDS


def test_clear_values_are_valid_update_parameters() -> None:
    """Each clearing value is API-shaped and passes botocore's own parameter validation."""
    service = botocore.session.get_session().get_service_model("lambda")
    shape = service.operation_model("UpdateEventSourceMapping").input_shape
    for field, value in rules.CLEAR_VALUE.items():
        alias = MappingSettings.model_fields[field].serialization_alias
        report = ParamValidator().validate(
            {"UUID": "14e0db71-5d35-4eb5-b481-8945cf9d10c2", alias: value}, shape
        )
        assert not report.has_errors(), (field, report.generate_report())


def test_clear_destination_is_not_the_rejected_empty_on_failure() -> None:
    # reference A.5: {"OnFailure": {}} → "The Destination field is required..."
    assert rules.CLEAR_VALUE["destination_config"] != {"OnFailure": {}}


@pytest.mark.parametrize(
    "table",
    ["IDENTITY_FIELDS", "REPLACEMENT_FIELDS"],
)
def test_field_sets_are_fields(table: str) -> None:
    paths = set(field_paths())
    assert {p.split(".")[0] for p in getattr(rules, table)} <= FIELDS
    assert set(getattr(rules, table)) <= paths


def test_required_names_fields() -> None:
    for kind, fields in rules.REQUIRED.items():
        assert set(fields) <= FIELDS, kind
        assert all(rules.applies(f, kind) for f in fields), kind


def test_defaults_convert_to_api_names() -> None:
    for kind in Kind:
        api = to_api(rules.defaults_for(kind))
        assert len(api) == len(rules.defaults_for(kind)), kind


def test_every_kind_has_a_name() -> None:
    assert set(rules.KIND_NAMES) == set(Kind)
    assert len(set(rules.KIND_NAMES.values())) == len(Kind)


def test_member_tables_name_members_of_fields_the_kind_takes() -> None:
    paths = set(field_paths())
    assert set(rules.MEMBER_APPLIES_TO) <= paths
    for path, kinds in rules.MEMBER_APPLIES_TO.items():
        # A member only for some of the kinds that take its object.
        assert set(kinds) < rules.APPLIES_TO[path.split(".")[0]], path
    for kind, members in rules.REQUIRED_MEMBERS.items():
        assert set(members) <= paths, kind
        assert all(rules.applies(m.split(".")[0], kind) for m in members), kind


def test_not_supported_reasons_are_for_fields_the_kind_does_not_take() -> None:
    for field, kind in rules.NOT_SUPPORTED_WHY:
        assert field in FIELDS and not rules.applies(field, kind), (field, kind)


def test_access_tables_name_access_types() -> None:
    every_type = set().union(*rules.ACCESS_TYPES.values())
    assert set(rules.SINGLE_ACCESS_TYPES) <= every_type
    assert set(rules.REQUIRED_ACCESS.values()) <= every_type
    assert every_type >= rules.ACCESS_WITHOUT_URI


def test_poller_limits_are_for_kinds_with_pollers() -> None:
    for kind in {*rules.MIN_POLLERS, *rules.MAX_POLLERS}:
        assert rules.applies("provisioned_poller_config", kind), kind
    for kind, low in rules.MIN_POLLERS.items():
        assert low <= rules.MAX_POLLERS.get(kind, 10000), kind


# -- rule functions (esm_reconcile/checks/), called directly -------------------------------------

CONTEXT = RuleContext(now=datetime(2025, 6, 1, tzinfo=UTC))


def test_check_mapping_runs_no_rule_until_the_source_is_known() -> None:
    # Only the source's problem: without a kind, the other rules cannot say anything true.
    assert check_mapping(
        {"event_source_arn": "arn:aws:s3:::bucket", "parallelization_factor": 2}
    ) == [
        (
            "event_source_arn",
            "unrecognised event source: expected an SQS queue, Kinesis stream, DynamoDB stream, "
            "MSK cluster, Amazon MQ broker or DocumentDB cluster ARN",
        )
    ]


@pytest.mark.parametrize("kind", list(Kind))
def test_every_rule_finds_nothing_in_an_empty_mapping_but_required_fields(kind: Kind) -> None:
    found = [p for rule in MAPPING_RULES for p in rule({}, kind, CONTEXT)]
    required = {
        *rules.REQUIRED.get(kind, ()),
        *(["source_access_configurations"] if kind in rules.REQUIRED_ACCESS else []),
    }
    assert {path for path, _ in found} == required


def test_fields_not_for_kind_gives_aws_reason_where_it_has_one() -> None:
    window = {"maximum_batching_window_in_seconds": 5, "parallelization_factor": 2}
    assert source.fields_not_for_kind(window, Kind.SQS_FIFO, CONTEXT) == [
        (
            "maximum_batching_window_in_seconds",
            "not supported for SQS FIFO sources (Batching window is not supported for FIFO queues)",
        ),
        ("parallelization_factor", "not supported for SQS FIFO sources"),
    ]
    assert source.fields_not_for_kind(window, Kind.KINESIS, CONTEXT) == []


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            Kind.SQS,
            [("provisioned_poller_config.poller_group_name", "not supported for SQS sources")],
        ),
        (Kind.MSK, []),
        (Kind.MQ, []),  # MQ takes no pollers at all: fields_not_for_kind says so, once
    ],
)
def test_poller_group_is_kafkas(kind: Kind, expected: list[tuple[str, str]]) -> None:
    settings = {"provisioned_poller_config": {"poller_group_name": "shared"}}
    assert source.members_not_for_kind(settings, kind, CONTEXT) == expected


def test_required_members_only_once_the_object_is_given() -> None:
    missing = [("document_db_event_source_config.database_name", "required for DocumentDB sources")]
    config = {"document_db_event_source_config": {"collection_name": "orders"}}
    assert source.required_members(config, Kind.DOCUMENTDB, CONTEXT) == missing
    assert source.required_members({}, Kind.DOCUMENTDB, CONTEXT) == []


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            Kind.DYNAMODB,
            [("starting_position", "AT_TIMESTAMP is not supported for DynamoDB Streams")],
        ),
        (Kind.KINESIS, [("starting_position_timestamp", "required with AT_TIMESTAMP")]),
        (Kind.MSK, [("starting_position_timestamp", "required with AT_TIMESTAMP")]),
        (Kind.SQS, []),  # SQS takes no position: fields_not_for_kind says so
    ],
)
def test_at_timestamp_needs_a_kind_that_takes_a_timestamp(
    kind: Kind, expected: list[tuple[str, str]]
) -> None:
    at = {"starting_position": "AT_TIMESTAMP"}
    assert streams.timestamp_matches_position(at, kind, CONTEXT) == expected


def test_timestamp_in_the_future_is_against_the_context_clock() -> None:
    stamp = {"starting_position_timestamp": datetime(2025, 6, 2)}  # naive: read as UTC
    assert streams.timestamp_not_in_future(stamp, Kind.KINESIS, CONTEXT) == [
        ("starting_position_timestamp", "cannot be in the future")
    ]
    later = RuleContext(now=datetime(2025, 6, 3, tzinfo=UTC))
    assert streams.timestamp_not_in_future(stamp, Kind.KINESIS, later) == []


def test_access_entries_uri_and_type() -> None:
    entries = {
        "source_access_configurations": [
            {"type": "IAM_AUTH", "uri": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"},
            {"type": "BASIC_AUTH", "uri": None},
        ]
    }
    assert access.entries_fit_kind(entries, Kind.MSK, CONTEXT) == [
        ("source_access_configurations.0.uri", "IAM_AUTH takes no uri"),
        (
            "source_access_configurations.0.type",
            "IAM_AUTH is not used by Amazon MSK sources "
            "(allowed: CLIENT_CERTIFICATE_TLS_AUTH, SASL_SCRAM_512_AUTH)",
        ),
        ("source_access_configurations.1.uri", "BASIC_AUTH needs a uri"),
        (
            "source_access_configurations.1.type",
            "BASIC_AUTH is not used by Amazon MSK sources "
            "(allowed: CLIENT_CERTIFICATE_TLS_AUTH, SASL_SCRAM_512_AUTH)",
        ),
    ]


@pytest.mark.parametrize(
    ("kind", "counts", "expected"),
    [
        (Kind.SQS, {"minimum_pollers": 1}, [("minimum_pollers", "at least 2 for SQS sources")]),
        (Kind.SQS_FIFO, {"maximum_pollers": 5000}, []),
        (Kind.MSK, {"maximum_pollers": 2001}, [("maximum_pollers", "at most 2000 for Amazon MSK sources")]),
        (Kind.MSK, {"minimum_pollers": 5, "maximum_pollers": 4}, [("minimum_pollers", "must not exceed maximum_pollers")]),
    ],
)  # fmt: skip
def test_poller_counts(kind: Kind, counts: dict[str, int], expected: list[tuple[str, str]]) -> None:
    found = pollers.poller_counts_in_range({"provisioned_poller_config": counts}, kind, CONTEXT)
    assert found == [(f"provisioned_poller_config.{path}", m) for path, m in expected]


@pytest.mark.parametrize(
    ("ref", "refused"),
    [
        ("fn", False),
        ("fn:live", False),
        ("arn:aws:lambda:us-east-1:123456789012:function:fn", False),
        ("fn\n", True),  # a regex's `$` alone would let a final newline through
        (" fn", True),
        ("fn ", True),
        ("f n", True),
    ],
)
def test_function_ref_error(ref: str, refused: bool) -> None:
    error = function_ref_error(ref)
    assert (error is not None) == refused
    assert error is None or error.startswith("not a function reference")
