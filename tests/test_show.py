"""`esm show PLANFILE`: a saved plan rendered without calling AWS (issue 12).

Saved plans are made offline here (saved_plan_text with the identities a plan looked up), so
no test touches an endpoint; every client factory is made to fail while `show` runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from esm_reconcile import aws as aws_module
from esm_reconcile.errors import EsmError
from esm_reconcile.model import LiveMapping
from esm_reconcile.ownership import split_by_scope
from esm_reconcile.plan import Plan
from esm_reconcile.planning import ScopePlan, derive_plan, managed_functions
from esm_reconcile.render import render
from esm_reconcile.saved_plan_check import saved_plan_text
from esm_reconcile.show import saved_plan_view, show_saved_plan
from esm_reconcile.validate import load_spec
from tests.spec_json import CHANGE_KEYS, PLAN_KEYS

ACCOUNT = "123456789012"
US, EU = "us-east-1", "eu-west-1"


def arn(service: str, region: str, rest: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{rest}"


def fn(region: str) -> str:
    return arn("lambda", region, "function:alpha")


def spec_text(region: str) -> str:
    """alpha: q-keep (batch 10 live → 5), stream (LATEST live → TRIM_HORIZON: a replace),
    q-new (created); q-old exists live and is not listed (deleted)."""
    return (
        f"version: 1\nregion: {region}\nfunctions:\n  alpha:\n"
        f"    - event_source_arn: {arn('sqs', region, 'q-keep')}\n      batch_size: 5\n"
        f"    - event_source_arn: {arn('kinesis', region, 'stream/clicks')}\n"
        "      starting_position: TRIM_HORIZON\n"
        f"    - event_source_arn: {arn('sqs', region, 'q-new')}\n"
    )


def live_of(region: str) -> list[LiveMapping]:
    def mapping(uuid: str, **response: Any) -> LiveMapping:
        return LiveMapping.from_response(
            {"UUID": uuid, "FunctionArn": fn(region), "State": "Enabled", **response}
        )

    return [
        mapping(
            f"{region}-1111-2222-3333", EventSourceArn=arn("sqs", region, "q-keep"), BatchSize=10
        ),
        mapping(
            f"{region}-4444-5555-6666",
            EventSourceArn=arn("kinesis", region, "stream/clicks"),
            StartingPosition="LATEST",
            BatchSize=100,
        ),
        mapping(
            f"{region}-7777-8888-9999", EventSourceArn=arn("sqs", region, "q-old"), BatchSize=7
        ),
    ]


def saved(tmp_path: Path, regions: tuple[str, ...] = (US,)) -> tuple[Path, list[Plan]]:
    """A saved plan file of these regions, as `esm plan --out` writes it, and its plans."""
    paths = []
    for region in regions:
        path = tmp_path / f"{region}.yaml"
        path.write_text(spec_text(region))
        paths.append(path)
    spec = load_spec(paths)
    scope_plans, plans = [], []
    for scope in split_by_scope(spec, None, None, lambda _profile: US):
        assert scope.region is not None
        aws = aws_module.AwsContext(
            None,
            None,
            aws_module.RateLimiter(),
            scope.region,
            {"account": ACCOUNT, "partition": "aws"},
        )
        functions = managed_functions(scope.spec, scope.region, ACCOUNT, "aws")
        live = live_of(scope.region)
        plan = derive_plan(functions, live)
        plan.region, plan.account = scope.region, ACCOUNT
        scope_plans.append(ScopePlan(scope, aws, plan, live, functions))
        plans.append(plan)
    planfile = tmp_path / "reviewed.plan"
    planfile.write_text(saved_plan_text(str(planfile), scope_plans, ()))
    return planfile, plans


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach AWS fails the test."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("esm show must not reach AWS")

    monkeypatch.setattr(aws_module, "connect", refuse)
    monkeypatch.setattr(aws_module, "new_session", refuse)
    monkeypatch.setattr(boto3, "client", refuse)
    monkeypatch.setattr(boto3.session.Session, "client", refuse)


def test_show_renders_the_saved_plan_as_plan_does(tmp_path: Path) -> None:
    planfile, (plan,) = saved(tmp_path)
    assert [c.action for c in plan.changes] == ["delete", "replace", "update", "create"]
    for fmt in ("text", "markdown", "json"):
        assert show_saved_plan(str(planfile), fmt) == render(plan, fmt)
    text = show_saved_plan(str(planfile))
    assert text.splitlines()[0] == f"Region {US}, account {ACCOUNT}"
    assert text.splitlines()[-1] == "Plan: 1 to create, 1 to update, 1 to replace, 1 to delete."
    assert "batch_size: 10 -> 5" in text
    assert 'starting_position: "LATEST" -> "TRIM_HORIZON"   # forces replacement' in text


def test_show_json_is_the_spec_plan_object(tmp_path: Path) -> None:
    planfile, _ = saved(tmp_path)
    data = json.loads(show_saved_plan(str(planfile), "json"))
    assert set(data) == PLAN_KEYS
    assert data["summary"] == {"create": 1, "update": 1, "replace": 1, "delete": 1}
    for change in data["changes"]:
        assert set(change) == CHANGE_KEYS
        assert (change["region"], change["account"]) == (US, ACCOUNT)
    assert any("read position" in w for w in data["warnings"])


def test_show_of_several_regions_names_each(tmp_path: Path) -> None:
    planfile, plans = saved(tmp_path, (US, EU))
    view = saved_plan_view(str(planfile))
    assert view.scopes_covered() == [(US, ACCOUNT), (EU, ACCOUNT)]
    assert len(view.changes) == sum(len(p.changes) for p in plans) == 8
    data = json.loads(show_saved_plan(str(planfile), "json"))
    assert {c["region"] for c in data["changes"]} == {US, EU}
    assert all(c["function_arn"] == fn(c["region"]) for c in data["changes"])
    text = show_saved_plan(str(planfile), "text")
    assert text.splitlines()[0] == (
        f"2 regions/accounts: region {US}, account {ACCOUNT}; region {EU}, account {ACCOUNT}"
    )
    markdown = show_saved_plan(str(planfile), "markdown")
    assert markdown.startswith("**Plan: 2 to create, 2 to update, 2 to replace, 2 to delete.**")


def one_line(exc: pytest.ExceptionInfo[EsmError]) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def test_a_damaged_or_edited_file_is_one_line_error(tmp_path: Path) -> None:
    planfile, _ = saved(tmp_path)
    original = planfile.read_text()

    planfile.write_text(original[: len(original) // 2])
    with pytest.raises(EsmError) as damaged:
        show_saved_plan(str(planfile))
    assert "not valid JSON" in one_line(damaged) and str(planfile) in one_line(damaged)

    document = json.loads(original)
    update = next(c for c in document["changes"] if c["action"] == "update")
    update["fields"][0]["after"] = 6
    planfile.write_text(json.dumps(document))
    with pytest.raises(EsmError) as edited:
        show_saved_plan(str(planfile), "json")
    assert "edited or damaged" in one_line(edited)

    planfile.write_text('{"kind": "something else"}')
    with pytest.raises(EsmError) as other:
        show_saved_plan(str(planfile))
    assert "not a saved plan" in one_line(other)

    with pytest.raises(EsmError) as missing:
        show_saved_plan(str(tmp_path / "nope.plan"))
    assert "cannot read saved plan" in one_line(missing)


def test_an_edited_observation_is_refused_not_shown(tmp_path: Path) -> None:
    # Changes and observation edited together so they agree, but the spec no longer gives
    # them: what is shown is only ever what the recorded spec and state derive.
    planfile, _ = saved(tmp_path)
    document = json.loads(planfile.read_text())
    document["observed_mappings"][0]["function_arn"] = arn("lambda", US, "function:gamma")
    planfile.write_text(json.dumps(document))
    with pytest.raises(EsmError) as edited:
        show_saved_plan(str(planfile))
    assert "function:gamma" in one_line(edited)
