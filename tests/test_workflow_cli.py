"""The pull-request workflow through the CLI: --target, GitHub step summary and annotations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"
REPO_ROOT = Path(__file__).resolve().parent.parent


def esm(
    *args: str | Path, endpoint: str | None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ESM_", "GITHUB_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONPATH=str(REPO_ROOT),
    )
    env.update(extra_env)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return subprocess.run(
        [sys.executable, "-m", "esm_reconcile", *map(str, args)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_target_limits_plan_and_apply(moto_server, seed, write_spec, tmp_path):
    seeded = seed(functions=["alpha", "beta"], queues=["qa", "qb"], endpoint_url=moto_server)
    spec = write_spec(
        {
            "alpha": [{"event_source_arn": seeded.queues["qa"]}],
            "beta": [{"event_source_arn": seeded.queues["qb"]}],
        },
        region=REGION,
    )
    plan = esm("plan", "-f", spec, "--target", "alpha", "--format", "json", endpoint=moto_server)
    assert plan.returncode == 0, plan.stderr
    changes = json.loads(plan.stdout)["changes"]
    assert [c["address"] for c in changes] == [f"alpha[{seeded.queues['qa']}]"]

    text = esm("plan", "-f", spec, "--target", f"beta[{seeded.queues['qb']}]", endpoint=moto_server)
    assert "targeting is in effect" in text.stdout
    assert "Plan: 1 to create" in text.stdout and "alpha[" not in text.stdout

    applied = esm("apply", "-f", spec, "--target", "alpha", "--auto-approve", endpoint=moto_server)
    assert applied.returncode == 0, applied.stderr
    live = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    arns = {m["FunctionArn"] for m in live.list_event_source_mappings()["EventSourceMappings"]}
    assert arns == {f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:alpha"}

    unknown = esm("plan", "-f", spec, "--target", "gamma", endpoint=moto_server)
    assert unknown.returncode == 1 and "gamma" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_step_summary_gets_the_markdown_plan(moto_server, seed, write_spec, tmp_path):
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=moto_server)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = esm("plan", "-f", spec, endpoint=moto_server, GITHUB_STEP_SUMMARY=str(summary))
    assert result.returncode == 0, result.stderr
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
    result = esm("validate", "-f", bad, endpoint=None, GITHUB_ACTIONS="true")
    assert result.returncode == 1
    assert (
        f"::error file={bad},line=5::functions.f[0].starting_position: not supported for SQS"
        in result.stdout
    )
    plain = esm("validate", "-f", bad, endpoint=None)
    assert "::error" not in plain.stdout


def test_saved_plan_applies_exactly_and_refuses_when_stale(moto_server, seed, write_spec, tmp_path):
    seeded = seed(functions=["alpha"], queues=["qa", "qb"], endpoint_url=moto_server)
    live = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    spec = write_spec(
        {"alpha": [{"event_source_arn": seeded.queues["qa"], "batch_size": 5}]}, region=REGION
    )
    planfile = tmp_path / "reviewed.plan"

    made = esm("plan", "-f", spec, "--out", planfile, endpoint=moto_server)
    assert made.returncode == 0, made.stderr
    applied = esm("apply", planfile, "--auto-approve", "--detailed-exitcode", endpoint=moto_server)
    assert applied.returncode == 2, applied.stderr
    (mapping,) = live.list_event_source_mappings()["EventSourceMappings"]
    assert mapping["BatchSize"] == 5

    # Review a change, then someone edits the mapping by hand before the merge.
    spec.write_text(spec.read_text().replace("batch_size: 5", "batch_size: 7"))
    assert esm("plan", "-f", spec, "--out", planfile, endpoint=moto_server).returncode == 0
    live.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=9)
    stale = esm("apply", planfile, "--auto-approve", endpoint=moto_server)
    assert stale.returncode == 1
    assert "stale" in stale.stderr and mapping["UUID"] in stale.stderr
    assert "batch_size changed from 5 to 9" in stale.stderr
    assert live.get_event_source_mapping(UUID=mapping["UUID"])["BatchSize"] == 9

    # A mapping appearing on a managed function also makes the plan stale.
    assert esm("plan", "-f", spec, "--out", planfile, endpoint=moto_server).returncode == 0
    extra = live.create_event_source_mapping(
        FunctionName="alpha", EventSourceArn=seeded.queues["qb"]
    )
    stale = esm("apply", planfile, "--auto-approve", endpoint=moto_server)
    assert stale.returncode == 1 and f"mapping {extra['UUID']} appeared" in stale.stderr
    live.delete_event_source_mapping(UUID=extra["UUID"])

    # A plan for another account is refused before anything is read or written.
    assert esm("plan", "-f", spec, "--out", planfile, endpoint=moto_server).returncode == 0
    document = json.loads(planfile.read_text())
    document["account"] = "210987654321"
    planfile.write_text(json.dumps(document))
    other = esm("apply", planfile, "--auto-approve", endpoint=moto_server)
    assert other.returncode == 1 and "210987654321" in other.stderr

    # Not a plan, or both a plan and -f: clear errors, exit 1.
    assert esm("apply", spec, "--auto-approve", endpoint=moto_server).returncode == 1
    both = esm("apply", planfile, "-f", spec, endpoint=moto_server)
    assert both.returncode == 1 and "not both" in both.stderr


def test_options_from_environment(moto_server, seed, write_spec):
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=moto_server)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    result = esm(
        "plan",
        endpoint=moto_server,
        ESM_FILE=str(spec),
        ESM_FORMAT="json",
        ESM_PLAN_DETAILED_EXITCODE="1",
    )
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["summary"]["create"] == 1


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
    result = esm(
        "export", "--function", "alpha", "--function", "gamma", "-o", exported, endpoint=moto_server
    )
    assert result.returncode == 0, result.stderr
    text = exported.read_text()
    assert "batch_size: 50" in text and "team: orders" in text and "gamma: []" in text
    assert "beta" not in text
    planned = esm("plan", "-f", exported, "--detailed-exitcode", endpoint=moto_server)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes." in planned.stdout

    everything = esm("export", "--all", endpoint=moto_server)
    assert (
        everything.returncode == 0
        and "alpha:" in everything.stdout
        and "beta:" in everything.stdout
    )
    assert esm("export", endpoint=moto_server).returncode == 1  # neither --function nor --all
