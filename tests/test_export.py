"""`esm export`: live mappings → a minimal spec that plans to no changes.

Live read-backs are shaped like AWS's recorded Get/List responses (reference A.4), defaults
included. Every round trip goes through the real pieces: dump_yaml → a file → load_spec (all
offline rules) → diff.diff against the same live mappings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esm_reconcile.diff import diff
from esm_reconcile.errors import EsmError, SpecErrors
from esm_reconcile.export import dump_yaml, export_mapping, export_spec, label_for
from esm_reconcile.model import LiveMapping, ManagedFunction, parse_function_ref
from esm_reconcile.plan import Plan
from esm_reconcile.spec import canonical_pattern
from esm_reconcile.validate import load_spec
from tests.aws_shapes import (
    ACCOUNT,
    FN,
    KAFKA_ERROR_HANDLING_2026,
    QUEUE,
    REGION,
    STREAM,
    documentdb_readback,
    live_mapping,
    mq_readback,
    msk_readback,
    self_managed_kafka_readback,
    sqs_live,
    stream_live,
)

FN_LIVE = f"{FN}:live"
FIFO = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders.fifo"
DDB = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/stream/2025-11-01T00:00:00.000"
MSK = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/demo/abcd1234-ab12-cd34-ef56-abcdef123456-1"
MQ = f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:demo:b-1234a5b6-78cd-901e-2fgh-3i45j6k178l9"
DOCDB = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:docs"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kafka-abc123"
DLQ = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"


# -- AWS-shaped read-backs (reference A.4; the shared kinds in tests/aws_shapes.py) ---------------


KAFKA_UUID = "a1b2c3d4-5678-90ab-cdef-111122223333"


def self_managed_kafka_live(tags: dict[str, str] | None = None, **overrides: Any) -> LiveMapping:
    """Self-managed Kafka (recorded 2024) plus the -1 error-handling defaults reported in 2026;
    the brokers unsorted, so that export has to sort them."""
    response = self_managed_kafka_readback(
        KAFKA_UUID,
        brokers=["b2.example.com:9092", "b1.example.com:9092"],
        secret=SECRET,
        **{**KAFKA_ERROR_HANDLING_2026, **overrides},
    )
    return live_mapping(response, tags)


def msk_live(**overrides: Any) -> LiveMapping:
    return live_mapping(msk_readback(KAFKA_UUID, source=MSK, **{"Topics": ["clicks"], **overrides}))


# -- round trip helpers ---------------------------------------------------------------------------


def plan_export(
    tmp_path: Path,
    live: list[LiveMapping],
    function_labels: dict[str, str] | None = None,
    name: str = "exported.yaml",
) -> tuple[dict[str, Any], Plan]:
    """Export → YAML file → load_spec → diff against the same live mappings."""
    labels = function_labels if function_labels is not None else {FN: "orders-handler"}
    doc = export_spec(live, labels, REGION, ACCOUNT)
    path = tmp_path / name
    path.write_text(dump_yaml(doc), encoding="utf-8")
    spec = load_spec([path])
    functions = [
        ManagedFunction(label, parse_function_ref(label).arn(REGION, ACCOUNT), mappings)
        for label, mappings in spec.functions.items()
    ]
    return doc, diff(functions, live)


def assert_no_changes(plan: Plan) -> None:
    assert plan.changes == [], [c.to_json() for c in plan.changes]


def exported_mappings(tmp_path: Path, *live: LiveMapping) -> list[dict[str, Any]]:
    doc, plan = plan_export(tmp_path, list(live))
    assert_no_changes(plan)
    return doc["functions"]["orders-handler"]


# -- default read-backs export as the bare identity -----------------------------------------------


def test_sqs_default_readback_exports_only_the_queue(tmp_path: Path) -> None:
    assert exported_mappings(tmp_path, sqs_live()) == [{"event_source_arn": QUEUE}]


def test_fifo_default_readback_exports_only_the_queue(tmp_path: Path) -> None:
    # A.4: FIFO reads back MaximumBatchingWindowInSeconds 0, which FIFO does not take.
    assert exported_mappings(tmp_path, sqs_live(source=FIFO)) == [{"event_source_arn": FIFO}]


@pytest.mark.parametrize("source", [STREAM, DDB], ids=["kinesis", "dynamodb"])
@pytest.mark.parametrize("position", ["LATEST", "TRIM_HORIZON"])
def test_stream_default_readback_exports_source_and_starting_position(
    tmp_path: Path, source: str, position: str
) -> None:
    live = stream_live(source=source, starting_position=position)
    assert exported_mappings(tmp_path, live) == [
        {"event_source_arn": source, "starting_position": position}
    ]


def test_self_managed_kafka_default_readback(tmp_path: Path) -> None:
    # The UUID consumer group, TRIM_HORIZON and the -1 error handling are all AWS's defaults.
    assert exported_mappings(tmp_path, self_managed_kafka_live()) == [
        {
            "self_managed_event_source": {
                "endpoints": {
                    "KAFKA_BOOTSTRAP_SERVERS": ["b1.example.com:9092", "b2.example.com:9092"]
                }
            },
            "topics": ["orders"],
            "source_access_configurations": [{"type": "SASL_SCRAM_512_AUTH", "uri": SECRET}],
        }
    ]


def test_msk_default_readback_omits_the_uuid_consumer_group(tmp_path: Path) -> None:
    assert exported_mappings(tmp_path, msk_live()) == [
        {"event_source_arn": MSK, "topics": ["clicks"], "starting_position": "LATEST"}
    ]


def test_msk_explicit_consumer_group_is_kept(tmp_path: Path) -> None:
    live = msk_live(AmazonManagedKafkaEventSourceConfig={"ConsumerGroupId": "orders-group"})
    (mapping,) = exported_mappings(tmp_path, live)
    assert mapping["amazon_managed_kafka_event_source_config"] == {
        "consumer_group_id": "orders-group"
    }


def test_mq_and_documentdb_readbacks(tmp_path: Path) -> None:
    mq = live_mapping(mq_readback("u-mq", source=MQ, secret=SECRET))
    docdb_config = {"DatabaseName": "shop", "FullDocument": "Default"}
    docdb = live_mapping(
        documentdb_readback(
            "u-doc", source=DOCDB, secret=SECRET, DocumentDBEventSourceConfig=docdb_config
        )
    )
    mq_out, doc_out = sorted(
        exported_mappings(tmp_path, mq, docdb), key=lambda m: m["event_source_arn"]
    )
    assert mq_out == {
        "event_source_arn": MQ,
        "queues": ["orders"],
        "source_access_configurations": [{"type": "BASIC_AUTH", "uri": SECRET}],
    }
    # full_document "Default" is the nested default: left out, the database stays.
    assert doc_out["document_db_event_source_config"] == {"database_name": "shop"}
    assert doc_out["starting_position"] == "LATEST"


# -- non-default settings -------------------------------------------------------------------------


def test_sqs_settings_filters_and_tags(tmp_path: Path) -> None:
    live = sqs_live(
        BatchSize=50,
        MaximumBatchingWindowInSeconds=5,
        ScalingConfig={"MaximumConcurrency": 100},
        FunctionResponseTypes=["ReportBatchItemFailures"],
        FilterCriteria={
            "Filters": [
                {"Pattern": '{"body": {"Temperature": [{"numeric": [">", 0, "<=", 100]}]}}'},
                {"Pattern": '{"attributes":{"SenderId":["a"]}}'},
            ]
        },
        tags={"team": "orders", "env": "prod"},
    )
    (mapping,) = exported_mappings(tmp_path, live)
    assert mapping == {
        "event_source_arn": QUEUE,
        "batch_size": 50,
        "filter_criteria": {
            "filters": [
                {"pattern": {"attributes": {"SenderId": ["a"]}}},
                {"pattern": {"body": {"Temperature": [{"numeric": [">", 0, "<=", 100]}]}}},
            ]
        },
        "maximum_batching_window_in_seconds": 5,
        "function_response_types": ["ReportBatchItemFailures"],
        "scaling_config": {"maximum_concurrency": 100},
        "tags": {"env": "prod", "team": "orders"},
    }


def test_stream_settings(tmp_path: Path) -> None:
    live = stream_live(
        starting_position="AT_TIMESTAMP",
        StartingPositionTimestamp=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        ParallelizationFactor=2,
        DestinationConfig={"OnFailure": {"Destination": DLQ}},
        MaximumRetryAttempts=3,
        MaximumRecordAgeInSeconds=3600,
        BisectBatchOnFunctionError=True,
        TumblingWindowInSeconds=60,
    )
    (mapping,) = exported_mappings(tmp_path, live)
    assert mapping == {
        "event_source_arn": STREAM,
        "starting_position": "AT_TIMESTAMP",
        "starting_position_timestamp": "2025-01-02T03:04:05Z",
        "parallelization_factor": 2,
        "destination_config": {"on_failure": {"destination": DLQ}},
        "maximum_record_age_in_seconds": 3600,
        "bisect_batch_on_function_error": True,
        "maximum_retry_attempts": 3,
        "tumbling_window_in_seconds": 60,
    }


@pytest.mark.parametrize(
    ("state", "enabled"),
    [
        ("Enabled", None),
        ("Creating", None),
        ("Enabling", None),
        ("Updating", None),
        ("Disabled", False),
        ("Disabling", False),
    ],
)
def test_enabled_false_only_when_off(tmp_path: Path, state: str, enabled: bool | None) -> None:
    (mapping,) = exported_mappings(tmp_path, sqs_live(state=state))
    assert mapping.get("enabled") == enabled


def test_sqs_provisioned_pollers_of_only_defaults_stay_whole(tmp_path: Path) -> None:
    # An empty object would mean "not provisioned": the default members must stay.
    live = sqs_live(ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 200})
    (mapping,) = exported_mappings(tmp_path, live)
    assert mapping["provisioned_poller_config"] == {"minimum_pollers": 2, "maximum_pollers": 200}
    live = sqs_live(ProvisionedPollerConfig={"MinimumPollers": 5, "MaximumPollers": 200})
    (mapping,) = exported_mappings(tmp_path, live)
    assert mapping["provisioned_poller_config"] == {"minimum_pollers": 5}


def test_emulator_echoes_of_empty_values_are_not_exported(tmp_path: Path) -> None:
    live = sqs_live(FilterCriteria={"Filters": []}, ScalingConfig={})
    assert exported_mappings(tmp_path, live) == [{"event_source_arn": QUEUE}]


def test_unparsable_live_pattern_stays_text_and_fails_validation(tmp_path: Path) -> None:
    live = sqs_live(FilterCriteria={"Filters": [{"Pattern": "not json"}]})
    assert export_mapping(live)["filter_criteria"] == {"filters": [{"pattern": "not json"}]}
    with pytest.raises(SpecErrors, match="pattern is not valid JSON"):
        plan_export(tmp_path, [live])


def test_export_is_not_vacuous_drift_after_export_is_seen(tmp_path: Path) -> None:
    doc = export_spec(
        [sqs_live(BatchSize=50, MaximumBatchingWindowInSeconds=5)], {FN: "f"}, None, None
    )
    path = tmp_path / "spec.yaml"
    path.write_text(dump_yaml(doc))
    spec = load_spec([path])
    functions = [ManagedFunction("f", FN, spec.functions["f"])]
    drifted = sqs_live(BatchSize=20, MaximumBatchingWindowInSeconds=5)
    (change,) = diff(functions, [drifted]).changes
    assert [(f.name, f.before, f.after) for f in change.fields] == [("batch_size", 20, 50)]


# -- functions, labels, order ---------------------------------------------------------------------


def test_label_for() -> None:
    assert label_for(FN, REGION, ACCOUNT) == "orders-handler"
    assert label_for(FN_LIVE, REGION, ACCOUNT) == "orders-handler:live"
    assert label_for(f"{FN}:$LATEST", REGION, ACCOUNT) == "orders-handler:$LATEST"
    assert label_for(FN, "eu-west-1", ACCOUNT) == FN
    assert label_for(FN, REGION, "210987654321") == FN
    assert label_for(FN, None, None) == FN


def test_functions_order_empty_functions_and_unrequested_ones(tmp_path: Path) -> None:
    other = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:audit"
    # A listing of one region holds only that region's functions (label_for's own test covers
    # ARNs from elsewhere); an unrequested one exports under its short name.
    unrequested = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:elsewhere"
    live = [
        sqs_live(uuid="u-3", source=f"arn:aws:sqs:{REGION}:{ACCOUNT}:zeta"),
        sqs_live(uuid="u-2", source=f"arn:aws:sqs:{REGION}:{ACCOUNT}:alpha"),
        stream_live(uuid="u-4", function_arn=FN_LIVE),
        sqs_live(uuid="u-5", function_arn=other),
        sqs_live(uuid="u-6", function_arn=unrequested, source=f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"),
        sqs_live(uuid="u-7", state="Deleting", source=f"arn:aws:sqs:{REGION}:{ACCOUNT}:gone"),
    ]
    retired = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:retired"
    labels = {FN: "orders-handler", retired: "retired", FN_LIVE: "orders-handler:live"}
    doc, plan = plan_export(tmp_path, live, labels)
    assert list(doc["functions"]) == [
        "orders-handler",
        "retired",
        "orders-handler:live",
        "audit",
        "elsewhere",
    ]
    assert [m["event_source_arn"] for m in doc["functions"]["orders-handler"]] == [
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:alpha",
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:zeta",
    ]
    assert doc["functions"]["retired"] == []
    assert_no_changes(plan)
    assert list(doc) == ["version", "region", "account_id", "functions"]


def test_duplicate_live_mappings_export_once(tmp_path: Path) -> None:
    # AWS refuses duplicates; moto allows them. The diff keeps the lowest UUID: so does export.
    live = [sqs_live(uuid="u-b", BatchSize=5), sqs_live(uuid="u-a", BatchSize=7)]
    doc = export_spec(live, {FN: "orders-handler"}, REGION, ACCOUNT)
    assert doc["functions"]["orders-handler"] == [{"event_source_arn": QUEUE, "batch_size": 7}]


def test_unrecognised_source_is_an_error_not_a_silent_drop() -> None:
    live = sqs_live(source=f"arn:aws:sns:{REGION}:{ACCOUNT}:topic")
    with pytest.raises(EsmError, match="unrecognised event source"):
        export_spec([live], {FN: "orders-handler"}, REGION, ACCOUNT)


def test_dump_yaml_header_and_round_trip() -> None:
    doc = export_spec(
        [sqs_live(FunctionResponseTypes=["ReportBatchItemFailures"], tags={"on": "true"})],
        {FN: "orders-handler"},
        REGION,
        ACCOUNT,
    )
    text = dump_yaml(doc)
    assert text.startswith("# Exported by `esm export`")
    header = "".join(line for line in text.splitlines() if line.startswith("#"))
    assert REGION in header and ACCOUNT in header
    assert "account_id: '123456789012'" in text  # a string, not a number
    assert "function_response_types: [ReportBatchItemFailures]" in text
    assert yaml.safe_load(text) == doc
    assert "{" not in text.split("functions:")[1]  # block style for mappings


# -- property: random valid configurations round-trip ---------------------------------------------

_scalars = st.one_of(
    st.text(alphabet="abcXYZ019-_ ", min_size=0, max_size=6), st.integers(-1000, 1000)
)
_leaf = st.one_of(
    st.lists(_scalars, min_size=1, max_size=3),
    st.builds(lambda n: [{"numeric": [">", n]}], st.integers(0, 100)),
    st.just([{"exists": True}]),
)
_pattern = st.dictionaries(
    st.sampled_from(["body", "eventName", "dynamodb", "data", "attributes"]),
    st.one_of(_leaf, st.dictionaries(st.sampled_from(["a", "B", "c"]), _leaf, min_size=1)),
    min_size=1,
    max_size=2,
)


@st.composite
def _filters(draw: st.DrawFn) -> dict[str, Any] | None:
    patterns = draw(st.lists(_pattern, max_size=3, unique_by=canonical_pattern))
    if not patterns:
        return draw(st.sampled_from([None, {"Filters": []}]))
    # As AWS echoes the text as sent: any key order and spacing.
    texts = [
        json.dumps(p, indent=draw(st.sampled_from([None, 1])))
        if draw(st.booleans())
        else json.dumps(p)
        for p in patterns
    ]
    return {"Filters": [{"Pattern": t} for t in texts]}


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def _sqs_overrides(draw: st.DrawFn, fifo: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    batch = draw(_maybe(st.integers(1, 10 if fifo else 10000)))
    if batch is not None:
        out["BatchSize"] = batch
    if not fifo:
        low = 1 if (batch or 10) > 10 else 0
        window = draw(st.integers(low, 300)) if low or draw(st.booleans()) else None
        if window is not None:
            out["MaximumBatchingWindowInSeconds"] = window
    concurrency = draw(_maybe(st.integers(2, 1000)))
    if concurrency is not None:
        out["ScalingConfig"] = {"MaximumConcurrency": concurrency}
    out["FunctionResponseTypes"] = draw(st.sampled_from([[], ["ReportBatchItemFailures"]]))
    out["FilterCriteria"] = draw(_filters())
    return out


@st.composite
def _stream_overrides(draw: st.DrawFn, kinesis: bool) -> dict[str, Any]:
    positions = ["LATEST", "TRIM_HORIZON"] + (["AT_TIMESTAMP"] if kinesis else [])
    out: dict[str, Any] = {"StartingPosition": draw(st.sampled_from(positions))}
    if out["StartingPosition"] == "AT_TIMESTAMP":
        seconds = draw(st.integers(60, 10**8))
        out["StartingPositionTimestamp"] = datetime(2025, 11, 1, tzinfo=UTC) - timedelta(
            seconds=seconds
        )
    for key, strategy in {
        "BatchSize": st.integers(1, 10000),
        "MaximumBatchingWindowInSeconds": st.integers(0, 300),
        "ParallelizationFactor": st.integers(1, 10),
        "MaximumRetryAttempts": st.integers(-1, 10000),
        "MaximumRecordAgeInSeconds": st.one_of(st.just(-1), st.integers(60, 604800)),
        "BisectBatchOnFunctionError": st.booleans(),
        "TumblingWindowInSeconds": st.integers(0, 900),
    }.items():
        value = draw(_maybe(strategy))
        if value is not None:
            out[key] = value
    destination = draw(_maybe(st.sampled_from([DLQ, f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"])))
    if destination:
        out["DestinationConfig"] = {"OnFailure": {"Destination": destination}}
    out["FunctionResponseTypes"] = draw(st.sampled_from([[], ["ReportBatchItemFailures"]]))
    out["FilterCriteria"] = draw(_filters())
    return out


_SOURCES = {
    "sqs": [f"arn:aws:sqs:{REGION}:{ACCOUNT}:q{i}" for i in range(3)],
    "fifo": [f"arn:aws:sqs:{REGION}:{ACCOUNT}:q{i}.fifo" for i in range(2)],
    "kinesis": [f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s{i}" for i in range(2)],
    "dynamodb": [
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t{i}/stream/2025-11-01T00:00:00.000"
        for i in range(2)
    ],
}
_FUNCTIONS = [FN, FN_LIVE]


@st.composite
def _live_mapping(draw: st.DrawFn, index: int) -> LiveMapping:
    kind = draw(st.sampled_from(sorted(_SOURCES)))
    source = draw(st.sampled_from(_SOURCES[kind]))
    function_arn = draw(st.sampled_from(_FUNCTIONS))
    state = draw(
        st.sampled_from(["Enabled", "Enabled", "Disabled", "Disabling", "Enabling", "Creating"])
    )
    tags = draw(
        _maybe(
            st.dictionaries(
                st.sampled_from(["team", "env", "cost-center"]), st.text("ab1 ", max_size=4)
            )
        )
    )
    uuid = f"00000000-0000-0000-0000-{index:012d}"
    if kind in ("sqs", "fifo"):
        overrides = draw(_sqs_overrides(fifo=kind == "fifo"))
        return sqs_live(uuid, function_arn, source, state, tags, **overrides)
    overrides = draw(_stream_overrides(kinesis=kind == "kinesis"))
    position = overrides.pop("StartingPosition")
    return stream_live(uuid, function_arn, source, state, position, tags, **overrides)


@st.composite
def _live_mappings(draw: st.DrawFn) -> list[LiveMapping]:
    count = draw(st.integers(1, 4))
    mappings = [draw(_live_mapping(i)) for i in range(count)]
    seen: set[tuple[str, str]] = set()
    unique = []
    for mapping in mappings:  # AWS keeps one mapping per (function, source)
        if (mapping.function_arn, mapping.source) not in seen:
            seen.add((mapping.function_arn, mapping.source))
            unique.append(mapping)
    return unique


# Stream settings AWS fills in (A.4): drawn equal to these, they must not be exported.
_DEFAULTS_BY_KEY = {
    "BatchSize": {"sqs": 10, "fifo": 10, "kinesis": 100, "dynamodb": 100},
    "MaximumBatchingWindowInSeconds": 0,
    "ParallelizationFactor": 1,
    "MaximumRetryAttempts": -1,
    "MaximumRecordAgeInSeconds": -1,
    "BisectBatchOnFunctionError": False,
    "TumblingWindowInSeconds": 0,
}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(live=_live_mappings())
def test_property_export_then_plan_is_no_changes(tmp_path: Path, live: list[LiveMapping]) -> None:
    labels = {FN: "orders-handler", FN_LIVE: "orders-handler:live"}
    doc, plan = plan_export(tmp_path, live, labels)
    assert_no_changes(plan)
    # Minimal: every exported setting differs from AWS's default for the kind.
    for label, mappings in doc["functions"].items():
        for mapping in mappings:
            source = mapping["event_source_arn"]
            kind = next(k for k, sources in _SOURCES.items() if source in sources)
            assert mapping.get("enabled", False) is False
            batch_default = _DEFAULTS_BY_KEY["BatchSize"][kind]
            assert mapping.get("batch_size", -2) != batch_default, (label, mapping)
            for field, default in [
                ("maximum_batching_window_in_seconds", 0),
                ("parallelization_factor", 1),
                ("maximum_retry_attempts", -1),
                ("maximum_record_age_in_seconds", -1),
                ("bisect_batch_on_function_error", False),
                ("tumbling_window_in_seconds", 0),
            ]:
                assert mapping.get(field, "absent") != default, (field, mapping)
            assert mapping.get("function_response_types", ["x"]) != []
            if kind in ("kinesis", "dynamodb"):
                assert "starting_position" in mapping
    # Every live mapping is there, under its function.
    assert sum(len(ms) for ms in doc["functions"].values()) == len(live)


# -- moto in-process round trip -------------------------------------------------------------------


def test_moto_round_trip_sqs_and_kinesis(moto_aws: None, seed: Any, tmp_path: Path) -> None:
    from esm_reconcile.app import plan_one as make_plan
    from esm_reconcile.aws import connect
    from esm_reconcile.live import LiveReader

    seeded = seed(functions=["orders-handler"], queues=["orders"], streams=["clicks"])
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_event_source_mapping(
        FunctionName="orders-handler",
        EventSourceArn=seeded.queues["orders"],
        BatchSize=50,
        MaximumBatchingWindowInSeconds=5,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        FilterCriteria={"Filters": [{"Pattern": '{"body": {"kind": ["order"]}}'}]},
        Tags={"team": "orders"},
    )
    lam.create_event_source_mapping(
        FunctionName="orders-handler",
        EventSourceArn=seeded.streams["clicks"],
        StartingPosition="LATEST",
        ParallelizationFactor=2,
        Enabled=False,
    )

    aws = connect(region=REGION)
    reader = LiveReader(aws)
    arn = reader.function_arn("orders-handler")
    live = reader.mappings({arn})
    for mapping in live:
        reader.read_tags(mapping)
    doc = export_spec(live, {arn: "orders-handler"}, aws.region, aws.identity()["account"])
    path = tmp_path / "exported.yaml"
    path.write_text(dump_yaml(doc), encoding="utf-8")

    assert doc["account_id"] == ACCOUNT
    stream_mapping, queue_mapping = doc["functions"]["orders-handler"]  # by source
    assert queue_mapping == {
        "event_source_arn": seeded.queues["orders"],
        "batch_size": 50,
        "filter_criteria": {"filters": [{"pattern": {"body": {"kind": ["order"]}}}]},
        "maximum_batching_window_in_seconds": 5,
        "function_response_types": ["ReportBatchItemFailures"],
        "tags": {"team": "orders"},
    }
    assert stream_mapping == {
        "event_source_arn": seeded.streams["clicks"],
        "starting_position": "LATEST",
        "enabled": False,
        "parallelization_factor": 2,
    }

    plan = make_plan(load_spec([path]), aws)
    assert_no_changes(plan)
