"""Guards for unattended runs (issue 12, SPEC "prevent_destroy" and "--max-destroy"): the spec key,
the flag diff puts on each change, and the pure plan checks in esm_reconcile/guards.py.

prevent_destroy guards what its spec entry still describes: a replace of the mapping, and the
delete of a second live mapping with its identity. Removing the entry removes the guard, as in
Terraform (guards.py's docstring says why); --max-destroy bounds those deletes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from esm_reconcile import guards, saved_plan
from esm_reconcile.diff import diff
from esm_reconcile.errors import EsmError, SpecErrors
from esm_reconcile.model import DesiredMapping, LiveMapping, ManagedFunction, parse_function_ref
from esm_reconcile.plan import Change, FieldChange, Plan
from esm_reconcile.schema import spec_schema
from esm_reconcile.validate import load_spec
from tests.aws_shapes import ACCOUNT, FN, QUEUE, REGION, STREAM, sqs_live, stream_live

QUEUE2 = f"arn:aws:sqs:{REGION}:{ACCOUNT}:refunds"
STREAM_ADDRESS = f"orders-handler[{STREAM}]"


# -- builders -------------------------------------------------------------------------------------


def load(tmp_path: Path, functions: dict[str, Any], **top: Any) -> dict[str, list[DesiredMapping]]:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"version": 1, **top, "functions": functions}, sort_keys=False))
    return load_spec([path]).functions


def plan_for(tmp_path: Path, functions: dict[str, Any], live: list[LiveMapping], **top: Any):
    managed = [
        ManagedFunction(label, parse_function_ref(label).arn(REGION, ACCOUNT), mappings)
        for label, mappings in load(tmp_path, functions, **top).items()
    ]
    return diff(managed, live)


def stream(**settings: Any) -> dict[str, Any]:
    return {"event_source_arn": STREAM, "starting_position": "LATEST", **settings}


def change(action: str, name: str, protected: bool = False, **kwargs: Any) -> Change:
    return Change(
        action=action,  # type: ignore[arg-type]
        address=f"{name}[{QUEUE}]",
        function_arn=FN,
        event_source=QUEUE,
        uuid=None if action == "create" else f"u-{name}",
        prevent_destroy=protected,
        **kwargs,
    )


def destroying(deletes: int, replaces: int, others: int = 0) -> Plan:
    changes = [change("delete", f"d{i}") for i in range(deletes)]
    changes += [change("replace", f"r{i}") for i in range(replaces)]
    changes += [change("update", f"u{i}") for i in range(others)]
    changes += [change("create", f"c{i}") for i in range(others)]
    return Plan(changes=changes, region=REGION, account=ACCOUNT)


# -- the spec key ---------------------------------------------------------------------------------


def test_prevent_destroy_is_read_into_the_desired_mapping_not_its_settings(
    tmp_path: Path,
) -> None:
    functions = load(
        tmp_path,
        {"orders-handler": [stream(prevent_destroy=True), {"event_source_arn": QUEUE}]},
    )
    protected, plain = functions["orders-handler"]
    assert protected.prevent_destroy is True
    assert plain.prevent_destroy is False
    assert "prevent_destroy" not in protected.settings  # never compared, never sent to AWS


def test_prevent_destroy_in_defaults_reaches_every_mapping_and_a_mapping_can_opt_out(
    tmp_path: Path,
) -> None:
    functions = load(
        tmp_path,
        {"orders-handler": [stream(), {"event_source_arn": QUEUE, "prevent_destroy": False}]},
        defaults={"prevent_destroy": True},
    )
    assert [m.prevent_destroy for m in functions["orders-handler"]] == [True, False]


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_prevent_destroy_must_be_a_boolean(tmp_path: Path, value: Any) -> None:
    with pytest.raises(SpecErrors) as info:
        load(tmp_path, {"orders-handler": [stream(prevent_destroy=value)]})
    assert [e.field for e in info.value.errors] == ["functions.orders-handler[0].prevent_destroy"]


def test_misspelt_prevent_destroy_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(SpecErrors) as info:
        load(tmp_path, {"orders-handler": [stream(prevent_destroyed=True)]})
    assert "did you mean 'prevent_destroy'?" in str(info.value)


def test_schema_has_prevent_destroy_as_a_boolean_defaulting_to_false() -> None:
    schema = spec_schema()
    prop = schema["definitions"]["MappingSpec"]["properties"]["prevent_destroy"]
    assert prop["type"] == "boolean"
    assert prop["default"] is False
    assert "delete or replace" in prop["description"]
    validator = jsonschema.Draft7Validator(schema)
    spec = {"version": 1, "functions": {"f": [{"event_source_arn": QUEUE}]}}
    spec["functions"]["f"][0]["prevent_destroy"] = True
    assert not list(validator.iter_errors(spec))
    spec["functions"]["f"][0]["prevent_destroy"] = "true"
    assert list(validator.iter_errors(spec))


# -- prevent_destroy: what diff marks and what the guard refuses --------------------------------


def test_replace_of_a_protected_mapping_fails_naming_mapping_and_field(tmp_path: Path) -> None:
    live = stream_live(starting_position="TRIM_HORIZON")
    plan = plan_for(tmp_path, {"orders-handler": [stream(prevent_destroy=True)]}, [live])
    (replace,) = plan.changes
    assert (replace.action, replace.prevent_destroy) == ("replace", True)
    errors = guards.destroy_guard_errors(plan)
    assert errors == [
        f"{STREAM_ADDRESS}: prevent_destroy is set, but the plan replaces mapping u-stream-1: "
        "starting_position (TRIM_HORIZON -> LATEST) forces replacement; set the spec to the "
        "live value, or remove prevent_destroy to allow the replace"
    ]
    with pytest.raises(EsmError) as info:
        guards.check([plan])
    assert str(info.value) == errors[0]
    assert isinstance(info.value, guards.GuardError)
    assert info.value.problems == errors


def test_every_field_forcing_the_replace_is_named(tmp_path: Path) -> None:
    spec = stream(starting_position="TRIM_HORIZON", batch_size=50, prevent_destroy=True)
    live = stream_live(
        starting_position="AT_TIMESTAMP",
        StartingPositionTimestamp=datetime(2025, 11, 1, tzinfo=UTC),
    )
    plan = plan_for(tmp_path, {"orders-handler": [spec]}, [live])
    (error,) = guards.destroy_guard_errors(plan)
    assert "starting_position (AT_TIMESTAMP -> TRIM_HORIZON)" in error
    assert "starting_position_timestamp (2025-11-01T00:00:00Z -> null)" in error
    assert "force replacement" in error
    assert "batch_size" not in error  # changes in place; not why the mapping is replaced


def test_update_and_create_of_a_protected_mapping_pass(tmp_path: Path) -> None:
    spec = {
        "orders-handler": [
            stream(batch_size=50, prevent_destroy=True),
            {"event_source_arn": QUEUE, "prevent_destroy": True},
        ]
    }
    plan = plan_for(tmp_path, spec, [stream_live()])
    assert sorted((c.action, c.prevent_destroy) for c in plan.changes) == [
        ("create", True),
        ("update", True),
    ]
    assert guards.destroy_guard_errors(plan) == []
    guards.check([plan])  # no error


def test_replace_of_an_unprotected_mapping_passes(tmp_path: Path) -> None:
    live = stream_live(starting_position="TRIM_HORIZON")
    plan = plan_for(tmp_path, {"orders-handler": [stream()]}, [live])
    assert [(c.action, c.prevent_destroy) for c in plan.changes] == [("replace", False)]
    guards.check([plan])


def test_ignored_create_only_field_is_no_replace_and_passes(tmp_path: Path) -> None:
    live = stream_live(starting_position="TRIM_HORIZON")
    spec = stream(prevent_destroy=True, ignore_changes=["starting_position"])
    plan = plan_for(tmp_path, {"orders-handler": [spec]}, [live])
    assert plan.changes == []
    guards.check([plan])


def test_removing_a_protected_mapping_from_the_spec_removes_the_guard(tmp_path: Path) -> None:
    # Decision (guards.py): the flag lives in the spec entry; with the entry gone, the delete
    # is planned, as removing a resource block with prevent_destroy does in Terraform.
    live = [stream_live(), sqs_live()]
    plan = plan_for(tmp_path, {"orders-handler": [{"event_source_arn": QUEUE}]}, live)
    assert [(c.action, c.uuid, c.prevent_destroy) for c in plan.changes] == [
        ("delete", "u-stream-1", False)
    ]
    assert guards.destroy_guard_errors(plan) == []
    # ... and --max-destroy is what bounds such deletes in unattended runs.
    assert guards.max_destroy_error([plan], 0) is not None


def test_a_function_emptied_in_the_spec_deletes_its_mappings_unguarded(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, {"orders-handler": []}, [stream_live()])
    assert [c.action for c in plan.changes] == ["delete"]
    guards.check([plan])


def test_delete_of_a_duplicate_of_a_protected_mapping_fails(tmp_path: Path) -> None:
    # Two live mappings with one identity (a race; AWS normally refuses it): diff keeps one and
    # deletes the other, but which holds the read position is unknowable.
    live = [stream_live(uuid="u-stream-1"), stream_live(uuid="u-stream-2")]
    plan = plan_for(tmp_path, {"orders-handler": [stream(prevent_destroy=True)]}, live)
    assert [(c.action, c.uuid, c.prevent_destroy) for c in plan.changes] == [
        ("delete", "u-stream-2", True)
    ]
    (error,) = guards.destroy_guard_errors(plan)
    assert error.startswith(f"{STREAM_ADDRESS}: prevent_destroy is set, but the plan deletes")
    assert "u-stream-2" in error
    with pytest.raises(guards.GuardError):
        guards.check(plan)


def test_one_line_per_protected_mapping_and_region_named_across_plans() -> None:
    replace = change(
        "replace",
        "orders",
        protected=True,
        fields=[FieldChange("starting_position", "LATEST", "TRIM_HORIZON", True)],
    )
    east = Plan(changes=[replace], region="us-east-1", account=ACCOUNT)
    west = Plan(changes=[change("delete", "refunds", protected=True)], region="us-west-2")
    errors = guards.destroy_guard_errors([east, west])
    assert len(errors) == 2
    assert errors[0].startswith(f"us-east-1: orders[{QUEUE}]: prevent_destroy is set")
    assert errors[1].startswith(f"us-west-2: refunds[{QUEUE}]: prevent_destroy is set")
    # One plan: its region is in the plan's header already.
    assert guards.destroy_guard_errors(east)[0].startswith(f"orders[{QUEUE}]: ")
    with pytest.raises(guards.GuardError) as info:
        guards.check([east, west])
    assert str(info.value).splitlines() == errors


def test_error_lines_stay_one_line_whatever_the_values() -> None:
    replace = change(
        "replace",
        "orders",
        protected=True,
        fields=[FieldChange("starting_position", "LATEST\nforged: line", "x" * 5000, True)],
    )
    (error,) = guards.destroy_guard_errors(Plan(changes=[replace]))
    assert "\n" not in error
    assert len(error) < 1000


def test_prevent_destroy_survives_a_saved_plan() -> None:
    protected = change("replace", "orders", protected=True, create_request={"FunctionName": FN})
    stored = saved_plan.saved_change(protected)
    assert stored["prevent_destroy"] is True
    assert saved_plan.SavedChange.model_validate(stored).prevent_destroy is True
    # A plan saved before the key existed still loads (re-derivation then compares it).
    del stored["prevent_destroy"]
    assert saved_plan.SavedChange.model_validate(stored).prevent_destroy is False


def test_prevent_destroy_is_not_in_the_plan_json(tmp_path: Path) -> None:
    live = stream_live(starting_position="TRIM_HORIZON")
    plan = plan_for(tmp_path, {"orders-handler": [stream(prevent_destroy=True)]}, [live])
    assert "prevent_destroy" not in plan.to_json()["changes"][0]


# -- --max-destroy --------------------------------------------------------------------------------


@pytest.mark.parametrize(("deletes", "replaces"), [(3, 0), (0, 3), (1, 2)])
def test_max_destroy_allows_exactly_n(deletes: int, replaces: int) -> None:
    plan = destroying(deletes, replaces, others=4)
    assert guards.max_destroy_error([plan], 3) is None
    guards.check([plan], max_destroy=3)


@pytest.mark.parametrize(("deletes", "replaces"), [(4, 0), (0, 4), (1, 3)])
def test_max_destroy_refuses_n_plus_one_counting_replaces(deletes: int, replaces: int) -> None:
    plan = destroying(deletes, replaces, others=4)  # creates and updates never count
    message = guards.max_destroy_error([plan], 3)
    assert message == (
        f"refusing to apply: the plan deletes or replaces 4 mappings ({deletes} to delete, "
        f"{replaces} to replace), more than --max-destroy 3 allows; nothing was changed"
    )
    with pytest.raises(EsmError) as info:
        guards.check([plan], max_destroy=3)
    assert str(info.value) == message


def test_max_destroy_counts_across_every_plan_of_the_run() -> None:
    east, west = destroying(1, 1), destroying(1, 0)
    assert guards.destroy_counts([east, west]) == {"delete": 2, "replace": 1}
    assert guards.max_destroy_error([east, west], 3) is None
    message = guards.max_destroy_error([east, west], 2)
    assert message is not None
    assert "deletes or replaces 3 mappings" in message
    assert "--max-destroy 2" in message


def test_max_destroy_zero_refuses_any_destroy_and_allows_none() -> None:
    assert guards.max_destroy_error(destroying(0, 0, others=5), 0) is None
    message = guards.max_destroy_error(destroying(1, 0), 0)
    assert message is not None
    assert "deletes or replaces 1 mapping (1 to delete, 0 to replace)" in message
    assert "--max-destroy 0" in message


def test_no_limit_is_no_check() -> None:
    assert guards.max_destroy_error(destroying(500, 500), None) is None
    guards.check([destroying(500, 500)])


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        guards.max_destroy_error(destroying(0, 0), -1)
    with pytest.raises(guards.GuardError, match="--max-destroy must be 0 or more, not -1"):
        guards.check([destroying(0, 0)], max_destroy=-1)


def test_both_guards_report_together(tmp_path: Path) -> None:
    live = stream_live(starting_position="TRIM_HORIZON")
    plan = plan_for(tmp_path, {"orders-handler": [stream(prevent_destroy=True)]}, [live])
    with pytest.raises(guards.GuardError) as info:
        guards.check([plan], max_destroy=0)
    first, second = info.value.problems
    assert "prevent_destroy is set" in first
    assert second.startswith("refusing to apply: the plan deletes or replaces 1 mapping")
