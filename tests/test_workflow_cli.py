"""The pull-request workflow through the CLI: --target, GitHub step summary and annotations."""

from __future__ import annotations

import json

import boto3

from tests.cli_runner import run_esm

REGION = "us-east-1"
ACCOUNT = "123456789012"


def test_target_limits_plan_and_apply(moto_server, seed, write_spec, tmp_path):
    seeded = seed(functions=["alpha", "beta"], queues=["qa", "qb"], endpoint_url=moto_server)
    spec = write_spec(
        {
            "alpha": [{"event_source_arn": seeded.queues["qa"]}],
            "beta": [{"event_source_arn": seeded.queues["qb"]}],
        },
        region=REGION,
    )
    plan = run_esm(
        "plan", "-f", spec, "--target", "alpha", "--format", "json", endpoint=moto_server
    )
    assert plan.code == 0, plan.err
    changes = json.loads(plan.out)["changes"]
    assert [c["address"] for c in changes] == [f"alpha[{seeded.queues['qa']}]"]

    text = run_esm(
        "plan", "-f", spec, "--target", f"beta[{seeded.queues['qb']}]", endpoint=moto_server
    )
    assert "targeting is in effect" in text.out
    assert "Plan: 1 to create" in text.out and "alpha[" not in text.out

    applied = run_esm(
        "apply", "-f", spec, "--target", "alpha", "--auto-approve", endpoint=moto_server
    )
    assert applied.code == 0, applied.err
    live = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    arns = {m["FunctionArn"] for m in live.list_event_source_mappings()["EventSourceMappings"]}
    assert arns == {f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:alpha"}

    unknown = run_esm("plan", "-f", spec, "--target", "gamma", endpoint=moto_server)
    assert unknown.code == 1 and "gamma" in unknown.err


def test_step_summary_gets_the_markdown_plan(moto_server, seed, write_spec, tmp_path):
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=moto_server)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = run_esm(
        "plan", "-f", spec, endpoint=moto_server, env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.code == 0, result.err
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "**Plan: 1 to create, 0 to update, 0 to replace, 0 to delete.**" in text


def test_validation_errors_become_annotations_in_github_actions(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nfunctions:\n  f:\n"
        f"    - event_source_arn: arn:aws:sqs:{REGION}:{ACCOUNT}:q\n"
        "      starting_position: LATEST\n"
    )
    result = run_esm("validate", "-f", bad, env={"GITHUB_ACTIONS": "true"})
    assert result.code == 1
    assert (
        f"::error file={bad},line=5::functions.f[0].starting_position: not supported for SQS"
        in result.out
    )
    plain = run_esm("validate", "-f", bad)
    assert "::error" not in plain.out


def test_saved_plan_applies_exactly_and_refuses_when_stale(moto_server, seed, write_spec, tmp_path):
    seeded = seed(functions=["alpha"], queues=["qa", "qb"], endpoint_url=moto_server)
    live = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    spec = write_spec(
        {"alpha": [{"event_source_arn": seeded.queues["qa"], "batch_size": 5}]}, region=REGION
    )
    planfile = tmp_path / "reviewed.plan"

    made = run_esm("plan", "-f", spec, "--out", planfile, endpoint=moto_server)
    assert made.code == 0, made.err
    applied = run_esm(
        "apply", planfile, "--auto-approve", "--detailed-exitcode", endpoint=moto_server
    )
    assert applied.code == 2, applied.err
    (mapping,) = live.list_event_source_mappings()["EventSourceMappings"]
    assert mapping["BatchSize"] == 5

    # Review a change, then someone edits the mapping by hand before the merge.
    spec.write_text(spec.read_text().replace("batch_size: 5", "batch_size: 7"))
    assert run_esm("plan", "-f", spec, "--out", planfile, endpoint=moto_server).code == 0
    live.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=9)
    stale = run_esm("apply", planfile, "--auto-approve", endpoint=moto_server)
    assert stale.code == 1
    assert "stale" in stale.err and mapping["UUID"] in stale.err
    assert "batch_size changed from 5 to 9" in stale.err
    assert live.get_event_source_mapping(UUID=mapping["UUID"])["BatchSize"] == 9

    # A mapping appearing on a managed function also makes the plan stale.
    assert run_esm("plan", "-f", spec, "--out", planfile, endpoint=moto_server).code == 0
    extra = live.create_event_source_mapping(
        FunctionName="alpha", EventSourceArn=seeded.queues["qb"]
    )
    stale = run_esm("apply", planfile, "--auto-approve", endpoint=moto_server)
    assert stale.code == 1 and f"mapping {extra['UUID']} appeared" in stale.err
    live.delete_event_source_mapping(UUID=extra["UUID"])

    # A plan for another account is refused before anything is read or written.
    assert run_esm("plan", "-f", spec, "--out", planfile, endpoint=moto_server).code == 0
    document = json.loads(planfile.read_text())
    document["account"] = "210987654321"
    planfile.write_text(json.dumps(document))
    other = run_esm("apply", planfile, "--auto-approve", endpoint=moto_server)
    assert other.code == 1 and "210987654321" in other.err

    # Not a plan, or both a plan and -f: clear errors, exit 1.
    assert run_esm("apply", spec, "--auto-approve", endpoint=moto_server).code == 1
    both = run_esm("apply", planfile, "-f", spec, endpoint=moto_server)
    assert both.code == 1 and "not both" in both.err


def test_options_from_environment(moto_server, seed, write_spec):
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=moto_server)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    result = run_esm(
        "plan",
        endpoint=moto_server,
        env={"ESM_FILE": str(spec), "ESM_FORMAT": "json", "ESM_PLAN_DETAILED_EXITCODE": "1"},
    )
    assert result.code == 2, result.err
    assert json.loads(result.out)["summary"]["create"] == 1


def test_export_then_plan_is_no_changes(moto_server, seed, tmp_path):
    # gamma exists with no mappings: it exports as an empty list (a missing one is an error).
    seeded = seed(
        functions=["alpha", "beta", "gamma"], queues=["qa", "qb"], endpoint_url=moto_server
    )
    live = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    live.create_event_source_mapping(
        FunctionName="alpha",
        EventSourceArn=seeded.queues["qa"],
        BatchSize=50,
        MaximumBatchingWindowInSeconds=5,
        FilterCriteria={"Filters": [{"Pattern": '{"body": {"a": [1]}}'}]},
        Tags={"team": "orders"},
    )
    live.create_event_source_mapping(FunctionName="beta", EventSourceArn=seeded.queues["qb"])

    exported = tmp_path / "exported.yaml"
    result = run_esm(
        "export", "--function", "alpha", "--function", "gamma", "-o", exported, endpoint=moto_server
    )
    assert result.code == 0, result.err
    text = exported.read_text()
    assert "batch_size: 50" in text and "team: orders" in text and "gamma: []" in text
    assert "beta" not in text
    planned = run_esm("plan", "-f", exported, "--detailed-exitcode", endpoint=moto_server)
    assert planned.code == 0, planned.out + planned.err
    assert "No changes." in planned.out

    everything = run_esm("export", "--all", endpoint=moto_server)
    assert everything.code == 0 and "alpha:" in everything.out and "beta:" in everything.out
    assert run_esm("export", endpoint=moto_server).code == 1  # neither --function nor --all
