"""The operator's view through the CLI (issue 12): guards that stop unattended runs, one JSON
document from apply, saved plans shown offline, and progress lines a cron log can be read by."""

from __future__ import annotations

import json
import re

import boto3

from tests.cli_runner import run_esm

REGION = "us-east-1"


def _mappings(endpoint: str) -> list[dict]:
    lam = boto3.client("lambda", region_name=REGION, endpoint_url=endpoint)
    return lam.list_event_source_mappings()["EventSourceMappings"]


def _three_queues(seed, write_spec, moto_server):
    seeded = seed(functions=["alpha"], queues=["q1", "q2", "q3"], endpoint_url=moto_server)
    queues = [seeded.queues[q] for q in ("q1", "q2", "q3")]
    spec = write_spec({"alpha": [{"event_source_arn": q} for q in queues]}, region=REGION)
    applied = run_esm("apply", "-f", spec, "--auto-approve", endpoint=moto_server)
    assert applied.code == 0, applied.err
    return queues


def test_max_destroy_refuses_before_anything_changes(moto_server, seed, write_spec):
    _three_queues(seed, write_spec, moto_server)
    emptied = write_spec({"alpha": []}, region=REGION, name="empty.yaml")

    refused = run_esm(
        "apply", "-f", emptied, "--auto-approve", "--max-destroy", "2", endpoint=moto_server
    )
    assert refused.code == 1
    assert "deletes or replaces 3 mappings" in refused.err and "--max-destroy 2" in refused.err
    assert len(_mappings(moto_server)) == 3

    from_env = run_esm(
        "apply", "-f", emptied, "--auto-approve", endpoint=moto_server,
        env={"ESM_APPLY_MAX_DESTROY": "0"},
    )  # fmt: skip
    assert from_env.code == 1 and "--max-destroy 0" in from_env.err
    assert len(_mappings(moto_server)) == 3

    allowed = run_esm(
        "apply", "-f", emptied, "--auto-approve", "--max-destroy", "3", endpoint=moto_server
    )
    assert allowed.code == 0, allowed.err
    assert _mappings(moto_server) == []


def test_prevent_destroy_fails_plan_and_apply_naming_the_field(moto_server, seed, write_spec):
    seeded = seed(functions=["alpha"], streams=["clicks"], endpoint_url=moto_server)
    stream = seeded.streams["clicks"]
    before = write_spec(
        {"alpha": [{"event_source_arn": stream, "starting_position": "LATEST"}]}, region=REGION
    )
    assert run_esm("apply", "-f", before, "--auto-approve", endpoint=moto_server).code == 0
    protected = write_spec(
        {
            "alpha": [
                {
                    "event_source_arn": stream,
                    "starting_position": "TRIM_HORIZON",
                    "prevent_destroy": True,
                }
            ]
        },
        region=REGION,
        name="after.yaml",
    )
    for command in (("plan",), ("apply", "--auto-approve")):
        result = run_esm(*command, "-f", protected, endpoint=moto_server)
        assert result.code == 1, result.out
        assert "prevent_destroy" in result.err and "starting_position" in result.err
    (live,) = _mappings(moto_server)
    assert live["StartingPosition"] == "LATEST"


def test_apply_json_is_one_document_on_stdout(moto_server, seed, write_spec):
    seeded = seed(functions=["alpha"], queues=["q1"], endpoint_url=moto_server)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["q1"]}]}, region=REGION)

    result = run_esm(
        "apply", "-f", spec, "--auto-approve", "--format", "json", endpoint=moto_server
    )
    assert result.code == 0, result.err
    document = json.loads(result.out)  # the whole of stdout: one document, nothing else
    assert set(document) == {"format_version", "plan", "outcomes", "summary"}
    assert document["plan"]["summary"]["create"] == 1
    (outcome,) = document["outcomes"]
    assert outcome["status"] == "done" and outcome["uuid"]
    assert {"address", "action", "status", "message", "uuid"} <= set(outcome)
    assert document["summary"]["created"] == 1
    assert "Apply complete" in result.err  # the report went to stderr

    again = run_esm("apply", "-f", spec, "--auto-approve", "--format", "json", endpoint=moto_server)
    assert again.code == 0
    assert json.loads(again.out)["outcomes"] == []


def test_show_renders_a_saved_plan_without_aws(moto_server, seed, write_spec, tmp_path):
    seeded = seed(functions=["alpha"], queues=["q1"], endpoint_url=moto_server)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["q1"]}]}, region=REGION)
    saved = tmp_path / "plan.json"
    assert run_esm("plan", "-f", spec, "--out", saved, endpoint=moto_server).code == 0

    dead = "http://127.0.0.1:9"  # nothing listens: a call to AWS would fail
    text = run_esm("show", saved, endpoint=dead)
    assert text.code == 0, text.err
    assert "will be created" in text.out and "Plan: 1 to create" in text.out
    shown = json.loads(run_esm("show", saved, "--format", "json", endpoint=dead).out)
    assert shown["summary"]["create"] == 1

    saved.write_text(saved.read_text()[:-20])
    damaged = run_esm("show", saved, endpoint=dead)
    assert damaged.code == 1 and len(damaged.err.strip().splitlines()) == 1


def test_progress_lines_off_a_terminal_carry_time_and_count(moto_server, seed, write_spec):
    seeded = seed(functions=["alpha"], queues=["q1", "q2"], endpoint_url=moto_server)
    spec = write_spec(
        {"alpha": [{"event_source_arn": seeded.queues[q]} for q in ("q1", "q2")]}, region=REGION
    )
    result = run_esm("apply", "-f", spec, "--auto-approve", endpoint=moto_server)
    assert result.code == 0, result.err
    calls = [line for line in result.err.splitlines() if line.endswith(": creating")]
    assert len(calls) == 2
    for n, line in enumerate(calls, 1):
        assert re.match(rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[{n}/2\] alpha\[", line), line


def test_status_reports_health_unmanaged_and_the_exit_code(moto_server, seed, write_spec):
    seeded = seed(functions=["alpha", "other"], queues=["q1", "q2", "q3"], endpoint_url=moto_server)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["q1"]}]}, region=REGION)
    assert run_esm("apply", "-f", spec, "--auto-approve", endpoint=moto_server).code == 0
    lam = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    lam.create_event_source_mapping(FunctionName="other", EventSourceArn=seeded.queues["q2"])

    healthy = run_esm("status", "-f", spec, "--detailed-exitcode", endpoint=moto_server)
    assert healthy.code == 0, healthy.err
    document = json.loads(
        run_esm("status", "-f", spec, "--format", "json", endpoint=moto_server).out
    )
    assert set(document) == {"format_version", "mappings", "unmanaged", "summary"}
    assert [m["health"] for m in document["mappings"]] == ["ok"]
    assert [u["function_arn"].rsplit(":", 1)[1] for u in document["unmanaged"]] == ["other"]

    (mine,) = [m for m in _mappings(moto_server) if m["FunctionArn"].endswith(":alpha")]
    lam.update_event_source_mapping(UUID=mine["UUID"], BatchSize=7, Enabled=False)
    unhealthy = run_esm("status", "-f", spec, "--detailed-exitcode", endpoint=moto_server)
    assert unhealthy.code == 2
    assert "disabled" in unhealthy.out and "drifted" in unhealthy.out  # detail: "also drifted"
    # plan and apply say so too, from the same reads.
    planned = run_esm("plan", "-f", spec, "--format", "json", endpoint=moto_server)
    assert any("disabled" in w for w in json.loads(planned.out)["warnings"])

    missing = write_spec(
        {"alpha": [{"event_source_arn": seeded.queues["q3"]}], "ghost": []},
        region=REGION,
        name="missing.yaml",
    )
    report = run_esm("status", "-f", missing, "--format", "json", endpoint=moto_server)
    assert report.code == 0, report.err  # an undeployed function is a verdict, not an error
    assert json.loads(report.out)["summary"]["missing"] == 1


def test_an_empty_max_destroy_variable_refuses_rather_than_lifting_the_limit(
    moto_server, seed, write_spec
):
    _three_queues(seed, write_spec, moto_server)
    emptied = write_spec({"alpha": []}, region=REGION, name="empty.yaml")
    result = run_esm(
        "apply", "-f", emptied, "--auto-approve", endpoint=moto_server,
        env={"ESM_APPLY_MAX_DESTROY": ""},
    )  # fmt: skip
    assert result.code == 1 and "ESM_APPLY_MAX_DESTROY" in result.err
    assert len(_mappings(moto_server)) == 3
