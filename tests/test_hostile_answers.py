"""Answers of the right form but the wrong content, found by an adversarial review (issue 9):
JSON of the wrong types, a list that pages forever, escapes in progress lines, export of a
function elsewhere. Each is one line and exit 1, never a traceback or a hang."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from esm_reconcile.engine import protocol
from tests.test_endpoints import (
    Answer,
    FakeEndpoint,
    endpoint,  # noqa: F401  (a fixture)
    esm_against,
    the_error_line,
)

ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"


def page(**fields: object) -> Answer:
    mapping = {"UUID": "u-1", "FunctionArn": FUNCTION_ARN, "State": "Enabled"} | fields
    return Answer(body=json.dumps({"EventSourceMappings": [mapping]}).encode())


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (page(BatchSize="x"), "botocore cannot parse (ValueError"),
        (page(StateTransitionReason=7), "StateTransitionReason is a int, not a string"),
        (
            page(EventSourceArn=["x"]),
            "EventSourceMappings[0].EventSourceArn is a list, not a string",
        ),
        (page(Topics=5), "botocore cannot parse (TypeError"),
        (page(ScalingConfig=[1]), "botocore cannot parse (AttributeError"),
        (page(DestinationConfig={"OnFailure": "x"}), "botocore cannot parse"),
        (page(FilterCriteria={"Filters": "x"}), "botocore cannot parse"),
        (page(LastModified="notadate"), "botocore cannot parse"),
        (
            page(SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": 5}}),
            "botocore cannot parse (TypeError",
        ),
        (page(State=5), "a mapping without State"),
    ],
    ids=[
        "int",
        "reason",
        "arn-list",
        "topics",
        "scaling",
        "destination",
        "filters",
        "date",
        "kafka",
        "state",
    ],
)
def test_a_mapping_of_the_wrong_types_is_not_a_lambda_answer(
    answer: Answer,
    says: str,
    endpoint: Callable[..., FakeEndpoint],  # noqa: F811
    moto_server: str,
    tmp_path: Path,
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"version: 1\nfunctions:\n  orders:\n    - event_source_arn: {QUEUE}\n")
    fake = endpoint(answer)
    line = the_error_line(esm_against(moto_server, "plan", "-f", spec, lambda_endpoint=fake.url))
    assert f"the Lambda endpoint {fake.url} answered ListEventSourceMappings" in line, line
    assert says in line, line
    assert not fake.writes()


class EndlessPages(FakeEndpoint):
    """Every List page carries a new marker: a list that never ends."""

    def answer_for(self, method: str, path: str) -> Answer:
        count = len(self.requests)
        return Answer(
            body=json.dumps({"EventSourceMappings": [], "NextMarker": f"m{count}"}).encode()
        )


def test_a_list_that_pages_forever_is_refused(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "MAX_PAGES", 20)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"version: 1\nfunctions:\n  orders:\n    - event_source_arn: {QUEUE}\n")
    fake = EndlessPages(Answer()).start()
    try:
        line = the_error_line(
            esm_against(moto_server, "plan", "-f", spec, lambda_endpoint=fake.url)
        )
    finally:
        fake.stop()
    assert f"{fake.url} is still paging ListEventSourceMappings after 20 pages" in line
    assert len(fake.requests) == 20  # 20 pages, the last still naming a next one


def test_progress_lines_carry_no_terminal_escapes(
    moto_server: str, seed: Callable[..., object], tmp_path: Path
) -> None:
    """A source ARN may hold any character AWS's pattern `.*` allows, ESC and BEL included."""
    seed(functions=["f"], endpoint_url=moto_server)
    hostile = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q\x1b]0;PWNED\x07\x1b[2J"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nfunctions:\n  f:\n    - event_source_arn: " + json.dumps(hostile) + "\n",
        encoding="utf-8",
    )
    result = esm_against(moto_server, "apply", "--auto-approve", "-f", spec)
    assert "\x1b" not in result.out + result.err and "\x07" not in result.out + result.err
    assert "\\u001b]0;PWNED\\u0007" in result.err  # the progress line, escaped


def test_export_of_a_function_in_another_region_is_refused(moto_server: str) -> None:
    elsewhere = f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:f"
    line = the_error_line(esm_against(moto_server, "export", "--function", elsewhere))
    assert f"--function {elsewhere} is not in account {ACCOUNT} region us-east-1" in line
