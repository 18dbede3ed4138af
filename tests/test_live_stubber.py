"""LiveReader and RateLimiter against real boto3 clients with botocore's Stubber (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from esm_reconcile.aws import AwsContext, RateLimiter
from esm_reconcile.errors import AwsError
from esm_reconcile.live import LiveReader
from tests.aws_shapes import FakeTime, U, offline_client

REGION = "us-east-1"
ACCOUNT = "123456789012"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-handler"
FN_LIVE = f"{FN}:live"
OTHER_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-elses"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PATTERN = '{"body":{"kind":["refund"]}}'
CALLER = {
    "UserId": "AIDAEXAMPLE",
    "Account": ACCOUNT,
    "Arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
}


def item(name: str, function_arn: str = FN, source: str = QUEUE, **extra: Any) -> dict[str, Any]:
    uuid = U(name)
    return {
        "UUID": uuid,
        "BatchSize": 10,
        "MaximumBatchingWindowInSeconds": 0,
        "EventSourceArn": source,
        "FunctionArn": function_arn,
        "State": "Enabled",
        "StateTransitionReason": "USER_INITIATED",
        "FunctionResponseTypes": [],
        "EventSourceMappingArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}",
        **extra,
    }


class Harness:
    """A LiveReader on stubbed Lambda (`lam`) and STS (`sts`) clients; `calls` records both."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.lambda_client = offline_client("lambda", self.calls)
        self.sts_client = offline_client("sts", self.calls)
        self.lam = Stubber(self.lambda_client)
        self.sts = Stubber(self.sts_client)
        self.aws = AwsContext(self.lambda_client, self.sts_client, RateLimiter(1000), REGION)
        self.reader = LiveReader(self.aws)

    def ops(self, name: str) -> list[dict]:
        return [p for op, p in self.calls if op == name]

    def caller(self) -> None:
        self.sts.add_response("get_caller_identity", CALLER, {})


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    with harness.lam, harness.sts:
        yield harness
    harness.lam.assert_no_pending_responses()
    harness.sts.assert_no_pending_responses()


# -- listing --------------------------------------------------------------------------------------


def test_list_paginates_with_next_marker_and_keeps_managed_functions_only(h: Harness) -> None:
    h.lam.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [item("a"), item("x", OTHER_FN)], "NextMarker": "m-1"},
        {"MaxItems": 100},
    )
    h.lam.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [item("b", FN_LIVE), item("y", OTHER_FN)], "NextMarker": "m-2"},
        {"MaxItems": 100, "Marker": "m-1"},
    )
    h.lam.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [item("c"), item("z", f"{FN}:other")]},
        {"MaxItems": 100, "Marker": "m-2"},
    )

    found = h.reader.mappings({FN, FN_LIVE})

    assert sorted(m.uuid for m in found) == sorted([U("a"), U("b"), U("c")])
    assert {m.function_arn for m in found} == {FN, FN_LIVE}
    lists = h.ops("ListEventSourceMappings")
    assert lists == [
        {"MaxItems": 100},
        {"MaxItems": 100, "Marker": "m-1"},
        {"MaxItems": 100, "Marker": "m-2"},
    ]
    assert not h.ops("GetEventSourceMapping")
    first = next(m for m in found if m.uuid == U("a"))
    assert first.settings["event_source_arn"] == QUEUE
    assert first.settings["batch_size"] == 10
    assert first.state == "Enabled"
    assert first.esm_arn and first.esm_arn.endswith(U("a"))


def test_others_are_the_rest_of_the_same_pages_without_a_get(h: Harness) -> None:
    """Status's unmanaged mappings: what the List pages hold beyond the managed functions, at
    no extra call (no Get even for an encrypted filter: they are not diffed)."""
    h.lam.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [item("a"), item("x", OTHER_FN, KMSKeyArn=KEY)], "NextMarker": "m"},
        {"MaxItems": 100},
    )
    h.lam.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [item("y", f"{FN}:other", State="Disabled")]},
        {"MaxItems": 100, "Marker": "m"},
    )
    others: list = []

    found = h.reader.mappings({FN}, others=others)

    assert [m.uuid for m in found] == [U("a")]
    assert [(m.uuid, m.function_arn, m.state) for m in others] == [
        (U("x"), OTHER_FN, "Enabled"),
        (U("y"), f"{FN}:other", "Disabled"),
    ]
    assert len(h.ops("ListEventSourceMappings")) == 2
    assert not h.ops("GetEventSourceMapping")


def test_status_fields_and_last_modified_in_utc(h: Harness) -> None:
    from datetime import datetime, timedelta, timezone

    eastern = timezone(timedelta(hours=-5))
    h.lam.add_response(
        "list_event_source_mappings",
        {
            "EventSourceMappings": [
                item(
                    "a",
                    LastProcessingResult="PROBLEM: Function call failed",
                    StateTransitionReason="USER_INITIATED",
                    LastModified=datetime(2025, 11, 3, 7, 0, tzinfo=eastern),
                )
            ]
        },
    )
    (mapping,) = h.reader.mappings({FN})
    assert mapping.last_processing_result == "PROBLEM: Function call failed"
    assert mapping.state_transition_reason == "USER_INITIATED"
    assert mapping.last_modified == "2025-11-03T12:00:00+00:00"


def test_existing_functions_pages_until_the_wanted_are_found(h: Harness) -> None:
    def fn(name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    h.lam.add_response(
        "list_functions",
        {"Functions": [{"FunctionArn": fn("a")}, {"FunctionArn": fn("b")}], "NextMarker": "f1"},
        {"MaxItems": 50},
    )
    h.lam.add_response(
        "list_functions",
        {"Functions": [{"FunctionArn": fn("c")}], "NextMarker": "f2"},
        {"MaxItems": 50, "Marker": "f1"},
    )
    # A third page exists, but both wanted functions were found on the first two.
    assert h.reader.existing_functions({fn("a"), fn("c")}) >= {fn("a"), fn("c")}
    assert len(h.ops("ListFunctions")) == 2
    assert h.reader.existing_functions(set()) == set()  # nothing wanted: no call
    assert len(h.ops("ListFunctions")) == 2


def test_existing_functions_reads_every_page_for_a_missing_one(h: Harness) -> None:
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:a"
    h.lam.add_response("list_functions", {"Functions": [{"FunctionArn": fn}], "NextMarker": "f1"})
    h.lam.add_response("list_functions", {"Functions": []})
    assert h.reader.existing_functions({fn, OTHER_FN}) == {fn}
    assert len(h.ops("ListFunctions")) == 2


def test_existing_functions_without_permission_is_an_error(h: Harness) -> None:
    h.lam.add_client_error(
        "list_functions",
        service_error_code="AccessDeniedException",
        service_message="no lambda:ListFunctions",
        http_status_code=403,
    )
    with pytest.raises(AwsError) as caught:
        h.reader.existing_functions({OTHER_FN})
    assert caught.value.code == "AccessDeniedException"
    assert "ListFunctions" in str(caught.value)


def test_empty_account_lists_once(h: Harness) -> None:
    h.lam.add_response("list_event_source_mappings", {"EventSourceMappings": []}, {"MaxItems": 100})
    assert h.reader.mappings({FN}) == []


def test_kms_encrypted_filters_trigger_one_get(h: Harness) -> None:
    # List returns FilterCriteria as null when a KMS key encrypts it; Get decrypts it.
    encrypted = item("kms", KMSKeyArn=KEY)
    plain = item("plain", FilterCriteria={"Filters": [{"Pattern": PATTERN}]}, KMSKeyArn=KEY)
    foreign = item("foreign", OTHER_FN, KMSKeyArn=KEY)
    h.lam.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [encrypted, plain, foreign]},
        {"MaxItems": 100},
    )
    h.lam.add_response(
        "get_event_source_mapping",
        {**encrypted, "FilterCriteria": {"Filters": [{"Pattern": PATTERN}]}},
        {"UUID": U("kms")},
    )

    found = {m.uuid: m for m in h.reader.mappings({FN})}

    assert set(found) == {U("kms"), U("plain")}
    assert h.ops("GetEventSourceMapping") == [{"UUID": U("kms")}]
    assert found[U("kms")].settings["filter_criteria"] == {"filters": [{"pattern": PATTERN}]}
    assert found[U("kms")].settings["kms_key_arn"] == KEY


def test_list_error_is_described(h: Harness) -> None:
    h.lam.add_client_error(
        "list_event_source_mappings",
        service_error_code="AccessDeniedException",
        service_message="not allowed",
        http_status_code=403,
    )
    with pytest.raises(AwsError) as caught:
        h.reader.mappings({FN})
    assert caught.value.code == "AccessDeniedException"
    assert "not allowed" in str(caught.value)


def test_read_tags_uses_list_tags_on_the_mapping_arn(h: Harness) -> None:
    h.lam.add_response("list_event_source_mappings", {"EventSourceMappings": [item("a")]})
    (mapping,) = h.reader.mappings({FN})
    h.lam.add_response("list_tags", {"Tags": {"team": "orders"}}, {"Resource": mapping.esm_arn})
    h.reader.read_tags(mapping)
    assert mapping.tags == {"team": "orders"}


# -- account and function ARNs --------------------------------------------------------------------


def test_identity_from_sts_is_looked_up_once(h: Harness) -> None:
    h.caller()
    assert h.aws.identity() == {"account": ACCOUNT, "partition": "aws"}
    assert h.aws.identity()["account"] == ACCOUNT
    assert len(h.ops("GetCallerIdentity")) == 1


@pytest.mark.parametrize(
    ("ref", "arn"),
    [
        ("orders-handler", FN),
        ("orders-handler:live", FN_LIVE),
        ("orders-handler:$LATEST", f"{FN}:$LATEST"),
        (FN, FN),
        (FN_LIVE, FN_LIVE),
        (
            "arn:aws:lambda:eu-west-1:210987654321:function:elsewhere",
            "arn:aws:lambda:eu-west-1:210987654321:function:elsewhere",
        ),
    ],
)
def test_function_arn(h: Harness, ref: str, arn: str) -> None:
    h.caller()
    assert h.reader.function_arn(ref) == arn


def test_function_arn_uses_the_caller_partition(h: Harness) -> None:
    h.sts.add_response(
        "get_caller_identity",
        {**CALLER, "Arn": f"arn:aws-cn:iam::{ACCOUNT}:user/ci"},
        {},
    )
    assert h.reader.function_arn("f") == f"arn:aws-cn:lambda:{REGION}:{ACCOUNT}:function:f"


def test_missing_functions(h: Harness) -> None:
    h.caller()
    h.lam.add_response(
        "get_function",
        {"Configuration": {"FunctionName": "orders-handler", "FunctionArn": FN}},
        {"FunctionName": FN},
    )
    h.lam.add_client_error(
        "get_function",
        service_error_code="ResourceNotFoundException",
        service_message=f"Function not found: {FN_LIVE}",
        http_status_code=404,
        expected_params={"FunctionName": FN, "Qualifier": "live"},
    )
    h.lam.add_client_error(
        "get_function",
        service_error_code="ResourceNotFoundException",
        service_message="Function not found",
        http_status_code=404,
        expected_params={"FunctionName": OTHER_FN},
    )

    missing = h.reader.missing_functions(["orders-handler", "orders-handler:live", OTHER_FN])

    assert missing == ["orders-handler:live", OTHER_FN]
    assert h.ops("GetFunction") == [
        {"FunctionName": FN},
        {"FunctionName": FN, "Qualifier": "live"},
        {"FunctionName": OTHER_FN},
    ]


def test_missing_functions_other_errors_raise(h: Harness) -> None:
    h.caller()
    h.lam.add_client_error(
        "get_function",
        service_error_code="AccessDeniedException",
        service_message="no lambda:GetFunction",
        http_status_code=403,
    )
    with pytest.raises(AwsError) as caught:
        h.reader.missing_functions(["orders-handler"])
    assert caught.value.code == "AccessDeniedException"
    assert "orders-handler" in str(caught.value)


# -- rate limiter ---------------------------------------------------------------------------------


def test_rate_limiter_25_acquires_at_10_per_second() -> None:
    time = FakeTime()
    limiter = RateLimiter(10, burst=10, clock=time.clock, sleep=time.sleep)
    for _ in range(25):
        limiter.acquire()
    # The burst of 10 is free; the other 15 each wait a tenth of a second.
    assert sum(time.sleeps) == pytest.approx(1.5, abs=0.01)
    assert limiter.acquired == 25
    assert time.now - FakeTime.START == pytest.approx(1.5, abs=0.01)


def test_rate_limiter_refills_over_time() -> None:
    time = FakeTime()
    limiter = RateLimiter(10, burst=10, clock=time.clock, sleep=time.sleep)
    for _ in range(10):
        limiter.acquire()
    time.now += 5.0  # idle: the bucket refills, but only up to the burst
    for _ in range(10):
        limiter.acquire()
    assert time.sleeps == []
    limiter.acquire()
    assert sum(time.sleeps) == pytest.approx(0.1, abs=0.01)


def test_rate_limiter_accepts_botocore_event_arguments() -> None:
    # connect() registers acquire on "before-send.lambda", which passes keyword arguments.
    time = FakeTime()
    limiter = RateLimiter(10, clock=time.clock, sleep=time.sleep)
    limiter.acquire(request=object(), event_name="before-send.lambda.ListEventSourceMappings")
    assert limiter.acquired == 1


def test_rate_limiter_halves_on_throttling_once_per_second_then_recovers() -> None:
    time = FakeTime()
    limiter = RateLimiter(10, burst=10, clock=time.clock, sleep=time.sleep)
    throttled = (
        type("Http", (), {"status_code": 429})(),
        {"Error": {"Code": "TooManyRequestsException"}},
    )
    for _ in range(5):  # one burst of 429s is one signal
        limiter.observe(response=throttled, attempts=1)
    assert limiter.rate == pytest.approx(5.0) and limiter.throttled == 5
    time.now += 1.0
    limiter.observe(response=throttled)
    assert limiter.rate == pytest.approx(2.5 + 0.0, abs=0.6)  # recovered ~0.5 over that second
    assert limiter.lowest_rate == limiter.rate
    # Additive recovery: back to the configured rate in about RECOVERY_SECONDS, never above.
    time.now += RateLimiter.RECOVERY_SECONDS
    limiter.acquire()
    assert limiter.rate == pytest.approx(10.0)
    ok = (type("Http", (), {"status_code": 200})(), {})
    limiter.observe(response=ok)
    limiter.observe(response=None, caught_exception=ConnectionError())
    assert limiter.rate == pytest.approx(10.0)


def fn_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def functions_page(*names: str, marker: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "Functions": [{"FunctionName": n, "FunctionArn": fn_arn(n)} for n in names]
    }
    if marker:
        page["NextMarker"] = marker
    return page


def test_missing_functions_read_from_list_functions_when_cheaper(h: Harness) -> None:
    """Four new unqualified functions: one ListFunctions page settles them all (two exist,
    two do not); the aliased one still needs its GetFunction."""
    h.caller()
    h.lam.add_response("list_functions", functions_page("a", "b", "unrelated"), {"MaxItems": 50})
    h.lam.add_client_error(
        "get_function",
        service_error_code="ResourceNotFoundException",
        service_message="Function not found",
        http_status_code=404,
        expected_params={"FunctionName": fn_arn("a"), "Qualifier": "live"},
    )
    missing = h.reader.missing_functions(["a", "b", "c", "a:live", f"{fn_arn('d')}"])
    assert missing == ["c", "a:live", fn_arn("d")]
    assert len(h.ops("ListFunctions")) == 1 and len(h.ops("GetFunction")) == 1


def test_list_functions_stops_when_more_pages_would_cost_more_than_gets(h: Harness) -> None:
    h.caller()
    h.lam.add_response("list_functions", functions_page("x1", marker="p2"), {"MaxItems": 50})
    h.lam.add_response(
        "list_functions", functions_page("a", marker="p3"), {"MaxItems": 50, "Marker": "p2"}
    )
    # Two pages read, two functions unsettled: a third page is no cheaper than two Gets.
    for name in ("b", "c"):
        h.lam.add_response(
            "get_function",
            {"Configuration": {"FunctionName": name, "FunctionArn": fn_arn(name)}},
            {"FunctionName": fn_arn(name)},
        )
    assert h.reader.missing_functions(["a", "b", "c"]) == []
    assert len(h.ops("ListFunctions")) == 2 and len(h.ops("GetFunction")) == 2


def test_no_list_functions_permission_falls_back_to_gets(h: Harness) -> None:
    h.caller()
    h.lam.add_client_error(
        "list_functions",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: lambda:ListFunctions",
        http_status_code=403,
    )
    for name in ("a", "b", "c"):
        h.lam.add_response(
            "get_function",
            {"Configuration": {"FunctionName": name, "FunctionArn": fn_arn(name)}},
            {"FunctionName": fn_arn(name)},
        )
    assert h.reader.missing_functions(["a", "b", "c"]) == []
