"""Pure unit tests of normalize + diff: spec (via load_spec) × live (AWS-shaped responses) → Plan.

Live responses are shaped like the AWS-recorded read-backs of reference A.4 (tests/aws_shapes.py):
the defaults AWS fills in must never show up as drift, and drift in a field the spec omits must.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from esm_reconcile.diff import diff
from esm_reconcile.model import DesiredMapping, LiveMapping, ManagedFunction, parse_function_ref
from esm_reconcile.plan import FieldChange, Plan
from esm_reconcile.validate import load_spec
from tests.aws_shapes import (
    ACCOUNT,
    FN,
    QUEUE,
    REGION,
    STREAM,
    live_mapping,
    msk_readback,
    self_managed_kafka_readback,
    sqs_live,
    stream_live,
)
from tests.spec_json import CHANGE_KEYS

FN_LIVE = f"{FN}:live"
OTHER_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-elses"
QUEUE2 = f"arn:aws:sqs:{REGION}:{ACCOUNT}:refunds"
FIFO = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders.fifo"
DDB = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/stream/2025-11-01T00:00:00.000"
DLQ = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"


# -- builders -------------------------------------------------------------------------------------


def load(tmp_path: Path, functions: dict[str, Any], **top: Any) -> dict[str, list[DesiredMapping]]:
    """Write a version-1 spec with these functions and load it through the real validator."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"version": 1, **top, "functions": functions}, sort_keys=False))
    return load_spec([path]).functions


def managed(functions: dict[str, list[DesiredMapping]]) -> list[ManagedFunction]:
    return [
        ManagedFunction(label, parse_function_ref(label).arn(REGION, ACCOUNT), mappings)
        for label, mappings in functions.items()
    ]


def plan_for(tmp_path: Path, functions: dict[str, Any], live: list[LiveMapping]) -> Plan:
    return diff(managed(load(tmp_path, functions)), live)


def only(plan: Plan):
    assert len(plan.changes) == 1, [c.to_json() for c in plan.changes]
    return plan.changes[0]


def no_changes(plan: Plan) -> None:
    assert plan.changes == [], [c.to_json() for c in plan.changes]
    assert not plan.has_changes
    assert plan.summary() == {"create": 0, "update": 0, "replace": 0, "delete": 0}


# -- AWS defaults read back are not drift ---------------------------------------------------------


def test_sqs_default_readback_against_empty_spec_is_no_change(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, [sqs_live()])
    no_changes(plan)


def test_sqs_fifo_default_readback_is_no_change(tmp_path: Path) -> None:
    # A.4: FIFO reads back the same set, window 0 included, although FIFO takes no window.
    plan = plan_for(
        tmp_path, {"orders-handler": [{"event_source_arn": FIFO}]}, [sqs_live(source=FIFO)]
    )
    no_changes(plan)


@pytest.mark.parametrize("source", [STREAM, DDB], ids=["kinesis", "dynamodb"])
def test_stream_default_readback_against_minimal_spec_is_no_change(
    tmp_path: Path, source: str
) -> None:
    spec = {"orders-handler": [{"event_source_arn": source, "starting_position": "LATEST"}]}
    no_changes(plan_for(tmp_path, spec, [stream_live(source=source)]))


def test_stream_readback_after_later_processing_is_no_change(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": STREAM, "starting_position": "LATEST"}]}
    live = stream_live(LastProcessingResult="OK", StateTransitionReason="User action")
    no_changes(plan_for(tmp_path, spec, [live]))


def test_spec_restating_aws_defaults_is_no_change(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": STREAM,
                "starting_position": "LATEST",
                "enabled": True,
                "batch_size": 100,
                "maximum_batching_window_in_seconds": 0,
                "parallelization_factor": 1,
                "maximum_record_age_in_seconds": -1,
                "maximum_retry_attempts": -1,
                "bisect_batch_on_function_error": False,
                "tumbling_window_in_seconds": 0,
                "function_response_types": [],
            }
        ]
    }
    no_changes(plan_for(tmp_path, spec, [stream_live()]))


def test_live_empty_filter_list_equals_unset(tmp_path: Path) -> None:
    # Emulators echo FilterCriteria {"Filters": []}; AWS omits it. Both mean "no filters".
    live = sqs_live(FilterCriteria={"Filters": []})
    no_changes(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, [live]))


KAFKA_UUID = "a1b2c3d4-5678-90ab-cdef-111122223333"
MSK = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/demo/abcd1234-ab12-cd34-ef56-abcdef123456-1"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kafka-abc123"


def self_managed_kafka_live(**overrides: Any) -> LiveMapping:
    """The self-managed Kafka read-back recorded in A.4: AWS picks the mapping's own UUID as the
    consumer group, defaults StartingPosition to TRIM_HORIZON and returns the brokers sorted."""
    brokers = ["b1:9092", "b2:9092"]
    return live_mapping(
        self_managed_kafka_readback(KAFKA_UUID, brokers=brokers, secret=SECRET, **overrides)
    )


SELF_MANAGED_SPEC = {
    "self_managed_event_source": {"endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b2:9092", "b1:9092"]}},
    "topics": ["orders"],
    "source_access_configurations": [{"type": "SASL_SCRAM_512_AUTH", "uri": SECRET}],
}


def test_self_managed_kafka_default_readback_is_no_change(tmp_path: Path) -> None:
    # Reference F: an omitted ConsumerGroupId equals a live one that is the mapping's own UUID.
    plan = plan_for(tmp_path, {"orders-handler": [SELF_MANAGED_SPEC]}, [self_managed_kafka_live()])
    no_changes(plan)


def test_msk_default_readback_is_no_change(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {"event_source_arn": MSK, "topics": ["orders"], "starting_position": "LATEST"}
        ]
    }
    live = live_mapping(msk_readback(KAFKA_UUID, source=MSK))
    no_changes(plan_for(tmp_path, spec, [live]))


def test_kafka_consumer_group_change_is_replace(tmp_path: Path) -> None:
    # A.9: "After creating a Kafka event source mapping with the consumer group ID specified,
    # you cannot update this value." So a different group means delete and re-create.
    mapping = {
        **SELF_MANAGED_SPEC,
        "self_managed_kafka_event_source_config": {"consumer_group_id": "billing"},
    }
    live = self_managed_kafka_live(SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "orders"})
    change = only(plan_for(tmp_path, {"orders-handler": [mapping]}, [live]))
    assert change.action == "replace"
    assert [f for f in change.fields if f.forces_replacement] == [
        FieldChange(
            "self_managed_kafka_event_source_config.consumer_group_id", "orders", "billing", True
        )
    ]
    assert change.update_request is None


# -- drift in omitted fields ----------------------------------------------------------------------


def test_drift_in_omitted_batch_size_updates_back_to_default(tmp_path: Path) -> None:
    live = sqs_live(BatchSize=20, MaximumBatchingWindowInSeconds=0)
    change = only(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, [live]))
    assert change.action == "update"
    assert change.uuid == "u-sqs-1"
    assert change.fields == [FieldChange("batch_size", 20, 10, False)]
    assert change.update_request == {"UUID": "u-sqs-1", "BatchSize": 10}
    assert change.create_request is None
    assert change.tag_changes is None


def test_drift_in_omitted_stream_setting_updates_only_that_field(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": STREAM, "starting_position": "LATEST"}]}
    live = stream_live(ParallelizationFactor=4, MaximumRetryAttempts=2)
    change = only(plan_for(tmp_path, spec, [live]))
    assert change.action == "update"
    assert {f.name: (f.before, f.after) for f in change.fields} == {
        "maximum_retry_attempts": (2, -1),
        "parallelization_factor": (4, 1),
    }
    assert change.update_request == {
        "UUID": "u-stream-1",
        "MaximumRetryAttempts": -1,
        "ParallelizationFactor": 1,
    }


def test_changed_spec_values_send_only_changed_fields(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": QUEUE,
                "batch_size": 50,
                "maximum_batching_window_in_seconds": 5,
                "scaling_config": {"maximum_concurrency": 100},
                "function_response_types": ["ReportBatchItemFailures"],
            }
        ]
    }
    change = only(plan_for(tmp_path, spec, [sqs_live()]))
    assert change.action == "update"
    assert change.update_request == {
        "UUID": "u-sqs-1",
        "BatchSize": 50,
        "MaximumBatchingWindowInSeconds": 5,
        "ScalingConfig": {"MaximumConcurrency": 100},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    before_after = {f.name: (f.before, f.after) for f in change.fields}
    assert before_after["batch_size"] == (10, 50)
    assert before_after["maximum_batching_window_in_seconds"] == (0, 5)
    assert not any(f.forces_replacement for f in change.fields)
    # Never echo read-back values: nothing unchanged is in the request.
    assert "EventSourceArn" not in change.update_request
    assert "FunctionName" not in change.update_request


# -- filter patterns compare by meaning -----------------------------------------------------------

PATTERN = {"body": {"Temperature": [{"numeric": [">", 0, "<=", 100]}], "Location": ["NY"]}}
OTHER_PATTERN = {"body": {"Kind": ["refund"]}}


@pytest.mark.parametrize(
    ("spec_filters", "live_patterns"),
    [
        pytest.param(
            [{"pattern": PATTERN}],
            [json.dumps(PATTERN)],
            id="yaml-mapping-vs-json-text",
        ),
        pytest.param(
            [{"pattern": json.dumps(PATTERN, indent=2)}],
            [json.dumps(PATTERN, separators=(",", ":"))],
            id="json-spacing",
        ),
        pytest.param(
            [
                {
                    "pattern": '{"body": {"Location": ["NY"], "Temperature": [{"numeric": [">", 0, "<=", 100]}]}}'
                }
            ],
            ['{"body":{"Temperature":[{"numeric":[">",0,"<=",100]}],"Location":["NY"]}}'],
            id="key-order",
        ),
        pytest.param(
            [{"pattern": OTHER_PATTERN}, {"pattern": json.dumps(PATTERN)}],
            [json.dumps(PATTERN), json.dumps(OTHER_PATTERN)],
            id="filters-in-another-order",
        ),
    ],
)
def test_filter_patterns_equal_by_meaning(
    tmp_path: Path, spec_filters: list[dict[str, Any]], live_patterns: list[str]
) -> None:
    spec = {
        "orders-handler": [
            {"event_source_arn": QUEUE, "filter_criteria": {"filters": spec_filters}}
        ]
    }
    live = sqs_live(FilterCriteria={"Filters": [{"Pattern": p} for p in live_patterns]})
    no_changes(plan_for(tmp_path, spec, [live]))


def test_filter_change_sends_all_filters_as_json_text(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": QUEUE,
                "filter_criteria": {"filters": [{"pattern": PATTERN}, {"pattern": OTHER_PATTERN}]},
            }
        ]
    }
    live = sqs_live(FilterCriteria={"Filters": [{"Pattern": json.dumps(PATTERN)}]})
    change = only(plan_for(tmp_path, spec, [live]))
    assert change.action == "update"
    request = change.update_request
    assert set(request) == {"UUID", "FilterCriteria"}
    sent = request["FilterCriteria"]["Filters"]
    assert all(isinstance(f["Pattern"], str) for f in sent)
    assert sorted(json.dumps(json.loads(f["Pattern"]), sort_keys=True) for f in sent) == sorted(
        json.dumps(p, sort_keys=True) for p in (PATTERN, OTHER_PATTERN)
    )


def test_filter_removal_sends_empty_filter_criteria(tmp_path: Path) -> None:
    live = sqs_live(FilterCriteria={"Filters": [{"Pattern": json.dumps(PATTERN)}]})
    change = only(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, [live]))
    assert change.action == "update"
    assert change.update_request == {"UUID": "u-sqs-1", "FilterCriteria": {}}


# -- removal needs explicit empty values ----------------------------------------------------------


def test_scaling_config_removal_sends_empty_object(tmp_path: Path) -> None:
    live = sqs_live(ScalingConfig={"MaximumConcurrency": 5})
    change = only(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, [live]))
    assert change.action == "update"
    assert change.update_request == {"UUID": "u-sqs-1", "ScalingConfig": {}}
    assert [(f.name, f.before, f.after) for f in change.fields] == [
        ("scaling_config.maximum_concurrency", 5, None)
    ]


@pytest.mark.parametrize("kind", ["sqs", "kinesis"])
def test_function_response_types_removal_sends_empty_list(tmp_path: Path, kind: str) -> None:
    if kind == "sqs":
        mapping = {"event_source_arn": QUEUE}
        live = sqs_live(FunctionResponseTypes=["ReportBatchItemFailures"])
    else:
        mapping = {"event_source_arn": STREAM, "starting_position": "LATEST"}
        live = stream_live(FunctionResponseTypes=["ReportBatchItemFailures"])
    change = only(plan_for(tmp_path, {"orders-handler": [mapping]}, [live]))
    assert change.action == "update"
    assert change.update_request == {"UUID": live.uuid, "FunctionResponseTypes": []}


def test_destination_removal_sends_empty_destination(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": STREAM, "starting_position": "LATEST"}]}
    live = stream_live(DestinationConfig={"OnFailure": {"Destination": DLQ}})
    change = only(plan_for(tmp_path, spec, [live]))
    assert change.action == "update"
    # {"OnFailure": {}} is rejected by AWS ("The Destination field is required...").
    assert change.update_request == {
        "UUID": "u-stream-1",
        "DestinationConfig": {"OnFailure": {"Destination": ""}},
    }
    assert not any(f.forces_replacement for f in change.fields)


def test_destination_added_sends_destination(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": STREAM,
                "starting_position": "LATEST",
                "destination_config": {"on_failure": {"destination": DLQ}},
            }
        ]
    }
    change = only(plan_for(tmp_path, spec, [stream_live()]))
    assert change.update_request == {
        "UUID": "u-stream-1",
        "DestinationConfig": {"OnFailure": {"Destination": DLQ}},
    }


def test_same_destination_is_no_change(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": STREAM,
                "starting_position": "LATEST",
                "destination_config": {"on_failure": {"destination": DLQ}},
            }
        ]
    }
    live = stream_live(DestinationConfig={"OnFailure": {"Destination": DLQ}})
    no_changes(plan_for(tmp_path, spec, [live]))


# -- enabled is derived from State ----------------------------------------------------------------


@pytest.mark.parametrize("state", ["Disabled", "Disabling"])
def test_disabled_live_vs_omitted_enabled_updates_to_enabled(tmp_path: Path, state: str) -> None:
    live = sqs_live(state=state)
    change = only(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, [live]))
    assert change.action == "update"
    assert change.fields == [FieldChange("enabled", False, True, False)]
    assert change.update_request == {"UUID": "u-sqs-1", "Enabled": True}


@pytest.mark.parametrize("state", ["Enabled", "Enabling", "Creating", "Updating"])
def test_enabled_like_states_match_omitted_enabled(tmp_path: Path, state: str) -> None:
    live = sqs_live(state=state)
    no_changes(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, [live]))


def test_enabled_false_disables_enabled_mapping(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "enabled": False}]}
    change = only(plan_for(tmp_path, spec, [sqs_live()]))
    assert change.update_request == {"UUID": "u-sqs-1", "Enabled": False}


def test_enabled_false_matches_disabled_mapping(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "enabled": False}]}
    no_changes(plan_for(tmp_path, spec, [sqs_live(state="Disabled")]))


@pytest.mark.parametrize("enabled", [True, False])
def test_updating_state_says_nothing_about_enabled(tmp_path: Path, enabled: bool) -> None:
    """A disabled mapping whose other settings change also reads Updating: no enabled diff."""
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "enabled": enabled}]}
    no_changes(plan_for(tmp_path, spec, [sqs_live(state="Updating")]))


# -- ignore_changes -------------------------------------------------------------------------------


def test_ignore_changes_enabled(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "ignore_changes": ["enabled"]}]}
    no_changes(plan_for(tmp_path, spec, [sqs_live(state="Disabled")]))


def test_ignore_changes_enabled_still_diffs_other_fields(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "ignore_changes": ["enabled"]}]}
    change = only(plan_for(tmp_path, spec, [sqs_live(state="Disabled", BatchSize=5)]))
    assert change.update_request == {"UUID": "u-sqs-1", "BatchSize": 10}
    assert [f.name for f in change.fields] == ["batch_size"]


def test_ignore_changes_nested_path_value_differs(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": QUEUE,
                "scaling_config": {"maximum_concurrency": 10},
                "ignore_changes": ["scaling_config.maximum_concurrency"],
            }
        ]
    }
    no_changes(plan_for(tmp_path, spec, [sqs_live(ScalingConfig={"MaximumConcurrency": 5})]))


def test_ignore_changes_nested_path_set_in_spec_absent_live(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": QUEUE,
                "scaling_config": {"maximum_concurrency": 10},
                "ignore_changes": ["scaling_config.maximum_concurrency"],
            }
        ]
    }
    no_changes(plan_for(tmp_path, spec, [sqs_live()]))


def test_ignore_changes_nested_path_omitted_in_spec_set_live(tmp_path: Path) -> None:
    # An operator attached a DLQ by hand; the spec says leave the destination alone.
    spec = {
        "orders-handler": [
            {
                "event_source_arn": STREAM,
                "starting_position": "LATEST",
                "ignore_changes": ["destination_config.on_failure.destination"],
            }
        ]
    }
    live = stream_live(DestinationConfig={"OnFailure": {"Destination": DLQ}})
    no_changes(plan_for(tmp_path, spec, [live]))


def test_ignore_changes_nested_path_keeps_live_sibling_in_request(tmp_path: Path) -> None:
    # Nested objects replace the stored one wholesale, so the ignored member keeps its live value.
    spec = {
        "orders-handler": [
            {
                "event_source_arn": QUEUE,
                "provisioned_poller_config": {"minimum_pollers": 2, "maximum_pollers": 10},
                "ignore_changes": ["provisioned_poller_config.maximum_pollers"],
            }
        ]
    }
    live = sqs_live(ProvisionedPollerConfig={"MinimumPollers": 3, "MaximumPollers": 20})
    change = only(plan_for(tmp_path, spec, [live]))
    assert [f.name for f in change.fields] == ["provisioned_poller_config.minimum_pollers"]
    assert change.update_request == {
        "UUID": "u-sqs-1",
        "ProvisionedPollerConfig": {"MinimumPollers": 2, "MaximumPollers": 20},
    }


# -- replacement ----------------------------------------------------------------------------------


def test_starting_position_change_is_replace(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": STREAM, "starting_position": "LATEST"}]}
    live = stream_live(starting_position="TRIM_HORIZON")
    plan = plan_for(tmp_path, spec, [live])
    change = only(plan)
    assert change.action == "replace"
    assert change.uuid == "u-stream-1"
    position = [f for f in change.fields if f.name == "starting_position"]
    assert position == [FieldChange("starting_position", "TRIM_HORIZON", "LATEST", True)]
    assert change.warnings and any("position" in w for w in change.warnings)
    assert change.create_request == {
        "FunctionName": FN,
        "EventSourceArn": STREAM,
        "StartingPosition": "LATEST",
    }
    assert change.update_request is None
    assert plan.summary() == {"create": 0, "update": 0, "replace": 1, "delete": 0}


def test_replace_create_request_carries_every_spec_setting(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": STREAM,
                "starting_position": "TRIM_HORIZON",
                "batch_size": 200,
                "tags": {"team": "orders"},
            }
        ]
    }
    live = stream_live(tags={"team": "orders"})
    change = only(plan_for(tmp_path, spec, [live]))
    assert change.action == "replace"
    assert change.create_request == {
        "FunctionName": FN,
        "EventSourceArn": STREAM,
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 200,
        "Tags": {"team": "orders"},
    }
    batch = [f for f in change.fields if f.name == "batch_size"]
    assert batch == [FieldChange("batch_size", 100, 200, False)]


def test_at_timestamp_same_instant_is_no_change(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": STREAM,
                "starting_position": "AT_TIMESTAMP",
                "starting_position_timestamp": "2025-11-01T10:00:00+01:00",
            }
        ]
    }
    live = stream_live(
        starting_position="AT_TIMESTAMP",
        StartingPositionTimestamp=datetime(2025, 11, 1, 9, 0, tzinfo=UTC),
    )
    no_changes(plan_for(tmp_path, spec, [live]))


def test_at_timestamp_change_is_replace(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": STREAM,
                "starting_position": "AT_TIMESTAMP",
                "starting_position_timestamp": "2025-11-02T00:00:00Z",
            }
        ]
    }
    live = stream_live(
        starting_position="AT_TIMESTAMP",
        StartingPositionTimestamp=datetime(2025, 11, 1, 0, 0, tzinfo=UTC),
    )
    change = only(plan_for(tmp_path, spec, [live]))
    assert change.action == "replace"
    assert any(
        f.name == "starting_position_timestamp" and f.forces_replacement for f in change.fields
    )


# -- which live mappings are touched --------------------------------------------------------------


def test_unlisted_live_mapping_of_managed_function_is_deleted(tmp_path: Path) -> None:
    live = [sqs_live(), sqs_live(uuid="u-stray", source=QUEUE2)]
    change = only(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live))
    assert change.action == "delete"
    assert change.uuid == "u-stray"
    assert change.event_source == QUEUE2
    assert change.function_arn == FN
    assert change.create_request is None and change.update_request is None


def test_function_with_empty_list_has_all_its_mappings_deleted(tmp_path: Path) -> None:
    live = [sqs_live(uuid="u-1"), stream_live(uuid="u-2")]
    plan = plan_for(tmp_path, {"orders-handler": []}, live)
    assert sorted((c.action, c.uuid) for c in plan.changes) == [
        ("delete", "u-1"),
        ("delete", "u-2"),
    ]
    assert plan.summary()["delete"] == 2


def test_mappings_of_unlisted_functions_are_never_touched(tmp_path: Path) -> None:
    live = [
        sqs_live(uuid="u-other-1", function_arn=OTHER_FN, BatchSize=1),
        sqs_live(uuid="u-other-2", function_arn=OTHER_FN, source=QUEUE2, state="Disabled"),
        sqs_live(uuid="u-mine"),
    ]
    plan = plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live)
    no_changes(plan)


def test_name_and_name_qualifier_are_distinct_functions(tmp_path: Path) -> None:
    # The spec manages `orders-handler`; the same queue mapped to `orders-handler:live` is
    # another function's mapping, so it is neither matched nor deleted.
    live = [sqs_live(uuid="u-alias", function_arn=FN_LIVE)]
    plan = plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live)
    change = only(plan)
    assert change.action == "create"
    assert change.function_arn == FN
    assert change.create_request == {"FunctionName": FN, "EventSourceArn": QUEUE}
    assert change.wait_gone == []


def test_qualified_function_manages_only_its_own_mappings(tmp_path: Path) -> None:
    live = [
        sqs_live(uuid="u-bare", function_arn=FN),
        sqs_live(uuid="u-alias", function_arn=FN_LIVE),
    ]
    plan = plan_for(tmp_path, {"orders-handler:live": []}, live)
    change = only(plan)
    assert (change.action, change.uuid, change.function_arn) == ("delete", "u-alias", FN_LIVE)


def test_both_name_and_alias_managed_match_separately(tmp_path: Path) -> None:
    live = [
        sqs_live(uuid="u-bare", function_arn=FN),
        sqs_live(uuid="u-alias", function_arn=FN_LIVE),
    ]
    spec = {
        "orders-handler": [{"event_source_arn": QUEUE}],
        "orders-handler:live": [{"event_source_arn": QUEUE}],
    }
    no_changes(plan_for(tmp_path, spec, live))


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_duplicate_identity_keeps_one_and_deletes_the_extra(tmp_path: Path, order: str) -> None:
    a, b = sqs_live(uuid="u-a"), sqs_live(uuid="u-b")
    live = [a, b] if order == "ab" else [b, a]
    plan = plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live)
    change = only(plan)
    assert change.action == "delete"
    assert change.uuid in {"u-a", "u-b"}
    first = change.uuid
    # Deterministic: the same one is kept whatever order List returned them in.
    other = plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live[::-1])
    assert only(other).uuid == first


def test_duplicate_identity_updates_the_kept_one(tmp_path: Path) -> None:
    live = [sqs_live(uuid="u-a", BatchSize=5), sqs_live(uuid="u-b", BatchSize=5)]
    plan = plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live)
    actions = sorted((c.action, c.uuid) for c in plan.changes)
    assert len(actions) == 2
    assert {a for a, _ in actions} == {"update", "delete"}
    assert {u for _, u in actions} == {"u-a", "u-b"}


def test_deleting_mapping_is_ignored_and_create_waits_for_it(tmp_path: Path) -> None:
    live = [sqs_live(uuid="u-going", state="Deleting", BatchSize=99)]
    change = only(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live))
    assert change.action == "create"
    assert change.uuid is None
    assert change.wait_gone == ["u-going"]


def test_deleting_mapping_of_unlisted_source_is_not_deleted_again(tmp_path: Path) -> None:
    live = [sqs_live(), sqs_live(uuid="u-going", source=QUEUE2, state="Deleting")]
    no_changes(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live))


def test_deleting_mapping_of_other_source_is_not_waited_for(tmp_path: Path) -> None:
    live = [sqs_live(uuid="u-going", source=QUEUE2, state="Deleting")]
    change = only(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live))
    assert change.action == "create"
    assert change.wait_gone == []


# -- creates --------------------------------------------------------------------------------------


def test_create_request_and_shown_fields(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {
                "event_source_arn": QUEUE,
                "batch_size": 50,
                "maximum_batching_window_in_seconds": 5,
                "filter_criteria": {"filters": [{"pattern": PATTERN}]},
                "tags": {"team": "orders"},
            }
        ]
    }
    change = only(plan_for(tmp_path, spec, []))
    assert change.action == "create"
    assert change.uuid is None
    request = change.create_request
    assert request["FunctionName"] == FN
    assert request["EventSourceArn"] == QUEUE
    assert request["BatchSize"] == 50
    assert request["MaximumBatchingWindowInSeconds"] == 5
    assert request["Tags"] == {"team": "orders"}
    (pattern,) = request["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == PATTERN
    assert all(f.before is None for f in change.fields)
    assert {"batch_size", "maximum_batching_window_in_seconds"} <= {f.name for f in change.fields}
    assert change.to_json()["uuid"] is None


def test_create_disabled_mapping(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "enabled": False}]}
    change = only(plan_for(tmp_path, spec, []))
    assert change.create_request == {"FunctionName": FN, "EventSourceArn": QUEUE, "Enabled": False}


# -- tags -----------------------------------------------------------------------------------------


def test_declared_tags_diff_against_live_tags(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "tags": {"team": "a", "env": "prod"}}]}
    live = sqs_live(tags={"team": "b", "old": "x"})
    change = only(plan_for(tmp_path, spec, [live]))
    assert change.action == "update"
    assert sorted((f.name, f.before, f.after) for f in change.fields) == [
        ("tags.env", None, "prod"),
        ("tags.old", "x", None),
        ("tags.team", "b", "a"),
    ]
    assert change.tag_changes == {
        "arn": live.esm_arn,
        "set": {"team": "a", "env": "prod"},
        "remove": ["old"],
    }
    assert change.update_request is None  # tags have their own API


def test_equal_tags_are_no_change(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "tags": {"team": "a"}}]}
    no_changes(plan_for(tmp_path, spec, [sqs_live(tags={"team": "a"})]))


def test_empty_declared_tags_remove_live_tags(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "tags": {}}]}
    change = only(plan_for(tmp_path, spec, [sqs_live(tags={"team": "a"})]))
    assert change.tag_changes == {"arn": change_arn("u-sqs-1"), "set": {}, "remove": ["team"]}


def change_arn(uuid: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}"


@pytest.mark.parametrize("live_tags", [None, {"team": "a", "owner": "ops"}])
def test_absent_tags_are_never_compared(tmp_path: Path, live_tags: dict[str, str] | None) -> None:
    live = sqs_live(tags=live_tags)
    no_changes(plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, [live]))


def test_tags_and_settings_change_together(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": QUEUE, "batch_size": 5, "tags": {"t": "1"}}]}
    change = only(plan_for(tmp_path, spec, [sqs_live(tags={})]))
    assert change.update_request == {"UUID": "u-sqs-1", "BatchSize": 5}
    assert change.tag_changes == {"arn": change_arn("u-sqs-1"), "set": {"t": "1"}, "remove": []}


# -- summary and order ----------------------------------------------------------------------------


def test_summary_counts_and_change_order(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            {"event_source_arn": QUEUE},  # update (drift)
            {"event_source_arn": STREAM, "starting_position": "LATEST"},  # replace
            {"event_source_arn": FIFO},  # create
        ],
        "orders-handler:live": [],  # its mapping: delete
    }
    live = [
        sqs_live(uuid="u-upd", BatchSize=7),
        stream_live(uuid="u-rep", starting_position="TRIM_HORIZON"),
        sqs_live(uuid="u-del", function_arn=FN_LIVE),
        sqs_live(uuid="u-not-mine", function_arn=OTHER_FN),
    ]
    plan = plan_for(tmp_path, spec, live)
    assert [(c.action, c.uuid) for c in plan.changes] == [
        ("delete", "u-del"),
        ("replace", "u-rep"),
        ("update", "u-upd"),
        ("create", None),
    ]
    assert plan.summary() == {"create": 1, "update": 1, "replace": 1, "delete": 1}
    as_json = plan.to_json()
    assert as_json["format_version"] == "1"
    assert as_json["summary"] == plan.summary()
    assert [c["action"] for c in as_json["changes"]] == ["delete", "replace", "update", "create"]
    update = as_json["changes"][2]
    assert update["fields"] == [
        {"name": "batch_size", "before": 7, "after": 10, "forces_replacement": False}
    ]
    assert set(update) == CHANGE_KEYS


def test_order_is_deletes_replaces_updates_creates_whatever_the_input_order(
    tmp_path: Path,
) -> None:
    spec = {
        "a-fn": [{"event_source_arn": QUEUE2}],  # create
        "b-fn": [{"event_source_arn": QUEUE}],  # update
        "c-fn": [],  # delete
        "d-fn": [{"event_source_arn": STREAM, "starting_position": "LATEST"}],  # replace
    }
    arn = parse_function_ref
    live = [
        sqs_live(uuid="u-b", function_arn=arn("b-fn").arn(REGION, ACCOUNT), BatchSize=3),
        sqs_live(uuid="u-c", function_arn=arn("c-fn").arn(REGION, ACCOUNT)),
        stream_live(
            uuid="u-d",
            function_arn=arn("d-fn").arn(REGION, ACCOUNT),
            starting_position="TRIM_HORIZON",
        ),
    ]
    plan = plan_for(tmp_path, spec, live)
    assert [c.action for c in plan.changes] == ["delete", "replace", "update", "create"]


# -- purity ---------------------------------------------------------------------------------------


def test_diff_does_not_mutate_its_inputs(tmp_path: Path) -> None:
    functions = managed(
        load(
            tmp_path,
            {
                "orders-handler": [
                    {
                        "event_source_arn": QUEUE,
                        "filter_criteria": {"filters": [{"pattern": json.dumps(PATTERN)}]},
                        "tags": {"a": "b"},
                        "ignore_changes": ["enabled"],
                    }
                ]
            },
        )
    )
    live = [sqs_live(BatchSize=3, tags={"c": "d"}), sqs_live(uuid="u-x", source=QUEUE2)]
    settings_before = copy.deepcopy([m.settings for f in functions for m in f.mappings])
    live_before = copy.deepcopy([(m.settings, m.tags, m.state) for m in live])
    first = diff(functions, live)
    second = diff(functions, live)
    assert [m.settings for f in functions for m in f.mappings] == settings_before
    assert [(m.settings, m.tags, m.state) for m in live] == live_before
    assert [c.to_json() for c in first.changes] == [c.to_json() for c in second.changes]


MODULES = ("esm_reconcile/diff.py", "esm_reconcile/normalize.py", "esm_reconcile/plan.py")


@pytest.mark.parametrize("module", MODULES)
def test_pure_modules_do_not_mention_boto(module: str) -> None:
    source = (Path(__file__).resolve().parent.parent / module).read_text()
    assert "boto3" not in source
    assert "botocore" not in source


def modules_loaded_by(statement: str) -> set[str]:
    """Every module a fresh interpreter (this checkout first on its path) holds after running
    `statement`: what this process has imported already cannot hide an import."""
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", f"import sys\n{statement}\nprint(*sys.modules)"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(result.stdout.split())


def test_pure_modules_import_no_boto() -> None:
    loaded = modules_loaded_by(
        "import esm_reconcile.diff, esm_reconcile.normalize, esm_reconcile.plan"
    )
    assert not {m for m in loaded if m.split(".")[0] in ("boto3", "botocore")}


def test_diff_plan_and_apply_depend_on_the_model_not_on_yaml_or_validation() -> None:
    """The core takes a model, wherever it came from (a spec file, a saved plan, a library
    caller): neither the YAML loader nor validation is imported, even indirectly."""
    loaded = modules_loaded_by("import esm_reconcile.apply, esm_reconcile.diff, esm_reconcile.plan")
    assert not loaded & {"esm_reconcile.loader", "esm_reconcile.validate", "yaml"}
