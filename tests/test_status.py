"""`esm status`'s core (status.py): every verdict and their precedence, unmanaged and orphaned
mappings, the JSON / text / markdown renderings, the warnings plan and apply print, and (on
moto) that the unmanaged mappings come from the List pages plan reads anyway."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from esm_reconcile import aws as aws_module
from esm_reconcile.model import LiveMapping, ManagedFunction, parse_function_ref
from esm_reconcile.ownership import Scope
from esm_reconcile.planning import ScopePlan, derive_plan, plan_scopes
from esm_reconcile.status import (
    HEALTHS,
    PRECEDENCE,
    STUCK_AFTER,
    StatusReport,
    health,
    render,
    unhealthy_warnings,
)
from esm_reconcile.validate import load_spec
from tests.aws_shapes import ACCOUNT, FN, LAST_MODIFIED, QUEUE, REGION, STREAM, U, sqs_live
from tests.aws_shapes import stream_live as _stream_live
from tests.conftest import seed

OTHER_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-elses"
QUEUE2 = f"arn:aws:sqs:{REGION}:{ACCOUNT}:refunds"
NOW = LAST_MODIFIED + timedelta(hours=1)  # every read-back was last modified an hour ago
PROBLEM = "PROBLEM: Function call failed"

SPEC_KEYS = {"format_version", "mappings", "unmanaged", "summary"}
MAPPING_KEYS = {
    "address",
    "region",
    "account",
    "uuid",
    "state",
    "state_transition_reason",
    "last_processing_result",
    "last_modified",
    "health",
    "detail",
}
UNMANAGED_KEYS = {"uuid", "function_arn", "event_source", "state"}
SUMMARY_KEYS = {"ok", "missing", "drifted", "disabled", "problem", "stuck"}


# -- builders -------------------------------------------------------------------------------------


def functions_of(
    tmp_path: Path, functions: dict[str, Any], region: str = REGION
) -> list[ManagedFunction]:
    """A version-1 spec with these functions, through the real loader and validator."""
    path = tmp_path / f"spec-{region}.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "functions": functions}, sort_keys=False))
    return [
        ManagedFunction(label, parse_function_ref(label).arn(region, ACCOUNT), mappings)
        for label, mappings in load_spec([path]).functions.items()
    ]


def scope_plan(
    tmp_path: Path,
    functions: dict[str, Any],
    live: list[LiveMapping],
    *,
    unmanaged: list[LiveMapping] | None = None,
    orphans: list[LiveMapping] | None = None,
    missing_functions: list[str] | None = None,
    region: str = REGION,
) -> ScopePlan:
    """What planning.plan_scope returns, without AWS: the plan derived from these."""
    managed = functions_of(tmp_path, functions, region)
    plan = derive_plan(managed, live)
    plan.region, plan.account = region, ACCOUNT
    return ScopePlan(
        None,  # type: ignore[arg-type]  # status reads no scope
        None,  # type: ignore[arg-type]  # ...and no clients
        plan,
        live,
        managed,
        unmanaged or [],
        orphans,
        missing_functions or [],
    )


def report_of(tmp_path: Path, functions: dict[str, Any], live: list[LiveMapping], **kw: Any):
    return health([scope_plan(tmp_path, functions, live, **kw)], NOW)


def one(report: StatusReport):
    assert len(report.mappings) == 1, report.mappings
    return report.mappings[0]


def orders(**settings: Any) -> dict[str, Any]:
    """The spec of `orders-handler` with one SQS mapping of QUEUE."""
    return {"orders-handler": [{"event_source_arn": QUEUE, **settings}]}


def live_sqs(name: str = "a", **overrides: Any) -> LiveMapping:
    return sqs_live(U(name), **overrides)


def stream_live(name: str = "s", **overrides: Any) -> LiveMapping:
    return _stream_live(U(name), **overrides)


def modified(ago: timedelta) -> datetime:
    return NOW - ago


# -- verdicts -------------------------------------------------------------------------------------


def test_ok_has_every_field_and_an_empty_detail(tmp_path: Path) -> None:
    verdict = one(report_of(tmp_path, orders(), [live_sqs(LastProcessingResult="OK")]))
    assert verdict.to_json() == {
        "address": f"orders-handler[{QUEUE}]",
        "region": REGION,
        "account": ACCOUNT,
        "uuid": U("a"),
        "state": "Enabled",
        "state_transition_reason": "USER_INITIATED",
        "last_processing_result": "OK",
        "last_modified": "2025-11-03T12:00:00+00:00",
        "health": "ok",
        "detail": "",
    }


def test_missing_is_in_the_spec_and_not_live(tmp_path: Path) -> None:
    verdict = one(report_of(tmp_path, orders(), []))
    assert verdict.health == "missing"
    assert verdict.uuid is None and verdict.state is None and verdict.last_modified is None
    assert "not live" in verdict.detail and "creates" in verdict.detail


def test_missing_names_a_function_that_does_not_exist(tmp_path: Path) -> None:
    report = report_of(tmp_path, orders(), [], missing_functions=["orders-handler"])
    assert "function orders-handler does not exist" in one(report).detail


def test_missing_while_the_old_mapping_is_still_deleting(tmp_path: Path) -> None:
    deleting = live_sqs("old", state="Deleting", LastModified=modified(timedelta(minutes=1)))
    verdict = one(report_of(tmp_path, orders(), [deleting]))
    assert verdict.health == "missing" and U("old") in verdict.detail


def test_drifted_when_the_plan_updates_it(tmp_path: Path) -> None:
    verdict = one(report_of(tmp_path, orders(batch_size=5), [live_sqs()]))
    assert verdict.health == "drifted"
    assert "batch_size" in verdict.detail and "in place" in verdict.detail


def test_drifted_when_the_plan_replaces_it(tmp_path: Path) -> None:
    spec = {"orders-handler": [{"event_source_arn": STREAM, "starting_position": "TRIM_HORIZON"}]}
    verdict = one(report_of(tmp_path, spec, [stream_live()]))
    assert verdict.health == "drifted"
    assert "starting_position" in verdict.detail and "replaces it" in verdict.detail


def test_a_live_mapping_the_spec_does_not_list_is_drifted(tmp_path: Path) -> None:
    extra = live_sqs("extra", source=QUEUE2)
    report = report_of(tmp_path, orders(), [live_sqs(), extra])
    by_uuid = {m.uuid: m for m in report.mappings}
    assert by_uuid[U("a")].health == "ok"
    assert by_uuid[U("extra")].health == "drifted"
    assert by_uuid[U("extra")].address == f"orders-handler[{QUEUE2}]"
    assert "deletes it" in by_uuid[U("extra")].detail


def test_a_duplicate_is_paired_as_diff_pairs_it(tmp_path: Path) -> None:
    """diff keeps the lowest UUID and deletes the rest: status agrees."""
    first, second = sorted([live_sqs("one"), live_sqs("two")], key=lambda m: m.uuid)
    report = report_of(tmp_path, orders(), [second, first])
    assert [(m.uuid, m.health) for m in report.mappings] == [
        (first.uuid, "ok"),
        (second.uuid, "drifted"),
    ]


def test_disabled_while_the_spec_wants_it_enabled(tmp_path: Path) -> None:
    verdict = one(report_of(tmp_path, orders(), [live_sqs(state="Disabled")]))
    assert verdict.health == "disabled"
    assert verdict.detail.startswith("Disabled while the spec wants it enabled")
    assert "also drifted: settings differ (enabled)" in verdict.detail  # the plan enables it


@pytest.mark.parametrize("settings", [{"enabled": False}, {"ignore_changes": ["enabled"]}])
def test_disabled_as_the_spec_allows_is_ok(tmp_path: Path, settings: dict[str, Any]) -> None:
    verdict = one(report_of(tmp_path, orders(**settings), [live_sqs(state="Disabled")]))
    assert (verdict.health, verdict.detail) == ("ok", "")


@pytest.mark.parametrize(
    "overrides",
    [
        {"LastProcessingResult": PROBLEM},
        {"StateTransitionReason": "PROBLEM: Lambda was unable to reach the cluster"},
        {"LastProcessingResult": "PROBLEM: Connection error. Your VPC must be able to connect"},
    ],
)
def test_problem(tmp_path: Path, overrides: dict[str, Any]) -> None:
    verdict = one(report_of(tmp_path, orders(), [live_sqs(**overrides)]))
    assert verdict.health == "problem"
    assert next(iter(overrides.values())) in verdict.detail


@pytest.mark.parametrize("result", ["OK", "No records processed", "problems: none", None])
def test_no_problem_without_the_prefix(tmp_path: Path, result: str | None) -> None:
    verdict = one(report_of(tmp_path, orders(), [live_sqs(LastProcessingResult=result)]))
    assert verdict.health == "ok"


@pytest.mark.parametrize("state", ["Creating", "Enabling", "Updating", "Disabling"])
def test_stuck_in_a_transition_for_more_than_15_minutes(tmp_path: Path, state: str) -> None:
    mapping = live_sqs(state=state, LastModified=modified(timedelta(minutes=16)))
    spec = orders(enabled=False) if state == "Disabling" else orders()
    verdict = one(report_of(tmp_path, spec, [mapping]))
    assert verdict.health == "stuck"
    assert verdict.detail.startswith(f"{state} for 16 minutes")


@pytest.mark.parametrize(
    ("ago", "expected"),
    [
        (STUCK_AFTER - timedelta(seconds=1), "ok"),
        (STUCK_AFTER, "ok"),  # "more than 15 minutes"
        (STUCK_AFTER + timedelta(seconds=1), "stuck"),
    ],
)
def test_stuck_boundary_is_15_minutes(tmp_path: Path, ago: timedelta, expected: str) -> None:
    mapping = live_sqs(state="Creating", LastModified=modified(ago))
    assert one(report_of(tmp_path, orders(), [mapping])).health == expected


def test_settled_states_are_never_stuck(tmp_path: Path) -> None:
    mapping = live_sqs(LastModified=modified(timedelta(days=30)))
    assert one(report_of(tmp_path, orders(), [mapping])).health == "ok"


def test_no_last_modified_is_not_stuck(tmp_path: Path) -> None:
    mapping = live_sqs(state="Updating")
    mapping.last_modified = None
    assert one(report_of(tmp_path, orders(), [mapping])).health == "ok"


def test_stuck_deleting_leftover_is_listed_and_a_settling_one_is_not(tmp_path: Path) -> None:
    stuck = live_sqs("gone-slow", source=QUEUE2, state="Deleting")
    settling = live_sqs(
        "gone-fast",
        source=f"{QUEUE2}-2",
        state="Deleting",
        LastModified=modified(timedelta(minutes=2)),
    )
    report = report_of(tmp_path, orders(), [live_sqs(), stuck, settling])
    assert [(m.uuid, m.health) for m in report.mappings] == [
        (U("a"), "ok"),
        (U("gone-slow"), "stuck"),
    ]


def test_now_without_a_zone_is_utc(tmp_path: Path) -> None:
    mapping = live_sqs(state="Creating", LastModified=modified(timedelta(minutes=20)))
    made = scope_plan(tmp_path, orders(), [mapping])
    assert one(health([made], NOW.replace(tzinfo=None))).health == "stuck"


# -- precedence -----------------------------------------------------------------------------------


def test_precedence_is_documented_order() -> None:
    assert PRECEDENCE == ("missing", "stuck", "problem", "disabled", "drifted")
    assert set(PRECEDENCE) | {"ok"} == set(HEALTHS)


def test_problem_beats_disabled_and_drifted_and_names_them(tmp_path: Path) -> None:
    mapping = live_sqs(
        state="Disabled",
        BatchSize=7,
        StateTransitionReason="PROBLEM: Lambda disabled it: the queue is gone",
    )
    verdict = one(report_of(tmp_path, orders(), [mapping]))
    assert verdict.health == "problem"
    assert verdict.detail.startswith("StateTransitionReason: PROBLEM: Lambda disabled it")
    assert "also disabled: Disabled while the spec wants it enabled" in verdict.detail
    assert "also drifted: settings differ (batch_size, enabled)" in verdict.detail
    assert verdict.detail.index("also disabled") < verdict.detail.index("also drifted")


def test_stuck_beats_problem(tmp_path: Path) -> None:
    mapping = live_sqs(state="Updating", LastProcessingResult=PROBLEM)
    verdict = one(report_of(tmp_path, orders(batch_size=5), [mapping]))
    assert verdict.health == "stuck"
    assert f"also problem: LastProcessingResult: {PROBLEM}" in verdict.detail
    assert "also drifted" in verdict.detail


def test_disabled_beats_drifted(tmp_path: Path) -> None:
    verdict = one(report_of(tmp_path, orders(batch_size=5), [live_sqs(state="Disabled")]))
    assert verdict.health == "disabled" and "also drifted" in verdict.detail


# -- unmanaged and orphans ------------------------------------------------------------------------


def test_unmanaged_lists_the_rest_of_the_region(tmp_path: Path) -> None:
    others = [
        live_sqs("z", function_arn=OTHER_FN, source=QUEUE2, state="Disabled"),
        live_sqs("y", function_arn=f"{FN}:live"),
    ]
    report = report_of(tmp_path, orders(), [live_sqs()], unmanaged=others)
    assert [u.to_json() for u in report.unmanaged] == [
        {"uuid": U("y"), "function_arn": f"{FN}:live", "event_source": QUEUE, "state": "Enabled"},
        {"uuid": U("z"), "function_arn": OTHER_FN, "event_source": QUEUE2, "state": "Disabled"},
    ]
    assert report.summary["ok"] == 1  # unmanaged mappings get no verdict


def test_unmanaged_leaves_out_what_another_scope_manages_and_lists_each_once(
    tmp_path: Path,
) -> None:
    """Two scopes in one region and account (two profiles) each see the other's mappings."""
    theirs = live_sqs("theirs", function_arn=OTHER_FN, source=QUEUE2)
    stranger = live_sqs("stranger", function_arn=f"{FN}:blue", source=QUEUE2)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mine = scope_plan(tmp_path / "a", orders(), [live_sqs()], unmanaged=[theirs, stranger])
    other_spec = {OTHER_FN: [{"event_source_arn": QUEUE2}]}
    other = scope_plan(tmp_path / "b", other_spec, [theirs], unmanaged=[live_sqs(), stranger])
    report = health([mine, other], NOW)
    assert [u.uuid for u in report.unmanaged] == [U("stranger")]
    assert [m.health for m in report.mappings] == ["ok", "ok"]


def test_orphans_only_when_asked(tmp_path: Path) -> None:
    report = report_of(tmp_path, orders(), [live_sqs()])
    assert report.orphans is None and "orphans" not in report.to_json()

    lost = live_sqs("lost", function_arn=OTHER_FN, source=QUEUE2)
    report = report_of(
        tmp_path, orders(), [live_sqs()], unmanaged=[lost], orphans=[lost, live_sqs()]
    )
    assert [o.to_json() for o in report.orphans or []] == [
        {
            "uuid": U("a"),
            "function_arn": FN,
            "event_source": QUEUE,
            "state": "Enabled",
            "managed": True,
        },
        {
            "uuid": U("lost"),
            "function_arn": OTHER_FN,
            "event_source": QUEUE2,
            "state": "Enabled",
            "managed": False,
        },
    ]
    verdict = one(report)
    assert verdict.health == "ok" and verdict.detail == "its function no longer exists"
    document = json.loads(render(report, "json"))
    assert set(document) == SPEC_KEYS | {"orphans"}

    nothing = report_of(tmp_path, orders(), [live_sqs()], orphans=[])
    assert nothing.to_json()["orphans"] == []


# -- documents ------------------------------------------------------------------------------------


def mixed_report(tmp_path: Path) -> StatusReport:
    """One mapping of each verdict, and an unmanaged one."""
    spec = {
        "orders-handler": [
            {"event_source_arn": QUEUE},  # ok
            {"event_source_arn": QUEUE2, "batch_size": 5},  # drifted
            {"event_source_arn": f"{QUEUE}-missing"},  # missing
        ],
        "orders-handler:live": [
            {"event_source_arn": QUEUE},  # disabled
            {"event_source_arn": QUEUE2},  # problem
            {"event_source_arn": f"{QUEUE}-slow"},  # stuck
        ],
    }
    live_fn = f"{FN}:live"
    live = [
        live_sqs("ok"),
        live_sqs("drifted", source=QUEUE2),
        live_sqs("disabled", function_arn=live_fn, state="Disabled"),
        live_sqs("problem", function_arn=live_fn, source=QUEUE2, LastProcessingResult=PROBLEM),
        live_sqs("stuck", function_arn=live_fn, source=f"{QUEUE}-slow", state="Creating"),
    ]
    unmanaged = [live_sqs("other", function_arn=OTHER_FN)]
    return report_of(tmp_path, spec, live, unmanaged=unmanaged)


def test_json_is_one_document_of_the_spec_shape(tmp_path: Path) -> None:
    report = mixed_report(tmp_path)
    document = json.loads(render(report, "json"))  # one document: json.loads refuses trailers
    assert set(document) == SPEC_KEYS
    assert document["format_version"] == "1"
    assert all(set(m) == MAPPING_KEYS for m in document["mappings"])
    assert all(set(u) == UNMANAGED_KEYS for u in document["unmanaged"])
    assert set(document["summary"]) == SUMMARY_KEYS
    assert document["summary"] == dict.fromkeys(SUMMARY_KEYS, 1)
    assert sorted(m["health"] for m in document["mappings"]) == sorted(SUMMARY_KEYS)
    assert [u["uuid"] for u in document["unmanaged"]] == [U("other")]


def test_empty_report(tmp_path: Path) -> None:
    report = report_of(tmp_path, {"orders-handler": []}, [])
    assert json.loads(render(report, "json")) == {
        "format_version": "1",
        "mappings": [],
        "unmanaged": [],
        "summary": dict.fromkeys(HEALTHS, 0),
    }
    assert report.all_ok and report.exit_code(detailed=True) == 0
    assert "No managed mappings." in render(report, "text")
    assert "Status: 0 ok, 0 missing" in render(report, "markdown")


def test_detailed_exit_code_is_2_when_any_mapping_is_not_ok(tmp_path: Path) -> None:
    healthy = report_of(tmp_path, orders(), [live_sqs()])
    assert healthy.exit_code(detailed=True) == 0
    for verdict in mixed_report(tmp_path).mappings:
        if verdict.health == "ok":
            continue
        alone = StatusReport(mappings=[verdict], scopes=[(REGION, ACCOUNT)])
        assert alone.exit_code(detailed=True) == 2, verdict.health
        assert alone.exit_code(detailed=False) == 0


def test_text_lists_every_mapping_and_the_summary(tmp_path: Path) -> None:
    text = render(mixed_report(tmp_path), "text")
    assert text.splitlines()[0] == f"Region {REGION}, account {ACCOUNT}"
    for name in SUMMARY_KEYS:
        assert re.search(rf"^{name} +orders-handler", text, re.MULTILINE), name
    assert f"uuid {U('ok')}  state Enabled (USER_INITIATED)" in text
    assert "last modified 2025-11-03T12:00:00+00:00" in text
    assert f"! LastProcessingResult: {PROBLEM}" in text
    assert "Unmanaged: 1 mapping(s)" in text and OTHER_FN in text
    assert text.endswith("Status: 1 ok, 1 missing, 1 drifted, 1 disabled, 1 problem, 1 stuck.")


def test_markdown_table(tmp_path: Path) -> None:
    text = render(mixed_report(tmp_path), "markdown")
    assert text.startswith("**Status: 1 ok, 1 missing")
    tables = tables_of(text)
    assert [len(t) for t in tables] == [2 + 6, 2 + 1]  # header, rule, rows
    assert "| **problem** |" in text and "#### Unmanaged mappings (1)" in text


def tables_of(markdown: str) -> list[list[str]]:
    """The tables' lines; each line of a table has as many cell separators as its header."""
    tables = [block.splitlines() for block in markdown.split("\n\n") if block.startswith("| ")]
    for table in tables:
        assert all(_unescaped_pipes(row) == table[0].count("|") for row in table), table
    return tables


HOSTILE = "PROBLEM: \x1b[2J\x1b]0;owned\x07 \u202etxt.exe\u202c \u009b31m | `tick` \n# heading"


def hostile_report(tmp_path: Path) -> StatusReport:
    mapping = live_sqs(LastProcessingResult=HOSTILE, StateTransitionReason="x\x1by")
    stranger = live_sqs(
        "s", function_arn=OTHER_FN + "\x1b[31m|`", source=QUEUE2, state="Enabled\u202e"
    )
    return report_of(tmp_path, orders(), [mapping], unmanaged=[stranger], orphans=[stranger])


UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_renderings_are_terminal_safe(tmp_path: Path, fmt: str) -> None:
    out = render(hostile_report(tmp_path), fmt)
    assert not UNSAFE.search(out), repr(UNSAFE.search(out))
    assert "\\u001b" in out  # shown, not acted on
    if fmt == "json":
        document = json.loads(out)
        assert document["mappings"][0]["last_processing_result"] == HOSTILE  # same data
    if fmt == "markdown":
        assert [len(t) for t in tables_of(out)] == [3, 3, 3]  # mappings, unmanaged, orphans
        assert "\n# heading" not in out


def test_colour_only_when_asked(tmp_path: Path) -> None:
    report = mixed_report(tmp_path)
    assert "\x1b[" not in render(report, "text")
    assert "\x1b[" in render(report, "text", color=True)


def _unescaped_pipes(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row))


# -- warnings for plan and apply ------------------------------------------------------------------


def test_unhealthy_warnings_one_per_problem_stuck_or_disabled(tmp_path: Path) -> None:
    warnings = unhealthy_warnings(mixed_report(tmp_path))
    assert len(warnings) == 3
    assert warnings[0].startswith(f"orders-handler:live[{QUEUE}]: disabled: Disabled while")
    assert warnings[1] == (
        f"orders-handler:live[{QUEUE2}]: problem: LastProcessingResult: {PROBLEM} "
        f"(uuid {U('problem')})"
    )
    assert warnings[2].startswith(f"orders-handler:live[{QUEUE}-slow]: stuck: Creating for 60")


def test_unhealthy_warnings_name_the_region_when_there_are_several(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    east = scope_plan(tmp_path / "a", orders(), [live_sqs(LastProcessingResult=PROBLEM)])
    west_fn = FN.replace(REGION, "eu-west-1")
    west_queue = QUEUE.replace(REGION, "eu-west-1")
    west_live = live_sqs("w", function_arn=west_fn, source=west_queue, state="Disabled")
    west = scope_plan(
        tmp_path / "b",
        {"orders-handler": [{"event_source_arn": west_queue}]},
        [west_live],
        region="eu-west-1",
    )
    warnings = unhealthy_warnings(health([east, west], NOW))
    assert [w.split(": ")[0] for w in warnings] == [REGION, "eu-west-1"]
    assert [m.region for m in health([east, west], NOW).mappings] == [REGION, "eu-west-1"]
    text = render(health([east, west], NOW), "text")
    assert text.startswith("2 regions/accounts:") and "in: region eu-west-1" in text
    assert unhealthy_warnings(health([east], NOW))[0].startswith("orders-handler[")


def test_status_changes_nothing_it_was_given(tmp_path: Path) -> None:
    made = scope_plan(tmp_path, orders(batch_size=5), [live_sqs(state="Disabled")])
    before = copy.deepcopy((made.plan, made.live, made.functions))
    health([made], NOW)
    assert (made.plan, made.live, made.functions) == before


# -- on moto: the reads are plan's ----------------------------------------------------------------

MUTATING_OR_PER_MAPPING = {
    "GetEventSourceMapping",
    "ListTags",
    "GetFunction",
    "CreateEventSourceMapping",
    "UpdateEventSourceMapping",
    "DeleteEventSourceMapping",
}


def test_plan_reads_unmanaged_and_orphans_from_the_same_pages(
    moto_aws: None, tmp_path: Path
) -> None:
    seeded = seed(functions=["orders", "other", "gone"], queues=["q1", "q2", "q3"])
    lam = boto3.client("lambda", region_name=REGION)
    mine = lam.create_event_source_mapping(
        EventSourceArn=seeded.queues["q1"], FunctionName="orders", BatchSize=10
    )["UUID"]
    theirs = lam.create_event_source_mapping(
        EventSourceArn=seeded.queues["q2"], FunctionName="other"
    )["UUID"]
    orphan = lam.create_event_source_mapping(
        EventSourceArn=seeded.queues["q3"], FunctionName="gone"
    )["UUID"]
    lam.delete_function(FunctionName="gone")  # AWS (and moto) keep its mapping
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "functions": {"orders": [{"event_source_arn": seeded.queues["q1"]}]},
            }
        )
    )
    spec = load_spec([path])
    aws = aws_module.connect(region=REGION, max_rps=100)
    calls: list[str] = []
    aws.lambda_client.meta.events.register(
        "provide-client-params.lambda", lambda model, **_: calls.append(model.name)
    )

    (plain,) = plan_scopes([Scope(REGION, None, spec)], [aws])
    assert calls == ["ListEventSourceMappings"]  # one page; nothing per mapping
    assert [m.uuid for m in plain.live] == [mine]
    assert sorted(m.uuid for m in plain.unmanaged) == sorted([theirs, orphan])
    assert plain.orphans is None and not plain.plan.has_changes

    calls.clear()
    (made,) = plan_scopes([Scope(REGION, None, spec)], [aws], orphans=True)
    assert calls == ["ListEventSourceMappings", "ListFunctions"]
    assert not set(calls) & MUTATING_OR_PER_MAPPING
    assert [m.uuid for m in made.orphans or []] == [orphan]

    report = health([made], datetime.now().astimezone())
    assert [(m.uuid, m.health) for m in report.mappings] == [(mine, "ok")]
    assert {u.uuid for u in report.unmanaged} == {theirs, orphan}
    assert [(o.uuid, o.managed) for o in report.orphans or []] == [(orphan, False)]
    assert report.exit_code(detailed=True) == 0


def test_status_reports_a_function_not_deployed_instead_of_failing(
    moto_aws: None, tmp_path: Path
) -> None:
    seeded = seed(queues=["q1"])
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {"version": 1, "functions": {"orders": [{"event_source_arn": seeded.queues["q1"]}]}}
        )
    )
    spec = load_spec([path])
    aws = aws_module.connect(region=REGION, max_rps=100)
    with pytest.raises(Exception, match="function does not exist"):
        plan_scopes([Scope(REGION, None, spec)], [aws])  # plan's behaviour is unchanged
    (made,) = plan_scopes([Scope(REGION, None, spec)], [aws], allow_missing_functions=True)
    assert made.missing_functions == ["orders"]
    verdict = one(health([made], datetime.now().astimezone()))
    assert verdict.health == "missing" and "function orders does not exist" in verdict.detail
