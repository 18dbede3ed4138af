"""SQS mappings end to end against LocalStack, whose mappings behave like AWS's: they pass
through Creating / Updating / Disabling / Deleting, carry AWS's defaults (BatchSize 10, window 0,
FunctionResponseTypes []), and List pages (50 a page unless MaxItems says otherwise).

The pipeline is the product's own: validate.load_spec → aws.connect (AWS_ENDPOINT_URL from the
environment) → app.plan_one → apply.Applier, and once the `esm` CLI as a subprocess.
What exists afterwards is read back with plain boto3 (conftest.LocalStackWorld).

LocalStack quirks these tests live with (not AWS behaviour):
- Without Docker a function ends in State Failed instead of Active; mappings on it still work.
- Get answers ResourceNotFoundException as soon as Delete is called, while List keeps showing
  the mapping as Deleting until its poller stops (forever, if it was Disabled).
- Transitions settle within milliseconds, so a Get right after apply would show Enabled even if
  apply had not waited: RecordingClient checks that apply's own last call on each mapping was a
  Get that saw it settled (or gone).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from esm_reconcile.app import plan_one as make_plan
from esm_reconcile.apply import Applier, ApplyResult
from esm_reconcile.aws import AwsContext, connect
from esm_reconcile.plan import Plan
from esm_reconcile.render import render
from esm_reconcile.validate import load_spec

from .conftest import REGION, LocalStackWorld

pytestmark = pytest.mark.localstack

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_RPS = 50.0  # LocalStack has no Lambda quota; keep the client-side limiter out of the way
TIMEOUTS = {"create": 60.0, "update": 60.0, "delete": 60.0}  # fail fast, not after 10 min


class RecordingClient:
    """The Lambda client as Applier sees it, recording each call: (method, UUID, State or
    error code). Lets a test check that apply's last word on a mapping was a settled Get."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, str | None, str]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not name.endswith("_event_source_mapping"):
            return method

        def call(**kwargs: Any) -> Any:
            try:
                result = method(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                self.calls.append((name, kwargs.get("UUID"), code))
                raise
            self.calls.append((name, kwargs.get("UUID") or result.get("UUID"), result["State"]))
            return result

        return call

    def history(self, uuid: str) -> list[tuple[str, str]]:
        return [(method, state) for method, u, state in self.calls if u == uuid]


def connect_env() -> AwsContext:
    return connect(region=REGION, max_rps=MAX_RPS)


def plan_for(path: Path, aws: AwsContext | None = None) -> Plan:
    return make_plan(load_spec([path]), aws or connect_env())


def apply_plan(plan: Plan, parallelism: int = 1) -> tuple[ApplyResult, RecordingClient]:
    client = RecordingClient(connect_env().lambda_client)
    result = Applier(client, timeouts=TIMEOUTS, parallelism=parallelism).apply(plan)
    failures = [
        (o.change.address, o.step, o.message) for o in result.outcomes if o.status != "done"
    ]
    assert result.ok, failures
    return result, client


def shape(plan: Plan) -> list[tuple[str, str, dict[str, tuple[Any, Any]]]]:
    """A plan as (action, address, {field: (before, after)} of an update), in plan order."""
    return [
        (c.action, c.address, {f.name: (f.before, f.after) for f in c.fields})
        if c.action == "update"
        else (c.action, c.address, {})
        for c in plan.changes
    ]


def assert_no_changes(path: Path) -> None:
    plan = plan_for(path)
    assert not plan.has_changes, render(plan, "text")


def assert_gone(world: LocalStackWorld, uuid: str) -> None:
    with pytest.raises(ClientError) as info:
        world.get(uuid)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def sqs(queue_arn: str, **settings: Any) -> dict[str, Any]:
    return {"event_source_arn": queue_arn, **settings}


def test_sqs_lifecycle_through_pipeline(
    localstack_env: str, localstack_world: LocalStackWorld, spec_file: Any
) -> None:
    world = localstack_world
    fn_a, fn_b = world.create_functions("life-a", "life-b")
    q1, q2 = world.create_queues("life-q1", "life-q2")
    a, b = world.name("life-a"), world.name("life-b")

    # -- create two mappings; apply returns only once each is Enabled ---------------------
    spec = spec_file({a: [sqs(q1), sqs(q2)]}, name="1-create.yaml")
    plan = plan_for(spec)
    assert [(c.action, c.address) for c in plan.changes] == [
        ("create", f"{a}[{q1}]"),
        ("create", f"{a}[{q2}]"),
    ], render(plan, "text")
    result, calls = apply_plan(plan)
    uuids = {o.change.event_source: o.created_uuid for o in result.outcomes}
    assert set(uuids) == {q1, q2} and all(uuids.values())
    for source, uuid in uuids.items():
        got = world.get(uuid)  # right after apply returned
        assert got["State"] == "Enabled", got
        assert (got["FunctionArn"], got["EventSourceArn"]) == (fn_a, source)
        # LocalStack fills AWS's SQS defaults, which rules.DEFAULTS must match (next plan).
        assert got["BatchSize"] == 10
        assert got["MaximumBatchingWindowInSeconds"] == 0
        assert got.get("FunctionResponseTypes", []) == []
        history = calls.history(uuid)
        assert history[0] == ("create_event_source_mapping", "Creating"), history
        assert history[-1] == ("get_event_source_mapping", "Enabled"), history

    # -- the defaults table agrees with what LocalStack (like AWS) filled in ---------------
    assert_no_changes(spec)

    # -- update in place: batch 10 -> 50 needs a window >= 1 on standard SQS ---------------
    spec = spec_file(
        {a: [sqs(q1, batch_size=50, maximum_batching_window_in_seconds=2), sqs(q2)]},
        name="2-update.yaml",
    )
    plan = plan_for(spec)
    assert shape(plan) == [
        (
            "update",
            f"{a}[{q1}]",
            {"batch_size": (10, 50), "maximum_batching_window_in_seconds": (0, 2)},
        )
    ], render(plan, "text")
    assert plan.changes[0].uuid == uuids[q1]
    _, calls = apply_plan(plan)
    got = world.get(uuids[q1])
    assert (got["BatchSize"], got["MaximumBatchingWindowInSeconds"], got["State"]) == (
        50,
        2,
        "Enabled",
    )
    history = calls.history(uuids[q1])
    assert history[0] == ("update_event_source_mapping", "Updating"), history
    assert history[-1] == ("get_event_source_mapping", "Enabled"), history
    assert_no_changes(spec)

    # -- move q2 from function A to function B: delete on A (waited gone), create on B ------
    spec = spec_file(
        {a: [sqs(q1, batch_size=50, maximum_batching_window_in_seconds=2)], b: [sqs(q2)]},
        name="3-move.yaml",
    )
    plan = plan_for(spec)
    assert [(c.action, c.address, c.uuid) for c in plan.changes] == [
        ("delete", f"{a}[{q2}]", uuids[q2]),
        ("create", f"{b}[{q2}]", None),
    ], render(plan, "text")
    result, calls = apply_plan(plan)
    assert_gone(world, uuids[q2])
    history = calls.history(uuids[q2])
    assert history[0] == ("delete_event_source_mapping", "Deleting"), history
    assert history[-1] == ("get_event_source_mapping", "ResourceNotFoundException"), history
    moved = next(o.created_uuid for o in result.outcomes if o.change.action == "create")
    assert moved is not None
    got = world.get(moved)
    assert (got["FunctionArn"], got["EventSourceArn"], got["State"]) == (fn_b, q2, "Enabled")
    assert {m["UUID"] for m in world.mappings(fn_a) if m["State"] != "Deleting"} == {uuids[q1]}
    assert_no_changes(spec)

    # -- remove q1 from the spec (A now has none) and disable q2 on B ----------------------
    spec = spec_file({a: [], b: [sqs(q2, enabled=False)]}, name="4-remove-disable.yaml")
    plan = plan_for(spec)
    assert shape(plan) == [
        ("delete", f"{a}[{q1}]", {}),
        ("update", f"{b}[{q2}]", {"enabled": (True, False)}),
    ], render(plan, "text")
    _, calls = apply_plan(plan)
    assert_gone(world, uuids[q1])
    got = world.get(moved)
    assert got["State"] == "Disabled", got
    history = calls.history(moved)
    assert history[0] == ("update_event_source_mapping", "Disabling"), history
    assert history[-1] == ("get_event_source_mapping", "Disabled"), history
    assert_no_changes(spec)


def esm(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in the environment localstack_env set up (stdin no tty)."""
    env = dict(os.environ, NO_COLOR="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "esm_reconcile", *map(str, args)],
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_apply_auto_approve(
    localstack_env: str, localstack_world: LocalStackWorld, spec_file: Any
) -> None:
    world = localstack_world
    (fn,) = world.create_functions("cli")
    q3, q4 = world.create_queues("cli-q3", "cli-q4")
    name = world.name("cli")

    def live() -> dict[str, dict[str, Any]]:
        """This function's mappings by queue, each read with Get (not List)."""
        listed = [m for m in world.mappings(fn) if m["State"] != "Deleting"]
        return {m["EventSourceArn"]: world.get(m["UUID"]) for m in listed}

    spec = spec_file({name: [sqs(q3, batch_size=5), sqs(q4)]}, name="cli-1.yaml")
    run = esm("apply", "-f", spec, "--auto-approve", "--detailed-exitcode")
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Plan: 2 to create, 0 to update, 0 to replace, 0 to delete." in run.stdout
    assert "Apply complete: 2 created, 0 updated, 0 replaced, 0 deleted." in run.stdout
    now = live()  # right after the process exited
    assert set(now) == {q3, q4}
    assert {q: m["State"] for q, m in now.items()} == {q3: "Enabled", q4: "Enabled"}
    assert (now[q3]["BatchSize"], now[q4]["BatchSize"]) == (5, 10)
    run = esm("plan", "-f", spec, "--detailed-exitcode")
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert run.stdout.rstrip().splitlines()[-1] == "No changes."

    spec = spec_file(
        {
            name: [
                sqs(q3, batch_size=20, maximum_batching_window_in_seconds=1),
                sqs(q4, enabled=False),
            ]
        },
        name="cli-2.yaml",
    )
    run = esm("apply", "-f", spec, "--auto-approve", "--detailed-exitcode")
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Apply complete: 0 created, 2 updated, 0 replaced, 0 deleted." in run.stdout
    now = live()
    assert (now[q3]["BatchSize"], now[q3]["MaximumBatchingWindowInSeconds"]) == (20, 1)
    assert {q: m["State"] for q, m in now.items()} == {q3: "Enabled", q4: "Disabled"}
    run = esm("plan", "-f", spec, "--detailed-exitcode")
    assert run.returncode == 0, (run.stdout, run.stderr)

    spec = spec_file({name: []}, name="cli-3.yaml")
    run = esm("apply", "-f", spec, "--auto-approve", "--detailed-exitcode")
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Apply complete: 0 created, 0 updated, 0 replaced, 2 deleted." in run.stdout
    assert live() == {}
    run = esm("plan", "-f", spec, "--detailed-exitcode")
    assert run.returncode == 0, (run.stdout, run.stderr)


# More than two of LocalStack's default 50-item pages and more than one of the 100-item pages
# LiveReader asks for (LocalStack honours MaxItems), so the reader must follow NextMarker.
MANY = 120


def test_plan_reads_every_page_of_list(
    localstack_env: str, localstack_world: LocalStackWorld, spec_file: Any
) -> None:
    world = localstack_world
    (fn,) = world.create_functions("many")
    name = world.name("many")
    queues = world.create_queues(*(f"many-{i:03d}" for i in range(MANY)))
    created = {
        world.lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=q)["UUID"]: q
        for q in queues
    }
    first = world.lam.list_event_source_mappings()
    assert len(first["EventSourceMappings"]) == 50 and first.get("NextMarker"), (
        "LocalStack no longer pages List by 50"
    )

    def plan_counting_lists(path: Path) -> tuple[Plan, int]:
        aws = connect_env()
        lists: list[int] = []
        aws.lambda_client.meta.events.register(
            "after-call.lambda.ListEventSourceMappings", lambda **_: lists.append(1)
        )
        return plan_for(path, aws), len(lists)

    # The spec lists all of them with AWS defaults: nothing to do, so all were seen and matched.
    plan, list_calls = plan_counting_lists(spec_file({name: [sqs(q) for q in queues]}))
    assert not plan.has_changes, render(plan, "text")
    assert list_calls >= 2, list_calls

    # The function is managed with no mappings: every one of them is planned for deletion.
    plan, list_calls = plan_counting_lists(spec_file({name: []}, name="none.yaml"))
    assert list_calls >= 2, list_calls
    assert {c.action for c in plan.changes} == {"delete"}
    assert {c.uuid: c.event_source for c in plan.changes} == created


PARALLEL = 300


def test_parallel_apply_waits_for_every_mapping(
    localstack_env: str, localstack_world: LocalStackWorld, spec_file: Any
) -> None:
    """Creates, updates and deletes of a few hundred mappings, 16 calls in flight, with
    LocalStack's real transitions, watched by shared List sweeps (and Gets where its List lags:
    it keeps deleted mappings Deleting): each returns settled, nothing is duplicated or lost,
    and the next plan is empty."""
    world = localstack_world
    world.create_functions("par")
    name = world.name("par")
    queues = world.create_queues(*(f"par-{i:03d}" for i in range(PARALLEL)))

    spec = spec_file({name: [sqs(q) for q in queues]}, name="1.yaml")
    result, calls = apply_plan(plan_for(spec), parallelism=16)
    uuids = [o.created_uuid for o in result.outcomes]
    assert len(set(uuids)) == PARALLEL and all(uuids)
    for uuid in uuids:
        assert world.get(uuid)["State"] == "Enabled"
    assert_no_changes(spec)

    spec = spec_file({name: [sqs(q, batch_size=7) for q in queues]}, name="2.yaml")
    plan = plan_for(spec)
    assert {c.action for c in plan.changes} == {"update"} and len(plan.changes) == PARALLEL
    apply_plan(plan, parallelism=16)
    assert {world.get(uuid)["BatchSize"] for uuid in uuids} == {7}
    assert_no_changes(spec)

    spec = spec_file({name: []}, name="3.yaml")
    apply_plan(plan_for(spec), parallelism=16)
    for uuid in uuids:
        assert_gone(world, uuid)
    assert_no_changes(spec)
