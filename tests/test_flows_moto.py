"""End-to-end flows in-process through the application layer (app.load → app.plan_one →
app.apply), against moto.

moto (5.2.1) fills almost no defaults and never transitions states (reference E), so these tests
assert on our plan (what it decided and the exact requests sent) and read results back with
plain boto3; they never rely on a field being absent from moto's answers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from esm_reconcile import app
from esm_reconcile.aws import connect
from esm_reconcile.plan import FieldChange, Plan

REGION = "us-east-1"
MUTATING = {
    "CreateEventSourceMapping",
    "UpdateEventSourceMapping",
    "DeleteEventSourceMapping",
    "TagResource",
    "UntagResource",
}

pytestmark = pytest.mark.usefixtures("moto_aws")


# -- helpers --------------------------------------------------------------------------------


def lam() -> Any:
    return boto3.client("lambda", region_name=REGION)


class Esm:
    """The application layer, as the CLI drives it, on one connection (boto3 model loading is
    slow).

    `apply` returns the plan as made (apply records the UUIDs it creates on the plan, so a copy
    is kept) and the mutating Lambda calls apply sent, in order, with their parameters.
    """

    def __init__(self) -> None:
        self.aws = connect(region=REGION, max_rps=100)
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.aws.lambda_client.meta.events.register("provide-client-params.lambda", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in MUTATING:
            self.sent.append((model.name, copy.deepcopy(params)))

    def plan(self, path: Path) -> Plan:
        return app.plan_one(app.load([path]), self.aws)

    def apply(self, path: Path) -> tuple[Plan, list[tuple[str, dict[str, Any]]]]:
        plan = self.plan(path)
        as_made = copy.deepcopy(plan)
        self.sent = []
        result = app.apply([app.ApplyJob(plan, self.aws)], parallelism=1, sleep=lambda s: None)
        assert result.ok, [(o.change.address, o.status, o.message) for o in result.outcomes]
        return as_made, self.sent

    def assert_no_changes(self, path: Path) -> None:
        plan = self.plan(path)
        assert not plan.has_changes, [(c.action, c.address, c.fields) for c in plan.changes]


@pytest.fixture
def esm(moto_aws: None) -> Esm:
    return Esm()


def get(uuid: str) -> dict[str, Any]:
    return lam().get_event_source_mapping(UUID=uuid)


def assert_gone(uuid: str) -> None:
    with pytest.raises(ClientError) as err:
        get(uuid)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


# Per kind: seed arguments, how to find the source ARN, required extra settings, and two
# batch sizes valid for the kind (the second for the update).
KINDS: dict[str, tuple[dict[str, list[str]], Callable[[Any], str], dict[str, Any], int, int]] = {
    "sqs": ({"queues": ["orders"]}, lambda s: s.queues["orders"], {}, 5, 8),
    "sqs-fifo": ({"fifo_queues": ["orders"]}, lambda s: s.queues["orders.fifo"], {}, 5, 10),
    "kinesis": (
        {"streams": ["clicks"]},
        lambda s: s.streams["clicks"],
        {"starting_position": "TRIM_HORIZON"},
        50,
        200,
    ),
    "dynamodb": (
        {"tables": ["carts"]},
        lambda s: s.tables["carts"],
        {"starting_position": "LATEST"},
        50,
        200,
    ),
}
DEFAULT_BATCH = {"sqs": 10, "sqs-fifo": 10, "kinesis": 100, "dynamodb": 100}


# -- create, no-op, update, delete per source kind ------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_lifecycle_create_noop_update_delete(esm, kind, seed, write_spec, list_mappings):
    seed_args, source_of, extra, first, second = KINDS[kind]
    seeded = seed(functions=["handler"], **seed_args)
    function_arn = seeded.functions["handler"]
    source = source_of(seeded)

    # create
    spec = write_spec({"handler": [{"event_source_arn": source, "batch_size": first, **extra}]})
    plan, sent = esm.apply(spec)
    assert plan.summary() == {"create": 1, "update": 0, "replace": 0, "delete": 0}
    (change,) = plan.changes
    assert (change.action, change.uuid, change.kind) == ("create", None, kind)
    assert change.address == f"handler[{source}]"
    assert (change.function_arn, change.event_source) == (function_arn, source)
    assert [name for name, _ in sent] == ["CreateEventSourceMapping"]
    assert sent[0][1]["FunctionName"] == function_arn
    assert sent[0][1]["EventSourceArn"] == source
    assert sent[0][1]["BatchSize"] == first
    (live,) = list_mappings(function=function_arn)
    assert (live["EventSourceArn"], live["BatchSize"], live["State"]) == (source, first, "Enabled")
    if "starting_position" in extra:
        assert live["StartingPosition"] == extra["starting_position"]
    uuid = live["UUID"]

    # the same spec again: nothing to do
    esm.assert_no_changes(spec)

    # update: only the changed field is sent, in place
    spec = write_spec({"handler": [{"event_source_arn": source, "batch_size": second, **extra}]})
    plan, sent = esm.apply(spec)
    (change,) = plan.changes
    assert (change.action, change.uuid) == ("update", uuid)
    assert change.fields == [FieldChange("batch_size", first, second, False)]
    assert sent == [("UpdateEventSourceMapping", {"UUID": uuid, "BatchSize": second})]
    assert get(uuid)["BatchSize"] == second
    assert [m["UUID"] for m in list_mappings(function=function_arn)] == [uuid]
    esm.assert_no_changes(spec)

    # delete: the mapping is gone from the spec, the function is still managed
    spec = write_spec({"handler": []})
    plan, sent = esm.apply(spec)
    (change,) = plan.changes
    assert (change.action, change.uuid, change.event_source) == ("delete", uuid, source)
    assert sent == [("DeleteEventSourceMapping", {"UUID": uuid})]
    assert_gone(uuid)
    assert list_mappings(function=function_arn) == []
    esm.assert_no_changes(spec)


@pytest.mark.parametrize("kind", ["kinesis", "dynamodb"])
def test_starting_position_change_replaces(esm, kind, seed, write_spec, list_mappings):
    seed_args, source_of, _, _, _ = KINDS[kind]
    seeded = seed(functions=["handler"], **seed_args)
    function_arn, source = seeded.functions["handler"], source_of(seeded)
    mapping = {"event_source_arn": source, "batch_size": 50}
    spec = write_spec({"handler": [{**mapping, "starting_position": "TRIM_HORIZON"}]})
    esm.apply(spec)
    (old,) = list_mappings(function=function_arn)

    spec = write_spec({"handler": [{**mapping, "starting_position": "LATEST"}]})
    plan, sent = esm.apply(spec)
    (change,) = plan.changes
    assert (change.action, change.uuid) == ("replace", old["UUID"])
    assert FieldChange("starting_position", "TRIM_HORIZON", "LATEST", True) in change.fields
    assert change.warnings and "position" in change.warnings[0]
    # delete first, then create (AWS refuses a second mapping for one function and source)
    assert [name for name, _ in sent] == ["DeleteEventSourceMapping", "CreateEventSourceMapping"]
    assert sent[0][1] == {"UUID": old["UUID"]}
    assert sent[1][1]["StartingPosition"] == "LATEST"

    assert_gone(old["UUID"])
    (new,) = list_mappings(function=function_arn)
    assert new["UUID"] != old["UUID"]
    assert (new["EventSourceArn"], new["StartingPosition"], new["BatchSize"]) == (
        source,
        "LATEST",
        50,
    )
    esm.assert_no_changes(spec)


# -- drift ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqs", "kinesis"])
def test_drift_in_omitted_field_goes_back_to_default(esm, kind, seed, write_spec, list_mappings):
    seed_args, source_of, extra, _, _ = KINDS[kind]
    seeded = seed(functions=["handler"], **seed_args)
    function_arn, source = seeded.functions["handler"], source_of(seeded)
    spec = write_spec({"handler": [{"event_source_arn": source, **extra}]})  # no batch_size
    esm.apply(spec)
    (live,) = list_mappings(function=function_arn)
    default = DEFAULT_BATCH[kind]
    assert live["BatchSize"] == default
    esm.assert_no_changes(spec)

    lam().update_event_source_mapping(UUID=live["UUID"], BatchSize=7)  # by hand
    plan, sent = esm.apply(spec)
    (change,) = plan.changes
    assert (change.action, change.uuid) == ("update", live["UUID"])
    assert change.fields == [FieldChange("batch_size", 7, default, False)]
    assert sent == [("UpdateEventSourceMapping", {"UUID": live["UUID"], "BatchSize": default})]
    assert get(live["UUID"])["BatchSize"] == default
    esm.assert_no_changes(spec)


def test_drift_in_field_moto_never_defaults(esm, seed, write_spec):
    """MaximumRetryAttempts is not filled by moto; a hand-set value is still drift (→ -1)."""
    seeded = seed(functions=["handler"], streams=["clicks"])
    source = seeded.streams["clicks"]
    spec = write_spec(
        {"handler": [{"event_source_arn": source, "starting_position": "LATEST", "batch_size": 20}]}
    )
    esm.apply(spec)
    (live,) = lam().list_event_source_mappings()["EventSourceMappings"]
    lam().update_event_source_mapping(UUID=live["UUID"], MaximumRetryAttempts=5, BatchSize=30)

    plan, sent = esm.apply(spec)
    (change,) = plan.changes
    assert change.fields == [
        FieldChange("batch_size", 30, 20, False),
        FieldChange("maximum_retry_attempts", 5, -1, False),
    ]
    assert sent == [
        (
            "UpdateEventSourceMapping",
            {"UUID": live["UUID"], "BatchSize": 20, "MaximumRetryAttempts": -1},
        )
    ]
    after = get(live["UUID"])
    assert (after["BatchSize"], after["MaximumRetryAttempts"]) == (20, -1)
    esm.assert_no_changes(spec)


# -- exclusive ownership ----------------------------------------------------------------------


def test_managed_function_is_exclusive_and_unlisted_function_untouched(
    esm, seed, write_spec, list_mappings
):
    seeded = seed(functions=["managed", "bystander"], queues=["q1", "q2"])
    managed, bystander = seeded.functions["managed"], seeded.functions["bystander"]
    q1, q2 = seeded.queues["q1"], seeded.queues["q2"]
    stray = lam().create_event_source_mapping(FunctionName="managed", EventSourceArn=q2)
    other = lam().create_event_source_mapping(FunctionName="bystander", EventSourceArn=q1)

    spec = write_spec({"managed": [{"event_source_arn": q1}]})
    plan, sent = esm.apply(spec)
    assert [(c.action, c.address, c.uuid) for c in plan.changes] == [
        ("delete", f"managed[{q2}]", stray["UUID"]),
        ("create", f"managed[{q1}]", None),
    ]
    assert all(c.function_arn == managed for c in plan.changes)
    assert [name for name, _ in sent] == ["DeleteEventSourceMapping", "CreateEventSourceMapping"]
    assert other["UUID"] not in json.dumps(sent)

    assert_gone(stray["UUID"])
    assert [m["EventSourceArn"] for m in list_mappings(function=managed)] == [q1]
    untouched = get(other["UUID"])
    assert (untouched["FunctionArn"], untouched["EventSourceArn"]) == (bystander, q1)
    assert (untouched["BatchSize"], untouched["State"]) == (other["BatchSize"], "Enabled")
    esm.assert_no_changes(spec)


def test_empty_list_deletes_every_mapping_of_the_function(esm, seed, write_spec, list_mappings):
    seeded = seed(functions=["retired", "bystander"], queues=["q"], streams=["s"])
    retired, bystander = seeded.functions["retired"], seeded.functions["bystander"]
    q, s = seeded.queues["q"], seeded.streams["s"]
    uuids = {
        lam().create_event_source_mapping(FunctionName="retired", EventSourceArn=q)["UUID"],
        lam().create_event_source_mapping(
            FunctionName=retired, EventSourceArn=s, StartingPosition="LATEST"
        )["UUID"],
    }
    kept = lam().create_event_source_mapping(FunctionName="bystander", EventSourceArn=q)["UUID"]

    spec = write_spec({"retired": []})
    plan, sent = esm.apply(spec)
    assert plan.summary() == {"create": 0, "update": 0, "replace": 0, "delete": 2}
    assert {c.uuid for c in plan.changes} == uuids
    assert {p["UUID"] for name, p in sent} == uuids
    assert list_mappings(function=retired) == []
    assert [m["UUID"] for m in list_mappings(function=bystander)] == [kept]
    esm.assert_no_changes(spec)


def test_name_and_version_qualifier_are_different_functions(esm, seed, write_spec, list_mappings):
    seeded = seed(functions=["handler", "handler:1"], queues=["q"], streams=["s"])
    unqualified, version = seeded.functions["handler"], seeded.functions["handler:1"]
    kept = lam().create_event_source_mapping(
        FunctionName="handler", EventSourceArn=seeded.queues["q"]
    )

    spec = write_spec(
        {"handler:1": [{"event_source_arn": seeded.streams["s"], "starting_position": "LATEST"}]}
    )
    plan, _ = esm.apply(spec)
    assert [(c.action, c.function_arn) for c in plan.changes] == [("create", version)]
    assert [m["EventSourceArn"] for m in list_mappings(function=version)] == [seeded.streams["s"]]
    assert [m["UUID"] for m in list_mappings(function=unqualified)] == [kept["UUID"]]
    esm.assert_no_changes(spec)


# -- ignore_changes ---------------------------------------------------------------------------


def test_ignore_changes_enabled_leaves_hand_disabled_mapping_alone(esm, seed, write_spec):
    seeded = seed(functions=["handler"], queues=["q"])
    q = seeded.queues["q"]
    ignoring = {"event_source_arn": q, "batch_size": 5, "ignore_changes": ["enabled"]}
    spec = write_spec({"handler": [ignoring]})
    esm.apply(spec)
    (live,) = lam().list_event_source_mappings()["EventSourceMappings"]
    lam().update_event_source_mapping(UUID=live["UUID"], Enabled=False)  # an operator pauses it
    assert get(live["UUID"])["State"] == "Disabled"

    esm.assert_no_changes(spec)

    # another change while enabled is ignored: the update must not re-enable it
    spec = write_spec({"handler": [{**ignoring, "batch_size": 6}]})
    plan, sent = esm.apply(spec)
    assert [f.name for f in plan.changes[0].fields] == ["batch_size"]
    assert sent == [("UpdateEventSourceMapping", {"UUID": live["UUID"], "BatchSize": 6})]
    assert get(live["UUID"])["State"] == "Disabled"

    # without ignore_changes, the spec's (default) enabled: true wins
    spec = write_spec({"handler": [{"event_source_arn": q, "batch_size": 6}]})
    plan, sent = esm.apply(spec)
    (change,) = plan.changes
    assert change.action == "update"
    assert change.fields == [FieldChange("enabled", False, True, False)]
    assert sent == [("UpdateEventSourceMapping", {"UUID": live["UUID"], "Enabled": True})]
    assert get(live["UUID"])["State"] == "Enabled"
    esm.assert_no_changes(spec)


# -- filters ----------------------------------------------------------------------------------


def test_filter_compared_by_meaning_and_removed(esm, seed, write_spec):
    seeded = seed(functions=["handler"], queues=["q"])
    q = seeded.queues["q"]
    pattern = {"body": {"Temperature": [{"numeric": [">", 0, "<=", 100]}], "kind": ["reading"]}}
    spec = write_spec(
        {
            "handler": [
                {"event_source_arn": q, "filter_criteria": {"filters": [{"pattern": pattern}]}}
            ]
        }
    )
    esm.apply(spec)
    (live,) = lam().list_event_source_mappings()["EventSourceMappings"]
    (stored,) = live["FilterCriteria"]["Filters"]
    assert json.loads(stored["Pattern"]) == pattern
    esm.assert_no_changes(spec)

    # the same pattern as a JSON string with other key order and spacing: still no change
    text = '{ "body": {"kind": ["reading"], "Temperature": [{"numeric": [">", 0, "<=", 100]}]} }'
    spec = write_spec(
        {"handler": [{"event_source_arn": q, "filter_criteria": {"filters": [{"pattern": text}]}}]}
    )
    esm.assert_no_changes(spec)

    # removing the filter is an in-place update that clears it
    spec = write_spec({"handler": [{"event_source_arn": q}]})
    plan, sent = esm.apply(spec)
    (change,) = plan.changes
    assert (change.action, change.uuid) == ("update", live["UUID"])
    assert [f.name for f in change.fields] == ["filter_criteria.filters"]
    assert change.fields[0].after is None
    assert not change.fields[0].forces_replacement
    assert sent == [("UpdateEventSourceMapping", {"UUID": live["UUID"], "FilterCriteria": {}})]
    assert not (get(live["UUID"]).get("FilterCriteria") or {}).get("Filters")
    esm.assert_no_changes(spec)


# -- one source, two functions ----------------------------------------------------------------


def test_same_queue_on_two_functions(esm, seed, write_spec, list_mappings):
    seeded = seed(functions=["a", "b"], queues=["shared"])
    q = seeded.queues["shared"]
    spec = write_spec(
        {
            "a": [{"event_source_arn": q, "batch_size": 5}],
            "b": [{"event_source_arn": q, "batch_size": 5}],
        }
    )
    plan, _ = esm.apply(spec)
    assert sorted((c.action, c.address) for c in plan.changes) == [
        ("create", f"a[{q}]"),
        ("create", f"b[{q}]"),
    ]
    (on_a,) = list_mappings(function=seeded.functions["a"])
    (on_b,) = list_mappings(function=seeded.functions["b"])
    assert on_a["EventSourceArn"] == on_b["EventSourceArn"] == q
    esm.assert_no_changes(spec)

    spec = write_spec(
        {
            "a": [{"event_source_arn": q, "batch_size": 5}],
            "b": [{"event_source_arn": q, "batch_size": 8}],
        }
    )
    plan, sent = esm.apply(spec)
    assert [(c.action, c.address, c.uuid) for c in plan.changes] == [
        ("update", f"b[{q}]", on_b["UUID"])
    ]
    assert sent == [("UpdateEventSourceMapping", {"UUID": on_b["UUID"], "BatchSize": 8})]
    assert (get(on_a["UUID"])["BatchSize"], get(on_b["UUID"])["BatchSize"]) == (5, 8)
    esm.assert_no_changes(spec)


# -- function references, defaults, tags ------------------------------------------------------


def test_function_named_by_arn_matches_mapping_made_by_name(esm, seed, write_spec, list_mappings):
    seeded = seed(functions=["handler"], queues=["q"])
    function_arn, q = seeded.functions["handler"], seeded.queues["q"]
    made = lam().create_event_source_mapping(FunctionName="handler", EventSourceArn=q, BatchSize=5)
    spec = write_spec({function_arn: [{"event_source_arn": q, "batch_size": 5}]})
    esm.assert_no_changes(spec)

    spec = write_spec({function_arn: [{"event_source_arn": q, "batch_size": 6}]})
    plan, sent = esm.apply(spec)
    assert [(c.action, c.uuid, c.address) for c in plan.changes] == [
        ("update", made["UUID"], f"{function_arn}[{q}]")
    ]
    assert sent == [("UpdateEventSourceMapping", {"UUID": made["UUID"], "BatchSize": 6})]
    assert [m["UUID"] for m in list_mappings(function=function_arn)] == [made["UUID"]]


def test_defaults_reach_only_kinds_that_have_the_field(esm, seed, write_spec):
    seeded = seed(functions=["handler"], queues=["q"], streams=["s"])
    q, s = seeded.queues["q"], seeded.streams["s"]
    spec = write_spec(
        {
            "handler": [
                {"event_source_arn": q},
                {"event_source_arn": s, "starting_position": "LATEST"},
            ]
        },
        defaults={"maximum_retry_attempts": 3, "batch_size": 7},
    )
    plan, sent = esm.apply(spec)
    requests = {p["EventSourceArn"]: p for name, p in sent}
    assert requests[q]["BatchSize"] == 7 and "MaximumRetryAttempts" not in requests[q]
    assert (requests[s]["BatchSize"], requests[s]["MaximumRetryAttempts"]) == (7, 3)
    by_source = {
        m["EventSourceArn"]: m for m in lam().list_event_source_mappings()["EventSourceMappings"]
    }
    assert by_source[s]["MaximumRetryAttempts"] == 3
    esm.assert_no_changes(spec)


def test_tags_managed_when_given_left_alone_when_absent(esm, seed, write_spec):
    seeded = seed(functions=["handler"], queues=["q"])
    q = seeded.queues["q"]
    spec = write_spec({"handler": [{"event_source_arn": q, "tags": {"team": "a", "env": "x"}}]})
    _, sent = esm.apply(spec)
    assert sent[0][1]["Tags"] == {"team": "a", "env": "x"}
    (live,) = lam().list_event_source_mappings()["EventSourceMappings"]
    arn = live["EventSourceMappingArn"]
    assert lam().list_tags(Resource=arn)["Tags"] == {"team": "a", "env": "x"}
    esm.assert_no_changes(spec)

    spec = write_spec({"handler": [{"event_source_arn": q, "tags": {"team": "b"}}]})
    plan, sent = esm.apply(spec)
    (change,) = plan.changes
    assert change.action == "update"
    assert sorted((f.name, f.before, f.after) for f in change.fields) == [
        ("tags.env", "x", None),
        ("tags.team", "a", "b"),
    ]
    assert sent == [
        ("TagResource", {"Resource": arn, "Tags": {"team": "b"}}),
        ("UntagResource", {"Resource": arn, "TagKeys": ["env"]}),
    ]
    assert lam().list_tags(Resource=arn)["Tags"] == {"team": "b"}
    esm.assert_no_changes(spec)

    lam().tag_resource(Resource=arn, Tags={"owner": "someone"})  # tags not in the spec: not read
    esm.assert_no_changes(write_spec({"handler": [{"event_source_arn": q}]}))
