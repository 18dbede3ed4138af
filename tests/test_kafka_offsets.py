"""Kafka replacements keep their offsets (issue 12). Diff-level, pure.

AWS names a Kafka mapping's consumer group after the mapping's UUID when the request gives none
(reference A.4), and a mapping created in a group that has committed offsets resumes from them,
ignoring StartingPosition (AWS docs, "Customizable consumer group ID"). So when a replace is
forced on an MSK or self-managed Kafka mapping whose spec names no group, the new mapping is
created in the old one's group; a spec that omits `consumer_group_id` then accepts that group
(a UUID that is no longer the mapping's own) without drift. Every other replace keeps its
read-position warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from esm_reconcile import guards, rules
from esm_reconcile.diff import diff, loses_read_position
from esm_reconcile.model import LiveMapping, ManagedFunction, parse_function_ref
from esm_reconcile.plan import Change, FieldChange, Plan
from esm_reconcile.validate import load_spec
from tests.aws_shapes import (
    ACCOUNT,
    REGION,
    STREAM,
    U,
    documentdb_readback,
    live_mapping,
    msk_readback,
    readback_of_create,
    self_managed_kafka_readback,
    stream_readback,
)

MSK = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/demo/abcd1234-ab12-cd34-ef56-abcdef123456-1"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kafka-abc123"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}:registry/orders"
BROKERS = ["b1:9092", "b2:9092"]
DDB = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/stream/2025-11-01T00:00:00.000"
DOCDB = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:orders"

OLD = U("old mapping")  # the mapping being replaced; AWS named its group after it
NEW = U("new mapping")  # the mapping the replace creates
EARLIER = U("a mapping replaced before")

KINDS = ("msk", "self-managed-kafka")
CONFIG = {  # spec key, API key of each kind's Kafka configuration
    "msk": ("amazon_managed_kafka_event_source_config", "AmazonManagedKafkaEventSourceConfig"),
    "self-managed-kafka": (
        "self_managed_kafka_event_source_config",
        "SelfManagedKafkaEventSourceConfig",
    ),
}


# -- builders -------------------------------------------------------------------------------------


def spec_of(kind: str, **settings: Any) -> dict[str, Any]:
    if kind == "msk":
        base = {"event_source_arn": MSK, "topics": ["orders"], "starting_position": "LATEST"}
    else:
        base = {
            "self_managed_event_source": {"endpoints": {"KAFKA_BOOTSTRAP_SERVERS": BROKERS}},
            "topics": ["orders"],
            "source_access_configurations": [{"type": "SASL_SCRAM_512_AUTH", "uri": SECRET}],
            "starting_position": "LATEST",
        }
    return {**base, **settings}


def readback_of(kind: str, uuid: str = OLD, **overrides: Any) -> dict[str, Any]:
    """AWS's read-back of a mapping created from spec_of(kind) with no group: group = its UUID."""
    if kind == "msk":
        return msk_readback(uuid, source=MSK, **overrides)
    return self_managed_kafka_readback(
        uuid, brokers=BROKERS, secret=SECRET, **{"StartingPosition": "LATEST", **overrides}
    )


def plan_for(tmp_path: Path, mappings: list[dict[str, Any]], live: list[LiveMapping]) -> Plan:
    path = tmp_path / "spec.yaml"
    document = {"version": 1, "functions": {"orders-handler": mappings}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    functions = [
        ManagedFunction(label, parse_function_ref(label).arn(REGION, ACCOUNT), desired)
        for label, desired in load_spec([path]).functions.items()
    ]
    return diff(functions, live)


def only(plan: Plan) -> Change:
    assert len(plan.changes) == 1, [c.to_json() for c in plan.changes]
    return plan.changes[0]


def replace_of(tmp_path: Path, mapping: dict[str, Any], response: dict[str, Any]) -> Change:
    change = only(plan_for(tmp_path, [mapping], [live_mapping(response)]))
    assert change.action == "replace"
    assert change.uuid == response["UUID"]
    assert change.update_request is None
    return change


# -- a forced replace keeps AWS's default group ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_replace_creates_the_new_mapping_in_the_old_default_group(
    tmp_path: Path, kind: str
) -> None:
    spec_key, api_key = CONFIG[kind]
    change = replace_of(
        tmp_path, spec_of(kind, starting_position="TRIM_HORIZON"), readback_of(kind)
    )
    assert [f for f in change.fields if f.forces_replacement] == [
        FieldChange("starting_position", "LATEST", "TRIM_HORIZON", True)
    ]
    assert change.create_request is not None
    assert change.create_request[api_key] == {"ConsumerGroupId": OLD}
    assert change.create_request["StartingPosition"] == "TRIM_HORIZON"  # the spec's, as written
    # The group is not a change: nothing about it shows among the fields.
    assert not [f for f in change.fields if "consumer_group_id" in f.name]
    # The plan says so, and does not say the read position is lost.
    assert change.warnings == [
        f"the new mapping joins the replaced mapping's Kafka consumer group {OLD} and resumes "
        "from its committed offsets (AWS uses starting_position only for a group without any); "
        "to start from the new starting_position instead, set consumer_group_id to a new "
        "group"
    ]
    assert not loses_read_position(change)
    assert not any("read position" in w for w in change.warnings)
    assert not any("read position" in w for w in Plan(changes=[change]).all_warnings())


@pytest.mark.parametrize("kind", KINDS)
def test_replace_forced_by_another_field_keeps_the_group_without_the_position_hint(
    tmp_path: Path, kind: str
) -> None:
    # Back to the 500 ms batching window: only re-creating the mapping gets there (A.4).
    _, api_key = CONFIG[kind]
    change = replace_of(
        tmp_path, spec_of(kind), readback_of(kind, MaximumBatchingWindowInSeconds=5)
    )
    assert [f.name for f in change.fields if f.forces_replacement] == [
        "maximum_batching_window_in_seconds"
    ]
    assert change.create_request[api_key] == {"ConsumerGroupId": OLD}
    (warning,) = change.warnings
    assert f"consumer group {OLD}" in warning
    assert "committed offsets" in warning
    assert "new starting_position" not in warning


@pytest.mark.parametrize("kind", KINDS)
def test_carried_group_joins_the_rest_of_the_kafka_configuration(tmp_path: Path, kind: str) -> None:
    spec_key, api_key = CONFIG[kind]
    registry = {"schema_registry_uri": GLUE, "event_record_format": "JSON"}
    mapping = spec_of(
        kind, starting_position="TRIM_HORIZON", **{spec_key: {"schema_registry_config": registry}}
    )
    live_config = {
        "ConsumerGroupId": OLD,
        "SchemaRegistryConfig": {"SchemaRegistryURI": GLUE, "EventRecordFormat": "JSON"},
    }
    change = replace_of(tmp_path, mapping, readback_of(kind, **{api_key: live_config}))
    assert change.create_request[api_key] == live_config


@pytest.mark.parametrize("kind", KINDS)
def test_after_the_replace_the_carried_group_is_no_drift(tmp_path: Path, kind: str) -> None:
    mapping = spec_of(kind, starting_position="TRIM_HORIZON")
    change = replace_of(tmp_path, mapping, readback_of(kind))
    # What AWS then reads back for the new mapping: its own UUID is NEW, its group OLD.
    created = readback_of_create(change.create_request, NEW)
    _, api_key = CONFIG[kind]
    assert created["UUID"] == NEW
    assert created[api_key] == {"ConsumerGroupId": OLD}
    assert plan_for(tmp_path, [mapping], [live_mapping(created)]).changes == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_group_named_after_a_former_mapping_is_no_drift(tmp_path: Path, kind: str) -> None:
    # No state says which UUID was a former mapping's: any UUID-shaped group is accepted when
    # the spec omits consumer_group_id (rules.is_default_consumer_group).
    _, api_key = CONFIG[kind]
    live = readback_of(kind, uuid=NEW, **{api_key: {"ConsumerGroupId": EARLIER}})
    assert plan_for(tmp_path, [spec_of(kind)], [live_mapping(live)]).changes == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_replace_carries_the_former_group_again(tmp_path: Path, kind: str) -> None:
    _, api_key = CONFIG[kind]
    live = readback_of(kind, uuid=NEW, **{api_key: {"ConsumerGroupId": OLD}})
    change = replace_of(tmp_path, spec_of(kind, starting_position="TRIM_HORIZON"), live)
    assert change.create_request[api_key] == {"ConsumerGroupId": OLD}
    assert not loses_read_position(change)


# -- a group the spec names: unchanged ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_group_in_the_spec_is_a_replace_that_loses_the_position(
    tmp_path: Path, kind: str
) -> None:
    spec_key, api_key = CONFIG[kind]
    mapping = spec_of(kind, **{spec_key: {"consumer_group_id": "orders-v2"}})
    change = replace_of(tmp_path, mapping, readback_of(kind))
    assert [f for f in change.fields if f.forces_replacement] == [
        FieldChange(f"{spec_key}.consumer_group_id", OLD, "orders-v2", True)
    ]
    assert change.create_request[api_key] == {"ConsumerGroupId": "orders-v2"}
    assert loses_read_position(change)
    assert change.warnings == [
        "replacing this mapping discards its read position: the new mapping starts at LATEST"
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_a_named_group_kept_by_the_spec_is_sent_as_named(tmp_path: Path, kind: str) -> None:
    # The spec names the group the mapping already has: the create sends exactly that (nothing
    # carried), and the new mapping resumes in it all the same, which the warning says.
    spec_key, api_key = CONFIG[kind]
    mapping = spec_of(
        kind, starting_position="TRIM_HORIZON", **{spec_key: {"consumer_group_id": "orders"}}
    )
    live = readback_of(kind, **{api_key: {"ConsumerGroupId": "orders"}})
    change = replace_of(tmp_path, mapping, live)
    assert change.create_request[api_key] == {"ConsumerGroupId": "orders"}
    assert not loses_read_position(change)
    assert "consumer group orders and resumes from its committed offsets" in change.warnings[0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_named_live_group_the_spec_omits_is_drift_to_a_fresh_default(
    tmp_path: Path, kind: str
) -> None:
    # Someone created the mapping in group "orders"; the spec wants AWS's default. The group is
    # what changes, so nothing is carried and the position is lost.
    spec_key, api_key = CONFIG[kind]
    live = readback_of(kind, **{api_key: {"ConsumerGroupId": "orders"}})
    change = replace_of(tmp_path, spec_of(kind), live)
    assert [(f.name, f.before, f.after) for f in change.fields if f.forces_replacement] == [
        (f"{spec_key}.consumer_group_id", "orders", None)
    ]
    assert api_key not in change.create_request
    assert loses_read_position(change)


@pytest.mark.parametrize("kind", KINDS)
def test_an_ignored_named_group_is_kept_by_the_replace(tmp_path: Path, kind: str) -> None:
    spec_key, api_key = CONFIG[kind]
    mapping = spec_of(
        kind, starting_position="TRIM_HORIZON", ignore_changes=[f"{spec_key}.consumer_group_id"]
    )
    live = readback_of(kind, **{api_key: {"ConsumerGroupId": "orders"}})
    change = replace_of(tmp_path, mapping, live)
    assert change.create_request[api_key] == {"ConsumerGroupId": "orders"}
    assert not loses_read_position(change)


@pytest.mark.parametrize("kind", KINDS)
def test_no_group_read_back_carries_nothing(tmp_path: Path, kind: str) -> None:
    # An emulator that returns no Kafka configuration: nothing to carry; the position is lost.
    _, api_key = CONFIG[kind]
    live = readback_of(kind, **{api_key: None})
    change = replace_of(tmp_path, spec_of(kind, starting_position="TRIM_HORIZON"), live)
    assert api_key not in change.create_request
    assert loses_read_position(change)


# -- every other replace keeps its read-position warning -----------------------------------------


def test_kinesis_replace_still_warns_about_the_read_position(tmp_path: Path) -> None:
    mapping = {"event_source_arn": STREAM, "starting_position": "LATEST"}
    change = replace_of(
        tmp_path, mapping, stream_readback("u-stream-1", starting_position="TRIM_HORIZON")
    )
    assert loses_read_position(change)
    assert change.warnings == [
        "replacing this mapping discards its read position: the new mapping starts at LATEST"
    ]
    assert "ConsumerGroupId" not in str(change.create_request)


def test_dynamodb_replace_still_warns_about_the_read_position(tmp_path: Path) -> None:
    mapping = {"event_source_arn": DDB, "starting_position": "TRIM_HORIZON"}
    change = replace_of(
        tmp_path, mapping, stream_readback("u-ddb-1", source=DDB, starting_position="LATEST")
    )
    assert loses_read_position(change)


def test_documentdb_replace_still_warns_about_the_read_position(tmp_path: Path) -> None:
    mapping = {
        "event_source_arn": DOCDB,
        "starting_position": "TRIM_HORIZON",
        "document_db_event_source_config": {"database_name": "orders"},
        "source_access_configurations": [{"type": "BASIC_AUTH", "uri": SECRET}],
    }
    response = documentdb_readback(
        "u-docdb-1",
        source=DOCDB,
        secret=SECRET,
        StartingPosition="LATEST",
        DocumentDBEventSourceConfig={"DatabaseName": "orders"},
    )
    change = replace_of(tmp_path, mapping, response)
    assert loses_read_position(change)


# -- the guards still see a replace ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_prevent_destroy_still_refuses_a_replace_that_keeps_the_group(
    tmp_path: Path, kind: str
) -> None:
    mapping = spec_of(kind, starting_position="TRIM_HORIZON", prevent_destroy=True)
    plan = plan_for(tmp_path, [mapping], [live_mapping(readback_of(kind))])
    (error,) = guards.destroy_guard_errors(plan)
    assert "starting_position (LATEST -> TRIM_HORIZON) forces replacement" in error
    assert guards.max_destroy_error(plan, 0) is not None


# -- the rule itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "accepted"),
    [
        (OLD, True),  # the mapping's own UUID
        (EARLIER, True),  # a former mapping's
        (EARLIER.upper(), True),
        ("u-kafka-1", True),  # not UUID-shaped, but the mapping's own id (fakes use these)
        ("orders-consumers", False),
        (f"{EARLIER}-x", False),
        (f"{EARLIER}\n", False),
        ("", False),
        (None, False),
    ],
)
def test_default_consumer_group(group: Any, accepted: bool) -> None:
    uuid = "u-kafka-1" if group == "u-kafka-1" else OLD
    assert rules.is_default_consumer_group(group, uuid) is accepted
