"""Spec files for several regions or accounts in one run: grouped, planned and applied each with
its own clients and rate limit, concurrently; one owner per function and region."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from esm_reconcile.errors import EsmError
from esm_reconcile.ownership import split_by_scope
from esm_reconcile.validate import load_spec
from tests.cli_runner import run_esm
from tests.conftest import seed

ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "eu-west-1")


def seed_orders(endpoint: str, region: str, queue: str) -> str:
    """The function `orders` and the queue `queue` in `region`; returns the queue's ARN."""
    seeded = seed(functions=["orders"], queues=[queue], endpoint_url=endpoint, region=region)
    return seeded.queues[queue]


def write(path: Path, functions: dict[str, Any], **top: Any) -> Path:
    path.write_text(json.dumps({"version": 1, **top, "functions": functions}), encoding="utf-8")
    return path


def live(endpoint: str, region: str) -> list[dict[str, Any]]:
    client = boto3.client("lambda", region_name=region, endpoint_url=endpoint)
    return client.list_event_source_mappings()["EventSourceMappings"]


def test_two_regions_are_planned_and_applied_in_one_run(moto_server: str, tmp_path: Path) -> None:
    queues = {r: seed_orders(moto_server, r, f"orders-{r}") for r in REGIONS}
    files = [
        write(
            tmp_path / f"{r}.yaml",
            {"orders": [{"event_source_arn": queues[r], "batch_size": 5}]},
            region=r,
        )
        for r in REGIONS
    ]
    plan = run_esm("plan", "-f", tmp_path, "--format", "json", endpoint=moto_server)
    assert plan.code == 0, plan.err
    assert "2 regions/accounts" in plan.err
    changes = json.loads(plan.out)["changes"]
    assert sorted(c["function_arn"] for c in changes) == sorted(
        f"arn:aws:lambda:{r}:{ACCOUNT}:function:orders" for r in REGIONS
    )

    applied = run_esm(
        "apply", "--auto-approve", *[a for f in files for a in ("-f", f)], endpoint=moto_server
    )
    assert applied.code == 0, applied.err
    assert "[eu-west-1] orders[" in applied.err and "[us-east-1] orders[" in applied.err
    for region in REGIONS:
        (mapping,) = live(moto_server, region)
        assert mapping["EventSourceArn"] == queues[region] and mapping["BatchSize"] == 5
        assert mapping["FunctionArn"].startswith(f"arn:aws:lambda:{region}:")

    again = run_esm("plan", "-f", tmp_path, "--detailed-exitcode", endpoint=moto_server)
    assert again.code == 0 and "No changes." in again.out, again.out + again.err


def test_a_file_without_region_takes_the_command_lines(moto_server: str, tmp_path: Path) -> None:
    queue = seed_orders(moto_server, "eu-west-1", "orders-eu")
    write(tmp_path / "eu.yaml", {"orders": [{"event_source_arn": queue}]})
    applied = run_esm(
        "--region", "eu-west-1", "apply", "--auto-approve", "-f", tmp_path, endpoint=moto_server
    )
    assert applied.code == 0, applied.err
    assert len(live(moto_server, "eu-west-1")) == 1 and not live(moto_server, "us-east-1")


def test_one_function_in_two_files_of_one_resolved_region_is_refused(
    moto_server: str, tmp_path: Path
) -> None:
    queue = seed_orders(moto_server, "us-east-1", "orders-q")
    write(tmp_path / "a.yaml", {"orders": [{"event_source_arn": queue}]}, region="us-east-1")
    write(tmp_path / "b.yaml", {"orders": []})  # region from AWS_DEFAULT_REGION: us-east-1
    result = run_esm("apply", "--auto-approve", "-f", tmp_path, endpoint=moto_server)
    assert result.code == 1
    assert "function orders in us-east-1 is also managed by" in result.err
    assert not live(moto_server, "us-east-1")


def test_a_saved_plan_of_two_regions_applies_both_or_refuses_when_one_moved(
    moto_server: str, tmp_path: Path
) -> None:
    queues = {r: seed_orders(moto_server, r, f"orders-{r}") for r in REGIONS}
    for region in REGIONS:
        write(
            tmp_path / f"{region}.yaml",
            {"orders": [{"event_source_arn": queues[region]}]},
            region=region,
        )
    saved = tmp_path / "both.plan"
    plan = run_esm("plan", "-f", tmp_path, "--out", saved, endpoint=moto_server)
    assert plan.code == 0, plan.err
    assert json.loads(saved.read_text())["kind"] == "esm-saved-plans"

    # Something changes in one region after review: the whole saved plan is refused.
    boto3.client(
        "lambda", region_name="eu-west-1", endpoint_url=moto_server
    ).create_event_source_mapping(FunctionName="orders", EventSourceArn=queues["eu-west-1"])
    stale = run_esm("apply", "--auto-approve", saved, endpoint=moto_server)
    assert stale.code == 1 and "is stale" in stale.err
    assert "eu-west-1: " in stale.err and not live(moto_server, "us-east-1")

    for mapping in live(moto_server, "eu-west-1"):
        boto3.client(
            "lambda", region_name="eu-west-1", endpoint_url=moto_server
        ).delete_event_source_mapping(UUID=mapping["UUID"])
    applied = run_esm("apply", "--auto-approve", saved, endpoint=moto_server)
    assert applied.code == 0, applied.err
    assert all(len(live(moto_server, r)) == 1 for r in REGIONS)
    assert run_esm("plan", "-f", tmp_path, "--detailed-exitcode", endpoint=moto_server).code == 0


def test_two_profiles_reaching_one_account_may_not_share_a_function(
    moto_server: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile blue]\nregion = us-east-1\n[profile green]\nregion = us-east-1\n")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[blue]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        "[green]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    specs = tmp_path / "specs"
    specs.mkdir()
    write(specs / "blue.yaml", {"orders": []}, profile="blue")
    write(specs / "green.yaml", {"orders": []}, profile="green")
    env = {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    result = run_esm("plan", "-f", specs, endpoint=moto_server, env=env)
    assert result.code == 1
    assert "blue.yaml (us-east-1 (profile blue))" in result.err, result.err
    assert "green.yaml (us-east-1 (profile green)); one file must own it" in result.err

    write(specs / "green.yaml", {"payments": []}, profile="green")
    result = run_esm("plan", "-f", specs, endpoint=moto_server, env=env)
    assert result.code == 0 and "No changes." in result.out, result.err


def test_the_sandbox_seeds_and_serves_every_region(tmp_path: Path) -> None:
    for region in REGIONS:
        write(
            tmp_path / f"{region}.yaml",
            {"orders": [{"event_source_arn": f"arn:aws:sqs:{region}:{ACCOUNT}:orders"}]},
            region=region,
        )
    result = run_esm("demo", "-f", tmp_path)
    assert result.code == 0, result.out + result.err
    assert "Plan: 2 to create" in result.out
    assert result.out.rstrip().endswith("No changes.")


def test_split_by_scope_groups_files_by_resolved_region_and_profile(tmp_path: Path) -> None:
    paths = [
        write(tmp_path / "a.yaml", {"a": []}, region="eu-west-1"),
        write(tmp_path / "b.yaml", {"b": []}),
        write(tmp_path / "c.yaml", {"c": []}, region="us-east-1"),
        write(tmp_path / "d.yaml", {"d": []}, profile="ops"),
    ]
    spec = load_spec(list(paths))
    scopes = split_by_scope(spec, None, None, lambda profile: "us-east-1")
    grouped = {
        (s.region, s.profile): sorted(Path(f.path).name for f in s.spec.files) for s in scopes
    }
    assert grouped == {
        ("eu-west-1", None): ["a.yaml"],
        ("us-east-1", None): ["b.yaml", "c.yaml"],
        ("us-east-1", "ops"): ["d.yaml"],
    }
    # --region fills in only where a file names none; a --profile likewise.
    scopes = split_by_scope(spec, "ap-south-1", "dev", lambda profile: None)
    assert {(s.region, s.profile) for s in scopes} == {
        ("eu-west-1", "dev"),
        ("ap-south-1", "dev"),
        ("us-east-1", "dev"),
        ("ap-south-1", "ops"),
    }


def test_split_by_scope_refuses_one_function_twice_in_a_resolved_region(tmp_path: Path) -> None:
    spec = load_spec(
        [
            write(tmp_path / "a.yaml", {"orders": []}, region="us-east-1"),
            write(tmp_path / "b.yaml", {"orders": []}),
        ]
    )
    with pytest.raises(EsmError, match="also managed by"):
        split_by_scope(spec, None, None, lambda profile: "us-east-1")
    assert len(split_by_scope(spec, None, None, lambda profile: "eu-west-1")) == 2


def test_one_function_under_two_names_is_refused(moto_server: str, tmp_path: Path) -> None:
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders"
    write(tmp_path / "a.yaml", {"orders": []}, region="us-east-1")
    write(tmp_path / "b.yaml", {arn: []}, region="us-east-1")
    result = run_esm("plan", "-f", tmp_path, endpoint=moto_server)
    assert result.code == 1
    assert f"function {arn} is managed as orders in" in result.err, result.err
    assert "one file must own it, under one name" in result.err


def test_a_saved_plan_records_only_the_specs_own_profile(moto_server: str, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[profile ops]\nregion = us-east-1\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[ops]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env = {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    specs = tmp_path / "specs"
    specs.mkdir()
    write(specs / "plain.yaml", {"orders": []}, region="us-east-1")
    saved = tmp_path / "p.plan"
    made = run_esm(
        "--profile", "ops", "plan", "-f", specs, "--out", saved, endpoint=moto_server, env=env
    )
    assert made.code == 0, made.err
    assert json.loads(saved.read_text())["profile"] is None  # --profile was the runner's
    write(specs / "plain.yaml", {"orders": []}, region="us-east-1", profile="ops")
    assert run_esm("plan", "-f", specs, "--out", saved, endpoint=moto_server, env=env).code == 0
    assert json.loads(saved.read_text())["profile"] == "ops"
    assert run_esm("apply", "--auto-approve", saved, endpoint=moto_server, env=env).code == 0


def test_scopes_of_one_profile_share_one_boto3_session(
    tmp_path: Path, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building a Session loads the service models afresh: 20 regions connect in 2.0 s with
    a session each, in 0.28 s with one (benchmarks/connect_regions.py)."""
    from esm_reconcile import app
    from esm_reconcile import aws as aws_module

    made: list[str | None] = []
    real = aws_module.new_session

    def counting(profile: str | None = None) -> Any:
        made.append(profile)
        return real(profile)

    monkeypatch.setattr(aws_module, "new_session", counting)
    regions = ["us-east-1", "eu-west-1", "ap-south-1"]
    for region in regions:
        (tmp_path / f"{region}.yaml").write_text(
            f"version: 1\nregion: {region}\nfunctions:\n  f-{region}: []\n"
        )
    spec = app.load([tmp_path])
    with app.connected(spec, app.Settings()) as connections:
        assert sorted(c.aws.region for c in connections) == sorted(regions)
        assert {c.aws.lambda_client.meta.region_name for c in connections} == set(regions)
    assert made == [None]
