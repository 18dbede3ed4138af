"""The Python API (esm_reconcile.api) as a script uses it: one call per command, typed results."""

from __future__ import annotations

import json

import pytest

from esm_reconcile import api
from esm_reconcile.errors import EsmError, SpecErrors

REGION = "us-east-1"


@pytest.fixture
def moto_endpoint(moto_server, monkeypatch):
    """boto3's usual chain reaches the moto server, as a script's environment would set it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


def test_plan_apply_and_plan_again_through_the_api(moto_endpoint, seed, write_spec):
    seeded = seed(functions=["alpha", "beta"], queues=["qa", "qb"], endpoint_url=moto_endpoint)
    first = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    second = write_spec(
        {"beta": [{"event_source_arn": seeded.queues["qb"], "batch_size": 5}]},
        region=REGION,
        name="b.yaml",
    )

    report = api.plan([first, second])
    assert report.has_changes and report.summary["create"] == 2
    assert "**Plan: 2 to create" in report.render("markdown")
    assert json.loads(report.render("json"))["summary"]["create"] == 2

    lines: list[str] = []
    applied = api.apply([first, second], progress=lines.append)
    assert applied.ok, applied.report
    assert applied.summary["created"] == 2 and "Apply complete" in applied.report
    assert sum(line.endswith(": creating") for line in lines) == 2
    assert json.loads(applied.json())["summary"]["created"] == 2

    assert not api.plan([first, second]).has_changes
    health = api.status([first, second])
    assert health.summary["ok"] == 2
    assert api.plan(str(first)).summary == api.plan(first).summary  # one path, not characters
    assert health.all_ok and len(health.mappings) == 2
    nothing = api.apply([first, second])
    assert nothing.ok and nothing.summary["created"] == 0


def test_apply_refuses_past_max_destroy_changing_nothing(moto_endpoint, seed, write_spec):
    seeded = seed(functions=["alpha"], queues=["qa"], endpoint_url=moto_endpoint)
    spec = write_spec({"alpha": [{"event_source_arn": seeded.queues["qa"]}]}, region=REGION)
    assert api.apply([spec]).ok
    emptied = write_spec({"alpha": []}, region=REGION, name="empty.yaml")
    with pytest.raises(EsmError, match="more than --max-destroy 0"):
        api.apply([emptied], max_destroy=0)
    assert api.plan([emptied]).summary["delete"] == 1


def test_a_bad_spec_raises_spec_errors_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nfunctions:\n  f:\n    - batch_size: 5\n")
    with pytest.raises(SpecErrors) as info:
        api.validate([bad])
    assert all(error.file == str(bad) and error.line for error in info.value.errors)
