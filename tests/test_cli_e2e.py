"""The `esm` program as a user runs it, against the moto server.

Each test seeds the server (reset per test), writes a spec, runs `esm ...` with
AWS_ENDPOINT_URL pointing at the server, and checks exit code, output and (with plain boto3)
what exists afterwards. The CLI runs in-process; two tests start the console script, where a
real process is the point: stdin that is not a terminal, and a sandbox that must let the
process exit.
"""

from __future__ import annotations

import json
import re
import subprocess

import boto3
import pytest

from tests.cli_runner import CliResult, run_esm, run_esm_process
from tests.conftest import REPO_ROOT
from tests.spec_json import CHANGE_KEYS, PLAN_KEYS

REGION = "us-east-1"
ACCOUNT = "123456789012"
EXAMPLE = REPO_ROOT / "mappings.example.yaml"
NOWHERE = "http://127.0.0.1:9"  # nothing listens there: a run that needs no AWS ignores it


def lam(endpoint: str):
    return boto3.client("lambda", region_name=REGION, endpoint_url=endpoint)


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def assert_clean_error(result: CliResult) -> None:
    assert result.code == 1, (result.out, result.err)  # the runner has checked: no traceback


@pytest.fixture
def two_sources(moto_server, seed, write_spec):
    """handler with one SQS queue and one DynamoDB stream seeded, and a spec for both."""
    seeded = seed(
        functions=["handler"], queues=["orders"], tables=["carts"], endpoint_url=moto_server
    )
    spec = write_spec(
        {
            "handler": [
                {"event_source_arn": seeded.queues["orders"], "batch_size": 5},
                {
                    "event_source_arn": seeded.tables["carts"],
                    "starting_position": "LATEST",
                    "batch_size": 50,
                },
            ]
        },
        region=REGION,
        account_id=ACCOUNT,
    )
    return seeded, spec


# -- validate (offline) -----------------------------------------------------------------------


def test_validate_ok_offline_and_bad_spec_located(tmp_path, write_spec):
    good = write_spec(
        {"handler": [{"event_source_arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", "batch_size": 5}]}
    )
    # No AWS call: an endpoint nothing listens on does not matter.
    result = run_esm("validate", "-f", good, endpoint=NOWHERE)
    assert result.code == 0, result.err
    assert "valid" in result.out

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "functions:\n"
        "  handler:\n"
        f"    - event_source_arn: arn:aws:sqs:{REGION}:{ACCOUNT}:q\n"
        "      batch_sise: 5\n"
        f"    - event_source_arn: arn:aws:sqs:{REGION}:{ACCOUNT}:q.fifo\n"
        "      batch_size: 20\n",
        encoding="utf-8",
    )
    result = run_esm("validate", "-f", bad, endpoint=NOWHERE)
    assert_clean_error(result)
    where = re.escape(str(bad))
    # every problem at once, each as file:line: field: message
    assert re.search(
        rf"^{where}:5: functions\.handler\[0\]\.batch_sise: unknown field", result.err, re.M
    ), result.err
    assert re.search(rf"^{where}:7: functions\.handler\[1\]\.batch_size: .*10", result.err, re.M), (
        result.err
    )


# -- plan ---------------------------------------------------------------------------------------


def test_plan_formats_and_detailed_exitcode(moto_server, seed, write_spec):
    seeded = seed(functions=["handler"], queues=["a", "b"], endpoint_url=moto_server)
    function_arn = seeded.functions["handler"]
    qa, qb = seeded.queues["a"], seeded.queues["b"]
    existing = lam(moto_server).create_event_source_mapping(
        FunctionName=function_arn, EventSourceArn=qa, BatchSize=5
    )["UUID"]
    spec = write_spec(
        {
            "handler": [
                {"event_source_arn": qa, "batch_size": 8},  # update 5 -> 8
                {"event_source_arn": qb},  # create
            ]
        }
    )

    result = run_esm(
        "plan", "-f", spec, "--format", "json", "--detailed-exitcode", endpoint=moto_server
    )
    assert result.code == 2, result.err
    plan = json.loads(result.out)
    assert set(plan) == PLAN_KEYS
    assert plan["format_version"] == "1"
    assert plan["summary"] == {"create": 1, "update": 1, "replace": 0, "delete": 0}
    for change in plan["changes"]:
        assert set(change) == CHANGE_KEYS
        assert (change["region"], change["account"]) == (REGION, ACCOUNT)
        for field in change["fields"]:
            assert set(field) == {"name", "before", "after", "forces_replacement"}
    by_action = {c["action"]: c for c in plan["changes"]}
    assert set(by_action) == {"create", "update"}
    update, create = by_action["update"], by_action["create"]
    assert update == {
        "action": "update",
        "address": f"handler[{qa}]",
        "function_arn": function_arn,
        "event_source": qa,
        "uuid": existing,
        "fields": [{"name": "batch_size", "before": 5, "after": 8, "forces_replacement": False}],
        "region": REGION,
        "account": ACCOUNT,
    }
    assert (create["uuid"], create["function_arn"], create["event_source"]) == (
        None,
        function_arn,
        qb,
    )
    assert create["address"] == f"handler[{qb}]"

    result = run_esm("plan", "-f", spec, endpoint=moto_server)
    assert result.code == 0, result.err
    assert last_line(result.out) == "Plan: 1 to create, 1 to update, 0 to replace, 0 to delete."
    assert "batch_size: 5 -> 8" in result.out

    result = run_esm("plan", "-f", spec, "--format", "markdown", endpoint=moto_server)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (
        "**Plan: 1 to create, 1 to update, 0 to replace, 0 to delete.**"
    )
    # planning changed nothing
    assert lam(moto_server).get_event_source_mapping(UUID=existing)["BatchSize"] == 5
    assert len(lam(moto_server).list_event_source_mappings()["EventSourceMappings"]) == 1


# -- apply --------------------------------------------------------------------------------------


def test_apply_without_terminal_refuses(moto_server, two_sources):
    # The console script with stdin /dev/null, as in CI: nothing to confirm on.
    _, spec = two_sources
    result = run_esm_process("apply", "-f", spec, endpoint=moto_server)
    assert_clean_error(result)
    assert "--auto-approve" in result.err
    assert lam(moto_server).list_event_source_mappings()["EventSourceMappings"] == []


def test_apply_auto_approve_then_converged(moto_server, two_sources):
    seeded, spec = two_sources
    result = run_esm(
        "apply", "-f", spec, "--auto-approve", "--detailed-exitcode", endpoint=moto_server
    )
    assert result.code == 2, (result.out, result.err)
    assert "Plan: 2 to create, 0 to update, 0 to replace, 0 to delete." in result.out

    live = lam(moto_server).list_event_source_mappings()["EventSourceMappings"]
    assert {m["FunctionArn"] for m in live} == {seeded.functions["handler"]}
    assert sorted((m["EventSourceArn"], m["BatchSize"]) for m in live) == sorted(
        [(seeded.queues["orders"], 5), (seeded.tables["carts"], 50)]
    )
    assert {m["State"] for m in live} == {"Enabled"}

    result = run_esm(
        "apply", "-f", spec, "--auto-approve", "--detailed-exitcode", endpoint=moto_server
    )
    assert result.code == 0, (result.out, result.err)
    assert "No changes." in result.out

    result = run_esm("plan", "-f", spec, "--detailed-exitcode", endpoint=moto_server)
    assert result.code == 0, (result.out, result.err)
    assert last_line(result.out) == "No changes."
    assert len(lam(moto_server).list_event_source_mappings()["EventSourceMappings"]) == 2


def test_apply_partial_failure_keeps_going_and_exits_1(moto_server, seed, write_spec):
    seeded = seed(functions=["handler"], queues=["real"], endpoint_url=moto_server)
    real = seeded.queues["real"]
    missing = real.replace(":real", ":never-created")
    spec = write_spec(
        {"handler": [{"event_source_arn": missing}, {"event_source_arn": real, "batch_size": 4}]}
    )
    result = run_esm(
        "apply", "-f", spec, "--auto-approve", "--detailed-exitcode", endpoint=moto_server
    )
    assert_clean_error(result)
    assert "1 created" in result.out
    assert re.search(rf"failed: handler\[{re.escape(missing)}\]", result.out), result.out
    live = lam(moto_server).list_event_source_mappings()["EventSourceMappings"]
    assert [(m["EventSourceArn"], m["BatchSize"]) for m in live] == [(real, 4)]


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--no-such-option", "-f", EXAMPLE],
        ["plan"],  # missing -f
        ["plan", "-f", "does-not-exist.yaml"],
        ["plan", "-f", EXAMPLE, "--format", "yaml"],
        ["no-such-command"],
    ],
    ids=["unknown-option", "missing-f", "missing-file", "bad-format", "unknown-command"],
)
def test_usage_errors_exit_1(args):
    result = run_esm(*args, endpoint=NOWHERE)
    assert_clean_error(result)
    assert result.err.strip()


def test_missing_function_is_named_and_nothing_created(moto_server, seed, write_spec):
    seeded = seed(functions=["handler"], queues=["q"], endpoint_url=moto_server)
    q = seeded.queues["q"]
    spec = write_spec(
        {"handler": [{"event_source_arn": q}], "ghost-handler": [{"event_source_arn": q}]}
    )
    # -f with a directory: its *.yaml files
    result = run_esm("apply", "-f", spec.parent, "--auto-approve", endpoint=moto_server)
    assert_clean_error(result)
    assert "ghost-handler" in result.err
    assert lam(moto_server).list_event_source_mappings()["EventSourceMappings"] == []


def test_account_mismatch_refuses_before_reading_or_writing(moto_server, seed, write_spec):
    seeded = seed(functions=["handler"], queues=["q", "other"], endpoint_url=moto_server)
    stray = lam(moto_server).create_event_source_mapping(
        FunctionName=seeded.functions["handler"], EventSourceArn=seeded.queues["other"]
    )["UUID"]
    spec = write_spec(
        {
            "handler": [{"event_source_arn": seeded.queues["q"]}],  # would create, and delete stray
            "ghost-handler": [{"event_source_arn": seeded.queues["q"]}],  # would fail the lookup
        },
        account_id="999999999999",
    )
    result = run_esm("apply", "-f", spec, "--auto-approve", endpoint=moto_server)
    assert_clean_error(result)
    assert "999999999999" in result.err and ACCOUNT in result.err
    assert "ghost-handler" not in result.err  # stopped before looking at functions
    live = lam(moto_server).list_event_source_mappings()["EventSourceMappings"]
    assert [m["UUID"] for m in live] == [stray]


# -- schema, sandbox ----------------------------------------------------------------------------


def test_schema_is_draft_07_json():
    result = run_esm("schema", endpoint=NOWHERE)
    assert result.code == 0, result.err
    schema = json.loads(result.out)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "functions" in schema["properties"]


def test_sandbox_plan_of_the_example():
    # A real process: the embedded server must not keep it alive once the plan is shown.
    try:
        result = run_esm_process("--sandbox", "plan", "-f", EXAMPLE, timeout=30)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"esm --sandbox plan hung for 30 s; stderr tail: {str(exc.stderr)[-600:]}")
    assert result.code == 0, (result.out, result.err)
    assert "will be created" in result.out
    assert re.match(
        r"Plan: [1-9]\d* to create, 0 to update, 0 to replace, 0 to delete\.$",
        last_line(result.out),
    )
