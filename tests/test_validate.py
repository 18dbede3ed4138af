"""Offline validation: every error names file, line and field, and one run reports them all.

Source kinds covered: SQS standard and FIFO, Kinesis (stream and consumer ARN), DynamoDB Streams.
AWS rules: reference/aws-esm-semantics.md A.1-A.6.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from esm_reconcile.errors import SpecError, SpecErrors
from esm_reconcile.rules import Kind
from esm_reconcile.validate import Spec, check_mapping, load_spec

NOW = datetime(2025, 6, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent

SQS = "arn:aws:sqs:us-east-1:123456789012:orders"
FIFO = "arn:aws:sqs:us-east-1:123456789012:orders.fifo"
KINESIS = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
CONSUMER = "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1"
DDB = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"
DLQ = "arn:aws:sqs:us-east-1:123456789012:dlq"
STREAMS = (KINESIS, CONSUMER, DDB)
KIND_NAME = {SQS: "SQS", FIFO: "SQS FIFO", KINESIS: "Kinesis", CONSUMER: "Kinesis", DDB: "DynamoDB"}


# -- helpers ---------------------------------------------------------------------------------------


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def line(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the nth line of (dedented) text that contains needle."""
    found = [i for i, t in enumerate(dedent(text).splitlines(), 1) if needle in t]
    assert len(found) > nth, f"{needle!r} not in spec"
    return found[nth]


def errors_of(tmp_path: Path, text: str, now: datetime = NOW) -> tuple[Path, list[SpecError]]:
    path = write(tmp_path, text)
    with pytest.raises(SpecErrors) as info:
        load_spec([path], now=now)
    errors = info.value.errors
    assert all(e.file == str(path) for e in errors), errors
    return path, errors


def where(errors: list[SpecError]) -> list[tuple[int, str]]:
    return [(e.line, e.field) for e in errors]


def valid(tmp_path: Path, text: str, now: datetime = NOW, name: str = "spec.yaml") -> Spec:
    return load_spec([write(tmp_path, text, name)], now=now)


def one(arn: str, body: str = "", function: str = "fn") -> str:
    """A spec with one function holding one mapping; streams get a starting position unless the
    body gives one (or says `# no position`)."""
    lines = [f"- event_source_arn: {arn}"]
    if arn in STREAMS and "starting_position:" not in body and "# no position" not in body:
        lines.append("  starting_position: LATEST")
    lines += ["  " + t for t in dedent(body).splitlines()]
    items = "\n".join("    " + t for t in lines)
    return f"version: 1\nfunctions:\n  {function}:\n{items}\n"


def single_error(tmp_path: Path, text: str, now: datetime = NOW) -> SpecError:
    _, errors = errors_of(tmp_path, text, now)
    assert len(errors) == 1, errors
    return errors[0]


def assert_error(
    tmp_path: Path, arn: str, body: str, field: str, needle: str | None, words: str
) -> None:
    """One mapping with one mistake → exactly one error at (line of needle, field)."""
    text = one(arn, body)
    error = single_error(tmp_path, text)
    expected_line = line(text, needle) if needle else line(text, "- event_source_arn")
    assert (error.line, error.field) == (expected_line, f"functions.fn[0].{field}"), error
    assert words in error.message, error


# -- unknown keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "body", "field", "needle", "words"),
    [
        (SQS, "batchsize: 5", "batchsize", "batchsize", "did you mean 'batch_size'"),
        (SQS, "Batch_Size: 5", "Batch_Size", "Batch_Size", "did you mean 'batch_size'"),
        (
            SQS,
            "scaling_config:\n  maximum_concurency: 5",
            "scaling_config.maximum_concurency",
            "maximum_concurency",
            "did you mean 'maximum_concurrency'",
        ),
        (
            KINESIS,
            f"destination_config:\n  on_failur:\n    destination: {DLQ}",
            "destination_config.on_failur",
            "on_failur:",
            "did you mean 'on_failure'",
        ),
        (
            DDB,
            "filter_criteria:\n  filter:\n    - pattern: {a: [1]}",
            "filter_criteria.filter",
            "filter:",
            "did you mean 'filters'",
        ),
        (SQS, "ignore_change: [enabled]", "ignore_change", "ignore_change", "'ignore_changes'"),
        (SQS, "xyzzy: 1", "xyzzy", "xyzzy", "unknown field"),
        # a parameter name in API form is unknown too
        (SQS, "BatchSize: 5", "BatchSize", "BatchSize", "unknown field"),
    ],
)
def test_unknown_key(tmp_path: Path, arn: str, body: str, field: str, needle: str, words: str):
    assert_error(tmp_path, arn, body, field, needle, words)


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path: Path) -> None:
    error = single_error(tmp_path, one(SQS, "xyzzy: 1"))
    assert error.message == "unknown field"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = "version: 1\nfunctons: {}\n"
    _, errors = errors_of(tmp_path, text)
    assert where(errors) == [(1, "functions"), (2, "functons")]
    assert "required" in errors[0].message
    assert "did you mean 'functions'" in errors[1].message


def test_misspelled_source_key(tmp_path: Path) -> None:
    text = "version: 1\nfunctions:\n  f:\n    - event_source: " + SQS + "\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (4, "functions.f[0].event_source")
    assert "did you mean 'event_source_arn'" in error.message


# -- wrong types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "body", "field", "needle", "words"),
    [
        (SQS, "batch_size: ten", "batch_size", "batch_size", "integer"),
        (SQS, "batch_size: 5.5", "batch_size", "batch_size", "integer"),
        (SQS, "batch_size: [5]", "batch_size", "batch_size", "integer"),
        (SQS, "enabled: maybe", "enabled", "enabled", "boolean"),
        (SQS, "function_response_types: ReportBatchItemFailures", "function_response_types", "function_response_types", "list"),
        (SQS, "function_response_types: [Report]", "function_response_types[0]", "function_response_types", "ReportBatchItemFailures"),
        (KINESIS, "starting_position: MIDDLE", "starting_position", "starting_position", "LATEST"),
        (SQS, "filter_criteria: []", "filter_criteria", "filter_criteria", "dictionary"),
        (SQS, "scaling_config: 5", "scaling_config", "scaling_config", "dictionary"),
        (SQS, "tags:\n  team: [1]", "tags.team", "team:", "string"),
        (KINESIS, "starting_position: AT_TIMESTAMP\nstarting_position_timestamp: yesterday", "starting_position_timestamp", "yesterday", "datetime"),
        (KINESIS, "bisect_batch_on_function_error: sometimes", "bisect_batch_on_function_error", "bisect", "boolean"),
        (SQS, "ignore_changes: enabled", "ignore_changes", "ignore_changes", "list"),
        (KINESIS, "destination_config: " + DLQ, "destination_config", "destination_config", "dictionary"),
    ],
)  # fmt: skip
def test_wrong_type(tmp_path: Path, arn: str, body: str, field: str, needle: str, words: str):
    assert_error(tmp_path, arn, body, field, needle, words)


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    """`batch_size: yes` is YAML 1.1 for true; it must not become a batch size of 1."""
    assert_error(tmp_path, SQS, "batch_size: yes", "batch_size", "batch_size", "integer")


def test_source_arn_must_be_a_string_arn(tmp_path: Path) -> None:
    text = "version: 1\nfunctions:\n  f:\n    - event_source_arn: 12\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (4, "functions.f[0].event_source_arn")
    text = "version: 1\nfunctions:\n  f:\n    - event_source_arn: orders\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (4, "functions.f[0].event_source_arn")
    assert "'orders': not an ARN" in error.message


def test_unrecognised_source(tmp_path: Path) -> None:
    assert_error(
        tmp_path,
        "arn:aws:sns:us-east-1:123456789012:topic",
        "",
        "event_source_arn",
        None,
        "unrecognised event source",
    )


def test_missing_source(tmp_path: Path) -> None:
    text = "version: 1\nfunctions:\n  f:\n    - batch_size: 5\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (4, "functions.f[0].event_source_arn")
    assert "required" in error.message


@pytest.mark.parametrize(
    ("text", "at", "field", "words"),
    [
        ("version: 1\nfunctions:\n  f: {batch_size: 1}\n", 3, "functions.f", "list"),
        ("version: 1\nfunctions: [f]\n", 2, "functions", "dictionary"),
        ("version: 1\nfunctions:\n  f:\n    - just-a-string\n", 4, "functions.f[0]", ""),
        ("version: 1\nfunctions:\n  f:\n    -\n", 4, "functions.f[0]", ""),
        ("- version: 1\n", 1, "", "mapping"),
        ("just text\n", 1, "", "mapping"),
    ],
)
def test_wrong_structure(tmp_path: Path, text: str, at: int, field: str, words: str) -> None:
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (at, field)
    assert words in error.message


def test_filter_pattern_of_wrong_type_is_one_error_at_the_pattern(tmp_path: Path) -> None:
    """Not two errors at pydantic's union members (`pattern.dict[str,any]`, `pattern.str`)."""
    text = one(SQS, "filter_criteria:\n  filters:\n    - pattern: 5")
    error = single_error(tmp_path, text)
    assert error.field == "functions.fn[0].filter_criteria.filters[0].pattern"
    assert error.line == line(text, "pattern: 5")


# -- ranges at the botocore bounds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "field", "value"),
    [
        (SQS, "batch_size", 0),
        (SQS, "batch_size", 10001),
        (KINESIS, "batch_size", 10001),
        (DDB, "batch_size", -1),
        (SQS, "maximum_batching_window_in_seconds", -1),
        (SQS, "maximum_batching_window_in_seconds", 301),
        (KINESIS, "maximum_batching_window_in_seconds", 301),
        (KINESIS, "parallelization_factor", 0),
        (KINESIS, "parallelization_factor", 11),
        (DDB, "parallelization_factor", 11),
        (KINESIS, "maximum_record_age_in_seconds", -2),
        (KINESIS, "maximum_record_age_in_seconds", 604801),
        (DDB, "maximum_record_age_in_seconds", 604801),
        (KINESIS, "maximum_retry_attempts", -2),
        (KINESIS, "maximum_retry_attempts", 10001),
        (DDB, "maximum_retry_attempts", 10001),
        (KINESIS, "tumbling_window_in_seconds", -1),
        (KINESIS, "tumbling_window_in_seconds", 901),
        (CONSUMER, "tumbling_window_in_seconds", 901),
    ],
)
def test_out_of_range(tmp_path: Path, arn: str, field: str, value: int) -> None:
    words = "greater than or equal" if value < 1 else "less than or equal"
    assert_error(tmp_path, arn, f"{field}: {value}", field, field, words)


@pytest.mark.parametrize("value", [1, 1001])
def test_maximum_concurrency_range(tmp_path: Path, value: int) -> None:
    assert_error(
        tmp_path,
        SQS,
        f"scaling_config:\n  maximum_concurrency: {value}",
        "scaling_config.maximum_concurrency",
        "maximum_concurrency",
        "than or equal",
    )


@pytest.mark.parametrize("value", [0, 1, 59])
@pytest.mark.parametrize("arn", [KINESIS, CONSUMER, DDB])
def test_record_age_below_60_refused(tmp_path: Path, arn: str, value: int) -> None:
    assert_error(
        tmp_path,
        arn,
        f"maximum_record_age_in_seconds: {value}",
        "maximum_record_age_in_seconds",
        "maximum_record_age",
        "-1 or between 60 and 604800",
    )


@pytest.mark.parametrize(
    ("arn", "body"),
    [
        (SQS, "batch_size: 1"),
        (SQS, "batch_size: 10"),
        (SQS, "batch_size: 10000\nmaximum_batching_window_in_seconds: 1"),
        (SQS, "maximum_batching_window_in_seconds: 0"),
        (SQS, "maximum_batching_window_in_seconds: 300"),
        (SQS, "scaling_config: {maximum_concurrency: 2}"),
        (SQS, "scaling_config: {maximum_concurrency: 1000}"),
        (FIFO, "batch_size: 1"),
        (FIFO, "batch_size: 10"),
        (KINESIS, "batch_size: 10000"),  # no window needed for streams
        (DDB, "batch_size: 1000"),
        (KINESIS, "parallelization_factor: 1"),
        (KINESIS, "parallelization_factor: 10"),
        (DDB, "parallelization_factor: 10"),
        (KINESIS, "maximum_record_age_in_seconds: -1"),
        (KINESIS, "maximum_record_age_in_seconds: 60"),
        (DDB, "maximum_record_age_in_seconds: 604800"),
        (KINESIS, "maximum_retry_attempts: -1"),
        (KINESIS, "maximum_retry_attempts: 0"),
        (DDB, "maximum_retry_attempts: 10000"),
        (KINESIS, "tumbling_window_in_seconds: 0"),
        (CONSUMER, "tumbling_window_in_seconds: 900"),
        (KINESIS, "maximum_batching_window_in_seconds: 300"),
    ],
)
def test_in_range(tmp_path: Path, arn: str, body: str) -> None:
    spec = valid(tmp_path, one(arn, body))
    (mapping,) = spec.mappings()
    key, value = body.splitlines()[0].split(": ", 1)
    assert key in mapping.settings


@pytest.mark.parametrize(
    ("body", "needle", "words"),
    [
        ("tags:\n  " + "k" * 129 + ": v", "k" * 129, "at most 128 characters"),
        ('tags:\n  "": v', '"": v', "at least 1 character"),
        ("tags:\n  team: " + "v" * 257, "team:", "at most 256 characters"),
    ],
)
def test_tag_lengths_refused_by_the_model(
    tmp_path: Path, body: str, needle: str, words: str
) -> None:
    """AWS's tag limits (keys 1-128, values up to 256 characters) are the model's: one error,
    at the tag's line."""
    text = one(SQS, body)
    error = single_error(tmp_path, text)
    assert error.line == line(text, needle)
    assert error.field.startswith("functions.fn[0].tags."), error
    assert words in error.message, error


def test_tag_lengths_at_the_limits_accepted(tmp_path: Path) -> None:
    (mapping,) = valid(tmp_path, one(SQS, "tags:\n  " + "k" * 128 + ": " + "v" * 256)).mappings()
    assert mapping.settings["tags"] == {"k" * 128: "v" * 256}


# -- fields not allowed for the kind ---------------------------------------------------------------

NOT_ALLOWED = [
    (SQS, "starting_position: LATEST", "starting_position"),
    (SQS, "starting_position: TRIM_HORIZON", "starting_position"),
    (FIFO, "starting_position: LATEST", "starting_position"),
    (SQS, "parallelization_factor: 2", "parallelization_factor"),
    (FIFO, "parallelization_factor: 2", "parallelization_factor"),
    (SQS, f"destination_config: {{on_failure: {{destination: {DLQ}}}}}", "destination_config"),
    (FIFO, f"destination_config: {{on_failure: {{destination: {DLQ}}}}}", "destination_config"),
    (SQS, "tumbling_window_in_seconds: 10", "tumbling_window_in_seconds"),
    (SQS, "bisect_batch_on_function_error: true", "bisect_batch_on_function_error"),
    (SQS, "maximum_retry_attempts: 3", "maximum_retry_attempts"),
    (SQS, "maximum_record_age_in_seconds: 60", "maximum_record_age_in_seconds"),
    (SQS, "starting_position_timestamp: 2024-01-01T00:00:00Z", "starting_position_timestamp"),
    (SQS, "topics: [orders]", "topics"),
    (SQS, "queues: [q]", "queues"),
    (SQS, "logging_config: {system_log_level: INFO}", "logging_config"),
    (FIFO, "maximum_batching_window_in_seconds: 0", "maximum_batching_window_in_seconds"),
    (FIFO, "maximum_batching_window_in_seconds: 1", "maximum_batching_window_in_seconds"),
    (KINESIS, "scaling_config: {maximum_concurrency: 5}", "scaling_config"),
    (CONSUMER, "scaling_config: {maximum_concurrency: 5}", "scaling_config"),
    (DDB, "scaling_config: {maximum_concurrency: 5}", "scaling_config"),
    (KINESIS, "provisioned_poller_config: {minimum_pollers: 2}", "provisioned_poller_config"),
    (KINESIS, "queues: [q]", "queues"),
    (DDB, "topics: [orders]", "topics"),
    (KINESIS, "logging_config: {system_log_level: WARN}", "logging_config"),
    (DDB, "document_db_event_source_config: {database_name: d}", "document_db_event_source_config"),
    (KINESIS, "source_access_configurations: [{type: BASIC_AUTH, uri: x}]", "source_access_configurations"),
    (
        DDB,
        "starting_position: TRIM_HORIZON\nstarting_position_timestamp: 2024-01-01T00:00:00Z",
        "starting_position_timestamp",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("arn", "body", "field"), NOT_ALLOWED)
def test_not_allowed_for_kind(tmp_path: Path, arn: str, body: str, field: str) -> None:
    assert_error(tmp_path, arn, body, field, field + ":", f"not supported for {KIND_NAME[arn]}")


def test_fifo_window_message_quotes_aws(tmp_path: Path) -> None:
    error = single_error(tmp_path, one(FIFO, "maximum_batching_window_in_seconds: 1"))
    assert "Batching window is not supported for FIFO queues" in error.message


def test_self_managed_source_with_arn_refused(tmp_path: Path) -> None:
    text = one(
        SQS, "self_managed_event_source:\n  endpoints: {KAFKA_BOOTSTRAP_SERVERS: ['b:9092']}"
    )
    error = single_error(tmp_path, text)
    assert error.field == "functions.fn[0].self_managed_event_source"
    assert error.line == line(text, "self_managed_event_source")


# -- starting position -----------------------------------------------------------------------------


@pytest.mark.parametrize("arn", STREAMS)
def test_stream_requires_starting_position(tmp_path: Path, arn: str) -> None:
    text = one(arn, "batch_size: 5  # no position")
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (
        line(text, "- event_source_arn"),
        "functions.fn[0].starting_position",
    )
    assert (
        error.message == f"required for {'DynamoDB Streams' if arn == DDB else 'Kinesis'} sources"
    )


@pytest.mark.parametrize("position", ["LATEST", "TRIM_HORIZON"])
@pytest.mark.parametrize("arn", STREAMS)
def test_stream_positions_accepted(tmp_path: Path, arn: str, position: str) -> None:
    (mapping,) = valid(tmp_path, one(arn, f"starting_position: {position}")).mappings()
    assert mapping.settings["starting_position"] == position
    assert mapping.kind is (Kind.DYNAMODB if arn == DDB else Kind.KINESIS)


def test_dynamodb_refuses_at_timestamp(tmp_path: Path) -> None:
    assert_error(
        tmp_path,
        DDB,
        "starting_position: AT_TIMESTAMP",
        "starting_position",
        "starting_position",
        "AT_TIMESTAMP is not supported for DynamoDB",
    )


@pytest.mark.parametrize("arn", [KINESIS, CONSUMER])
def test_at_timestamp_needs_timestamp(tmp_path: Path, arn: str) -> None:
    assert_error(
        tmp_path,
        arn,
        "starting_position: AT_TIMESTAMP",
        "starting_position_timestamp",
        None,  # not in the mapping: the mapping's line
        "required with AT_TIMESTAMP",
    )


@pytest.mark.parametrize("position", ["LATEST", "TRIM_HORIZON"])
@pytest.mark.parametrize("arn", [KINESIS, CONSUMER])
def test_timestamp_needs_at_timestamp(tmp_path: Path, arn: str, position: str) -> None:
    assert_error(
        tmp_path,
        arn,
        f"starting_position: {position}\nstarting_position_timestamp: 2024-01-01T00:00:00Z",
        "starting_position_timestamp",
        "starting_position_timestamp",
        "only allowed with starting_position: AT_TIMESTAMP",
    )


@pytest.mark.parametrize(
    "stamp",
    [
        "2025-06-01T00:00:01Z",
        "'2025-06-01T00:00:01+00:00'",
        "2025-06-01T02:00:01+02:00",
        "2025-06-01T00:00:01",  # naive means UTC
        "2030-01-01T00:00:00Z",
    ],
)
def test_timestamp_in_the_future(tmp_path: Path, stamp: str) -> None:
    assert_error(
        tmp_path,
        KINESIS,
        f"starting_position: AT_TIMESTAMP\nstarting_position_timestamp: {stamp}",
        "starting_position_timestamp",
        "starting_position_timestamp",
        "cannot be in the future",
    )


@pytest.mark.parametrize(
    "stamp",
    [
        "2025-06-01T00:00:00Z",  # exactly now
        "2025-05-31T23:59:59Z",
        "'2024-01-01T00:00:00Z'",
        "2025-06-01T01:59:59+02:00",
        "2024-01-01",
    ],
)
def test_timestamp_in_the_past(tmp_path: Path, stamp: str) -> None:
    body = f"starting_position: AT_TIMESTAMP\nstarting_position_timestamp: {stamp}"
    (mapping,) = valid(tmp_path, one(KINESIS, body)).mappings()
    assert isinstance(mapping.settings["starting_position_timestamp"], datetime)


def test_future_uses_the_clock_without_now(tmp_path: Path) -> None:
    body = "starting_position: AT_TIMESTAMP\nstarting_position_timestamp: 2999-01-01T00:00:00Z"
    path = write(tmp_path, one(KINESIS, body))
    with pytest.raises(SpecErrors, match="cannot be in the future"):
        load_spec([path])


# -- SQS batch size rules --------------------------------------------------------------------------


def test_sqs_batch_over_10_needs_window(tmp_path: Path) -> None:
    assert_error(
        tmp_path,
        SQS,
        "batch_size: 11",
        "maximum_batching_window_in_seconds",
        None,  # the window is not written: the mapping's line
        "must be at least 1 when batch_size is greater than 10",
    )


def test_sqs_batch_over_10_with_window_0(tmp_path: Path) -> None:
    assert_error(
        tmp_path,
        SQS,
        "batch_size: 50\nmaximum_batching_window_in_seconds: 0",
        "maximum_batching_window_in_seconds",
        "maximum_batching_window_in_seconds",
        "must be at least 1",
    )


def test_sqs_batch_over_10_with_window_1(tmp_path: Path) -> None:
    (mapping,) = valid(
        tmp_path, one(SQS, "batch_size: 50\nmaximum_batching_window_in_seconds: 1")
    ).mappings()
    assert mapping.settings["batch_size"] == 50


@pytest.mark.parametrize("batch", [11, 100, 10000])
def test_fifo_batch_at_most_10(tmp_path: Path, batch: int) -> None:
    assert_error(
        tmp_path,
        FIFO,
        f"batch_size: {batch}",
        "batch_size",
        "batch_size",
        "at most 10 for SQS FIFO",
    )


# -- filter criteria -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        "- pattern: {body: {Temperature: [{numeric: ['>', 0]}]}}",
        """- pattern: '{"body": {"Temperature": [{"numeric": [">", 0]}]}}'""",
        "- pattern: {a: [1]}\n- pattern: '{\"b\": [2]}'",
        '- pattern: |\n    {"a": ["x"],\n     "b": [{"exists": true}]}',
    ],
)
@pytest.mark.parametrize("arn", [SQS, FIFO, KINESIS, DDB])
def test_filter_patterns_accepted(tmp_path: Path, arn: str, filters: str) -> None:
    body = "filter_criteria:\n  filters:\n" + textwrap.indent(filters, "    ")
    (mapping,) = valid(tmp_path, one(arn, body)).mappings()
    assert mapping.settings["filter_criteria"]["filters"]


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("'not json'", "not valid JSON"),
        ("'{\"a\": [1]'", "not valid JSON"),
        ("'[1, 2]'", "non-empty JSON object"),
        ("'\"text\"'", "non-empty JSON object"),
        ("'null'", "non-empty JSON object"),
        ("'{}'", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        ("''", "not valid JSON"),
    ],
)
def test_invalid_filter_pattern(tmp_path: Path, pattern: str, words: str) -> None:
    text = one(
        SQS, f"filter_criteria:\n  filters:\n    - pattern: {{a: [1]}}\n    - pattern: {pattern}"
    )
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (
        line(text, f"pattern: {pattern}"),
        "functions.fn[0].filter_criteria.filters[1].pattern",
    )
    assert words in error.message


def test_pattern_longer_than_4096_refused(tmp_path: Path) -> None:
    long = json.dumps({"a": ["x" * 4100]})
    text = one(SQS, f"filter_criteria: {{filters: [{{pattern: '{long}'}}]}}")
    error = single_error(tmp_path, text)
    assert error.field == "functions.fn[0].filter_criteria.filters[0].pattern"
    assert "4096" in error.message


def _filters(n: int) -> str:
    return ", ".join(f"{{pattern: {{n: [{i}]}}}}" for i in range(n))


def test_ten_filters_accepted(tmp_path: Path) -> None:
    text = one(SQS, f"filter_criteria: {{filters: [{_filters(10)}]}}")
    (mapping,) = valid(tmp_path, text).mappings()
    assert len(mapping.settings["filter_criteria"]["filters"]) == 10


@pytest.mark.parametrize("arn", [SQS, KINESIS, DDB])
def test_more_than_ten_filters_refused(tmp_path: Path, arn: str) -> None:
    assert_error(
        tmp_path,
        arn,
        f"filter_criteria: {{filters: [{_filters(11)}]}}",
        "filter_criteria.filters",
        "filter_criteria",
        "at most 10 filters",
    )


def test_same_pattern_twice_refused(tmp_path: Path) -> None:
    body = 'filter_criteria: {filters: [{pattern: {a: [1], b: [2]}}, {pattern: \'{"b":[2],"a":[1]}\'}]}'
    assert_error(tmp_path, SQS, body, "filter_criteria.filters", "filter_criteria", "twice")


# -- destinations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("arn", [KINESIS, DDB])
def test_on_success_refused(tmp_path: Path, arn: str) -> None:
    assert_error(
        tmp_path,
        arn,
        f"destination_config: {{on_success: {{destination: {DLQ}}}}}",
        "destination_config.on_success",
        "destination_config",
        "not supported",
    )


@pytest.mark.parametrize("on_failure", ["{}", "{destination: ''}", "{destination: null}"])
def test_on_failure_without_destination_refused(tmp_path: Path, on_failure: str) -> None:
    assert_error(
        tmp_path,
        KINESIS,
        f"destination_config: {{on_failure: {on_failure}}}",
        "destination_config.on_failure.destination",
        "destination_config",
        "required for an on_failure configuration",
    )


@pytest.mark.parametrize(
    "destination",
    [
        "arn:aws:lambda:us-east-1:123456789012:function:x",
        "arn:aws:kinesis:us-east-1:123456789012:stream/x",
        "arn:aws:events:us-east-1:123456789012:event-bus/default",
    ],
)
@pytest.mark.parametrize("arn", [KINESIS, DDB])
def test_destination_must_be_sqs_sns_s3(tmp_path: Path, arn: str, destination: str) -> None:
    assert_error(
        tmp_path,
        arn,
        f"destination_config: {{on_failure: {{destination: '{destination}'}}}}",
        "destination_config.on_failure.destination",
        "destination_config",
        "must be an SQS queue, SNS topic or S3 bucket ARN",
    )


def test_kafka_destination_only_for_kafka(tmp_path: Path) -> None:
    assert_error(
        tmp_path,
        KINESIS,
        "destination_config: {on_failure: {destination: 'kafka://dlq-topic'}}",
        "destination_config.on_failure.destination",
        "destination_config",
        "only for Kafka sources",
    )


def test_malformed_destination_refused(tmp_path: Path) -> None:
    assert_error(
        tmp_path,
        KINESIS,
        "destination_config: {on_failure: {destination: 'my-dlq'}}",
        "destination_config.on_failure.destination",
        "destination_config",
        "must be an SQS, SNS or S3 ARN",
    )


@pytest.mark.parametrize(
    "destination",
    [
        DLQ,
        "arn:aws:sns:us-east-1:123456789012:alerts",
        "arn:aws:s3:::failed-batches",
    ],
)
@pytest.mark.parametrize("arn", [KINESIS, CONSUMER, DDB])
def test_destinations_accepted(tmp_path: Path, arn: str, destination: str) -> None:
    body = f"destination_config:\n  on_failure:\n    destination: '{destination}'"
    (mapping,) = valid(tmp_path, one(arn, body)).mappings()
    assert mapping.settings["destination_config"] == {"on_failure": {"destination": destination}}


def test_nested_error_line_is_the_nested_key(tmp_path: Path) -> None:
    """A rule error on a nested field points at that field's own line, not its parent's."""
    body = (
        "destination_config:\n"
        "  on_failure:\n"
        "    destination: arn:aws:lambda:us-east-1:123456789012:function:x"
    )
    text = one(KINESIS, body)
    error = single_error(tmp_path, text)
    assert error.field == "functions.fn[0].destination_config.on_failure.destination"
    assert error.line == line(text, "destination: arn:aws:lambda")


# -- ignore_changes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "entry", "words"),
    [
        (SQS, "bogus", "'bogus' is not a field"),
        (SQS, "BatchSize", "is not a field"),
        (KINESIS, "destination_config.on_failure.nope", "is not a field"),
        (SQS, "event_source_arn", "identifies the mapping"),
        (SQS, "tags", None),
        (KINESIS, "scaling_config", "does not apply to Kinesis"),
        (SQS, "starting_position", "does not apply to SQS"),
        (FIFO, "maximum_batching_window_in_seconds", "does not apply to SQS FIFO"),
    ],
)
def test_ignore_changes_refused(tmp_path: Path, arn: str, entry: str, words: str | None) -> None:
    text = one(arn, f"ignore_changes: [{entry}]")
    if words is None:  # tags are managed on their own path; ignoring them is fine
        valid(tmp_path, text)
        return
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (
        line(text, "ignore_changes"),
        "functions.fn[0].ignore_changes",
    )
    assert words in error.message


def test_ignore_changes_accepted(tmp_path: Path) -> None:
    body = "ignore_changes: [enabled, batch_size, destination_config.on_failure.destination]"
    (mapping,) = valid(tmp_path, one(KINESIS, body)).mappings()
    assert mapping.ignore_changes == (
        "enabled",
        "batch_size",
        "destination_config.on_failure.destination",
    )
    assert "ignore_changes" not in mapping.settings


def test_every_bad_ignore_entry_reported(tmp_path: Path) -> None:
    text = one(KINESIS, "ignore_changes: [bogus, event_source_arn, scaling_config, enabled]")
    _, errors = errors_of(tmp_path, text)
    at = line(text, "ignore_changes")
    assert where(errors) == [(at, "functions.fn[0].ignore_changes")] * 3


# -- defaults --------------------------------------------------------------------------------------

DEFAULTS_SPEC = f"""
version: 1
defaults:
  batch_size: 5
  maximum_retry_attempts: 3
  starting_position: TRIM_HORIZON
  maximum_batching_window_in_seconds: 2
functions:
  fn:
    - event_source_arn: {SQS}
    - event_source_arn: {FIFO}
    - event_source_arn: {KINESIS}
      batch_size: 200
    - event_source_arn: {DDB}
      starting_position: LATEST
"""


def test_defaults_merged_into_each_mapping(tmp_path: Path) -> None:
    sqs, fifo, kinesis, ddb = valid(tmp_path, DEFAULTS_SPEC).mappings()
    assert sqs.settings == {
        "event_source_arn": SQS,
        "batch_size": 5,
        "maximum_batching_window_in_seconds": 2,
    }
    # not applicable to FIFO: window; to SQS: retries and starting position → silently not applied
    assert fifo.settings == {"event_source_arn": FIFO, "batch_size": 5}
    assert kinesis.settings == {
        "event_source_arn": KINESIS,
        "batch_size": 200,  # the mapping's own key wins
        "maximum_retry_attempts": 3,
        "starting_position": "TRIM_HORIZON",
        "maximum_batching_window_in_seconds": 2,
    }
    assert ddb.settings["starting_position"] == "LATEST"
    assert ddb.settings["maximum_retry_attempts"] == 3
    assert ddb.settings["batch_size"] == 5


def test_default_not_applicable_is_fine(tmp_path: Path) -> None:
    text = f"""
    version: 1
    defaults:
      maximum_retry_attempts: 3
      parallelization_factor: 2
      destination_config: {{on_failure: {{destination: {DLQ}}}}}
    functions:
      fn:
        - event_source_arn: {SQS}
    """
    (mapping,) = valid(tmp_path, text).mappings()
    assert mapping.settings == {"event_source_arn": SQS}


def test_default_ignore_changes_not_applicable_is_fine(tmp_path: Path) -> None:
    """A default ignore entry for a field the kind lacks is not applied, like other defaults."""
    text = f"""
    version: 1
    defaults:
      ignore_changes: [enabled, parallelization_factor]
    functions:
      fn:
        - event_source_arn: {SQS}
        - event_source_arn: {KINESIS}
          starting_position: LATEST
    """
    sqs, kinesis = valid(tmp_path, text).mappings()
    assert "enabled" in sqs.ignore_changes
    assert kinesis.ignore_changes == ("enabled", "parallelization_factor")


def test_default_ignore_changes_null_sets_none(tmp_path: Path) -> None:
    """`ignore_changes: null` in defaults is as in a mapping: nothing ignored (it used to crash)."""
    text = f"""
    version: 1
    defaults:
      ignore_changes: null
    functions:
      fn:
        - event_source_arn: {SQS}
          ignore_changes: null
        - event_source_arn: {FIFO}
    """
    assert [m.ignore_changes for m in valid(tmp_path, text).mappings()] == [(), ()]


@pytest.mark.parametrize(
    ("default", "arn", "field", "words"),
    [
        ("batch_size: 20", FIFO, "batch_size", "at most 10"),
        ("maximum_record_age_in_seconds: 30", KINESIS, "maximum_record_age_in_seconds", "60"),
        ("starting_position: AT_TIMESTAMP", DDB, "starting_position", "AT_TIMESTAMP"),
        (
            "destination_config: {on_failure: {destination: 'arn:aws:lambda:us-east-1:123456789012:function:x'}}",
            KINESIS,
            "destination_config.on_failure.destination",
            "SQS queue, SNS topic or S3",
        ),
        ("ignore_changes: [bogus]", SQS, "ignore_changes", "not a field"),
    ],
)
def test_default_error_points_at_defaults(
    tmp_path: Path, default: str, arn: str, field: str, words: str
) -> None:
    text = f"version: 1\ndefaults:\n  {default}\nfunctions:\n  fn:\n    - event_source_arn: {arn}\n"
    if arn in STREAMS and "starting_position" not in default:
        text += "      starting_position: LATEST\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (3, f"defaults.{field}")
    assert words in error.message


def test_default_error_reported_once_for_many_mappings(tmp_path: Path) -> None:
    text = f"""
    version: 1
    defaults:
      maximum_record_age_in_seconds: 30
    functions:
      fn:
        - event_source_arn: {KINESIS}
          starting_position: LATEST
        - event_source_arn: {DDB}
          starting_position: LATEST
      other:
        - event_source_arn: {KINESIS}
          starting_position: LATEST
    """
    _, errors = errors_of(tmp_path, text)
    assert where(errors) == [(3, "defaults.maximum_record_age_in_seconds")]


def test_default_overridden_everywhere_is_not_an_error(tmp_path: Path) -> None:
    text = f"""
    version: 1
    defaults:
      maximum_record_age_in_seconds: 30
    functions:
      fn:
        - event_source_arn: {KINESIS}
          starting_position: LATEST
          maximum_record_age_in_seconds: 60
    """
    (mapping,) = valid(tmp_path, text).mappings()
    assert mapping.settings["maximum_record_age_in_seconds"] == 60


@pytest.mark.parametrize(
    ("default", "field", "words"),
    [
        ("batch_size: 0", "defaults.batch_size", "greater than or equal"),
        ("batchsize: 5", "defaults.batchsize", "did you mean 'batch_size'"),
        ("parallelization_factor: 11", "defaults.parallelization_factor", "less than or equal"),
        (f"event_source_arn: {SQS}", "defaults", "a source cannot be a default"),
    ],
)
def test_defaults_shape_errors(tmp_path: Path, default: str, field: str, words: str) -> None:
    text = f"version: 1\ndefaults:\n  {default}\nfunctions:\n  fn: []\n"
    error = single_error(tmp_path, text)
    assert error.field == field
    assert error.line == (2 if field == "defaults" else 3)
    assert words in error.message


def test_sqs_window_rule_with_batch_from_defaults(tmp_path: Path) -> None:
    text = f"version: 1\ndefaults:\n  batch_size: 20\nfunctions:\n  fn:\n    - event_source_arn: {SQS}\n"
    error = single_error(tmp_path, text)
    assert "must be at least 1" in error.message
    assert error.field.endswith("maximum_batching_window_in_seconds")
    assert error.line in (3, 6)  # the default's line or the mapping's line


# -- identities and functions ----------------------------------------------------------------------


def test_duplicate_identity_in_one_function(tmp_path: Path) -> None:
    text = f"""
    version: 1
    functions:
      fn:
        - event_source_arn: {SQS}
        - event_source_arn: {KINESIS}
          starting_position: LATEST
        - event_source_arn: {SQS}
          batch_size: 5
    """
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (7, "functions.fn[2]")
    assert "duplicate mapping" in error.message
    assert "line 4" in error.message
    assert SQS in error.message


@pytest.mark.parametrize("arn", [KINESIS, CONSUMER, DDB, FIFO])
def test_duplicate_identity_every_kind(tmp_path: Path, arn: str) -> None:
    text = one(arn, "") + f"    - event_source_arn: {arn}\n"
    if arn in STREAMS:
        text += "      starting_position: TRIM_HORIZON\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (line(text, "- event_source_arn", 1), "functions.fn[1]")


def test_stream_and_its_consumer_are_different_sources(tmp_path: Path) -> None:
    text = (
        one(KINESIS, "") + f"    - event_source_arn: {CONSUMER}\n      starting_position: LATEST\n"
    )
    assert len(valid(tmp_path, text).mappings()) == 2


def test_same_source_on_two_functions(tmp_path: Path) -> None:
    text = f"""
    version: 1
    functions:
      a:
        - event_source_arn: {SQS}
      b:
        - event_source_arn: {SQS}
    """
    spec = valid(tmp_path, text)
    assert [m.function for m in spec.mappings()] == ["a", "b"]


def test_name_and_qualified_name_are_distinct(tmp_path: Path) -> None:
    text = f"""
    version: 1
    functions:
      handler:
        - event_source_arn: {SQS}
      handler:live:
        - event_source_arn: {SQS}
      handler:$LATEST:
        - event_source_arn: {SQS}
    """
    spec = valid(tmp_path, text)
    assert list(spec.functions) == ["handler", "handler:live", "handler:$LATEST"]
    assert all(len(ms) == 1 for ms in spec.functions.values())


def test_empty_function_is_managed(tmp_path: Path) -> None:
    spec = valid(tmp_path, "version: 1\nfunctions:\n  retired: []\n")
    assert spec.functions == {"retired": []}


def test_function_managed_by_two_files(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        f"version: 1\nfunctions:\n  a: []\n  shared:\n    - event_source_arn: {SQS}\n",
        "1.yaml",
    )
    second = write(tmp_path, "version: 1\nfunctions:\n  b: []\n  c: []\n  shared: []\n", "2.yaml")
    with pytest.raises(SpecErrors) as info:
        load_spec([first, second], now=NOW)
    (error,) = info.value.errors
    assert (error.file, error.line, error.field) == (str(second), 5, "functions.shared")
    assert str(first) in error.message


def test_different_functions_in_two_files(tmp_path: Path) -> None:
    first = write(
        tmp_path, f"version: 1\nfunctions:\n  a:\n    - event_source_arn: {SQS}\n", "1.yaml"
    )
    second = write(
        tmp_path, f"version: 1\nfunctions:\n  b:\n    - event_source_arn: {SQS}\n", "2.yaml"
    )
    spec = load_spec([first, second], now=NOW)
    assert set(spec.functions) == {"a", "b"}


def test_errors_from_several_files_in_one_run(tmp_path: Path) -> None:
    first = write(tmp_path, one(SQS, "batch_size: 0"), "1.yaml")
    second = write(tmp_path, one(KINESIS, "batch_size: 0"), "2.yaml")
    with pytest.raises(SpecErrors) as info:
        load_spec([first, second], now=NOW)
    assert [(e.file, e.field) for e in info.value.errors] == [
        (str(first), "functions.fn[0].batch_size"),
        (str(second), "functions.fn[0].batch_size"),
    ]


@pytest.mark.parametrize(
    "ref",
    [
        "bad name!",
        "a" * 65,
        "fn:",
        ":live",
        "fn:live:extra",
        "fn:bad qualifier",
        "arn:aws:lambda:us-east-1:123:function:fn",
        "arn:aws:sqs:us-east-1:123456789012:fn",
        "arn:aws:lambda:us-east-1:123456789012:layer:fn",
    ],
)
def test_bad_function_reference(tmp_path: Path, ref: str) -> None:
    text = f"version: 1\nfunctions:\n  {json.dumps(ref)}:\n    - event_source_arn: {SQS}\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (3, f"functions.{ref}")
    assert "not a function reference" in error.message


@pytest.mark.parametrize(
    "ref",
    [
        "fn",
        "fn-name_2",
        "a" * 64,
        "fn:live",
        "fn:7",
        "fn:$LATEST",
        "123456789012:function:fn",
        "arn:aws:lambda:us-east-1:123456789012:function:fn",
        "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
        "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:fn",
    ],
)
def test_good_function_reference(tmp_path: Path, ref: str) -> None:
    # A source in the function's own region (another one is an error: test_cross_region_*).
    source = SQS if "us-gov" not in ref else "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q"
    text = f"version: 1\nfunctions:\n  {json.dumps(ref)}:\n    - event_source_arn: {source}\n"
    assert list(valid(tmp_path, text).functions) == [ref]


# -- document fields -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "field", "words"),
    [
        ("version: 2", "version", "unsupported spec version"),
        ("version: 0", "version", "unsupported spec version"),
        ("version: latest", "version", "unsupported spec version"),
        ("account_id: '12345'", "account_id", "12-digit AWS account id"),
        ("account_id: '1234567890123'", "account_id", "12-digit AWS account id"),
        ("account_id: '12345678901a'", "account_id", "12-digit AWS account id"),
        (
            "account_id: 123456789012",
            "account_id",
            "string",
        ),  # quote it (YAML reads 0123... as octal)
        ("region: mars", "region", "not a region name"),
        ("region: US-EAST-1", "region", "not a region name"),
    ],
)
def test_document_field_errors(tmp_path: Path, head: str, field: str, words: str) -> None:
    text = ("" if head.startswith("version") else "version: 1\n") + f"{head}\nfunctions: {{}}\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (line(text, head), field)
    assert words in error.message


def test_version_missing(tmp_path: Path) -> None:
    error = single_error(tmp_path, "functions: {}\n")
    assert (error.line, error.field) == (1, "version")
    assert "required" in error.message


def test_document_fields_accepted(tmp_path: Path) -> None:
    text = "version: 1\nregion: eu-west-1\naccount_id: '012345678901'\nfunctions: {}\n"
    (spec_file,) = valid(tmp_path, text).files
    assert (spec_file.region, spec_file.account_id) == ("eu-west-1", "012345678901")


# -- every error in one run ------------------------------------------------------------------------

MANY_MISTAKES = f"""
version: 1
account_id: "12345"
defaults:
  batchsize: 5
functions:
  "bad name!":
    - event_source_arn: {SQS}
  orders:
    - event_source_arn: {SQS}
      batch_size: 10001
    - event_source_arn: {SQS}.fifo
      maximum_batching_window_in_seconds: 1
    - event_source_arn: {KINESIS}
      parallelization_factor: 2
    - event_source_arn: {DDB}
      starting_position: AT_TIMESTAMP
    - event_source_arn: {SQS}-2
      starting_position: LATEST
  clicks:
    - event_source_arn: {CONSUMER}
      starting_position: LATEST
      scaling_config: {{maximum_concurrency: 5}}
      destination_config: {{on_success: {{destination: {DLQ}}}}}
"""


def test_all_errors_of_a_file_in_one_run(tmp_path: Path) -> None:
    path, errors = errors_of(tmp_path, MANY_MISTAKES)
    assert where(errors) == [
        (2, "account_id"),
        (4, "defaults.batchsize"),
        (6, "functions.bad name!"),
        (10, "functions.orders[0].batch_size"),
        (12, "functions.orders[1].maximum_batching_window_in_seconds"),
        (13, "functions.orders[2].starting_position"),
        (16, "functions.orders[3].starting_position"),
        (18, "functions.orders[4].starting_position"),
        (22, "functions.clicks[0].scaling_config"),
        (23, "functions.clicks[0].destination_config.on_success"),
    ]
    assert str(SpecErrors(errors)).count(str(path)) == len(errors)


def test_all_errors_of_one_mapping_in_one_run(tmp_path: Path) -> None:
    """A shape mistake does not hide a kind mistake in the same mapping."""
    text = one(SQS, "batchsize: 5\nstarting_position: LATEST\nparallelization_factor: 20")
    _, errors = errors_of(tmp_path, text)
    assert where(errors) == [
        (line(text, "batchsize"), "functions.fn[0].batchsize"),
        (line(text, "starting_position"), "functions.fn[0].starting_position"),
        (line(text, "parallelization_factor"), "functions.fn[0].parallelization_factor"),
    ]


def test_errors_are_sorted_and_printable(tmp_path: Path) -> None:
    path, errors = errors_of(tmp_path, MANY_MISTAKES)
    assert errors == sorted(errors, key=lambda e: (e.file, e.line, e.field))
    assert str(errors[0]).startswith(f"{path}:2: account_id: ")


# -- check_mapping directly ------------------------------------------------------------------------


def test_check_mapping_valid() -> None:
    assert check_mapping({"event_source_arn": SQS, "batch_size": 10}, now=NOW) == []
    assert check_mapping({"event_source_arn": KINESIS, "starting_position": "LATEST"}) == []


def test_check_mapping_reports_several() -> None:
    found = check_mapping(
        {
            "event_source_arn": SQS,
            "starting_position": "LATEST",
            "parallelization_factor": 2,
            "batch_size": 11,
        },
        now=NOW,
    )
    assert sorted(f for f, _ in found) == [
        "maximum_batching_window_in_seconds",
        "parallelization_factor",
        "starting_position",
    ]


def test_check_mapping_future_timestamp_with_now() -> None:
    s = {
        "event_source_arn": KINESIS,
        "starting_position": "AT_TIMESTAMP",
        "starting_position_timestamp": datetime(2025, 6, 2, tzinfo=UTC),
    }
    assert check_mapping(s, now=NOW) == [("starting_position_timestamp", "cannot be in the future")]
    assert check_mapping(s, now=datetime(2025, 6, 3, tzinfo=UTC)) == []


def test_check_mapping_no_source() -> None:
    assert [f for f, _ in check_mapping({"batch_size": 5})] == ["event_source_arn"]


# -- the example at the repo root ------------------------------------------------------------------


def test_example_spec_validates() -> None:
    spec = load_spec([REPO / "mappings.example.yaml"], now=NOW)
    assert set(spec.functions) == {"orders-handler", "clicks-handler:live", "retired-handler"}
    assert spec.functions["retired-handler"] == []
    kinds = sorted(m.kind for m in spec.mappings())
    assert kinds == sorted([Kind.SQS, Kind.SQS_FIFO, Kind.KINESIS, Kind.DYNAMODB])
    (spec_file,) = spec.files
    assert (spec_file.region, spec_file.account_id) == ("us-east-1", "123456789012")
    # defaults.maximum_retry_attempts reaches the streams only
    for mapping in spec.mappings():
        expected = 3 if mapping.kind in (Kind.KINESIS, Kind.DYNAMODB) else None
        assert mapping.settings.get("maximum_retry_attempts") == expected


def test_example_spec_through_a_directory(tmp_path: Path) -> None:
    from esm_reconcile.loader import expand_paths

    (tmp_path / "example.yaml").write_text((REPO / "mappings.example.yaml").read_text())
    spec = load_spec(expand_paths([str(tmp_path)]), now=NOW)
    assert len(spec.mappings()) == 4


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ('{"body": 1}', "body must be an array"),
        ('{"body": []}', "body is an empty array"),
        ('{"body": {"x": {}}}', "body.x is an empty object"),
        ('{"body": null}', "not null"),
    ],
)
def test_filter_pattern_grammar_like_aws(tmp_path: Path, pattern: str, problem: str) -> None:
    """AWS answers "Invalid filter pattern definition." for these; we say why, offline."""
    text = (
        "version: 1\nfunctions:\n  fn:\n"
        "    - event_source_arn: arn:aws:sqs:us-east-1:123456789012:q\n"
        "      filter_criteria:\n        filters:\n"
        f"          - pattern: '{pattern}'\n"
    )
    error = single_error(tmp_path, text)
    assert error.line == 7
    assert error.field == "functions.fn[0].filter_criteria.filters[0].pattern"
    assert problem in error.message


# -- regions and accounts that cannot meet (offline) ----------------------------------------------

WEST_QUEUE = "arn:aws:sqs:us-west-2:123456789012:orders"
WEST_FN = "arn:aws:lambda:us-west-2:123456789012:function:fn"


def test_cross_region_function_arn_in_another_region_than_the_file(tmp_path: Path) -> None:
    text = f"version: 1\nregion: us-east-1\nfunctions:\n  {WEST_FN}:\n    - event_source_arn: {WEST_QUEUE}\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (4, f"functions.{WEST_FN}")
    assert "region us-west-2, but this file's region is us-east-1" in error.message


def test_cross_region_source_in_another_region_than_the_file(tmp_path: Path) -> None:
    text = (
        f"version: 1\nregion: us-east-1\nfunctions:\n  fn:\n    - event_source_arn: {WEST_QUEUE}\n"
    )
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (5, "functions.fn[0].event_source_arn")
    assert error.message.startswith(
        "the source is in region us-west-2, but the function is in us-east-1 (this file's region)"
    )


def test_cross_region_source_in_another_region_than_the_function_arn(tmp_path: Path) -> None:
    # No region in the file: the function ARN says where the function is.
    text = f"version: 1\nfunctions:\n  {WEST_FN}:\n    - event_source_arn: {SQS}\n"
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (4, f"functions.{WEST_FN}[0].event_source_arn")
    assert "region us-east-1, but the function is in us-west-2 (its ARN)" in error.message


def test_cross_region_sources_of_bare_named_functions_must_agree(tmp_path: Path) -> None:
    """Without a region in the file its bare-named functions all go to one region (the command
    line's): two sources in two regions cannot both be in it."""
    text = dedent(
        f"""
        version: 1
        functions:
          a:
            - event_source_arn: {SQS}
          {WEST_FN}:
            - event_source_arn: {WEST_QUEUE}
          b:
            - event_source_arn: {KINESIS}
              starting_position: LATEST
            - event_source_arn: arn:aws:sqs:eu-west-1:123456789012:q
        """
    )
    error = single_error(tmp_path, text)
    assert (error.line, error.field) == (10, "functions.b[1].event_source_arn")
    assert "region eu-west-1, but the source of a (line 4) is in us-east-1" in error.message


def test_cross_region_checks_with_the_region_the_command_line_resolved(tmp_path: Path) -> None:
    """region_errors takes the region a file without `region:` goes to, once resolved."""
    from esm_reconcile.validate import region_errors

    spec = valid(tmp_path, f"version: 1\nfunctions:\n  fn:\n    - event_source_arn: {SQS}\n")
    (spec_file,) = spec.files
    assert region_errors(spec_file) == []
    assert region_errors(spec_file, "us-east-1") == []
    (error,) = region_errors(spec_file, "eu-west-1")
    assert (error.line, error.field) == (4, "functions.fn[0].event_source_arn")
    assert "region us-east-1, but the function is in eu-west-1" in error.message


def test_cross_account_function_arn_against_account_id(tmp_path: Path) -> None:
    fn = "arn:aws:lambda:us-east-1:210987654321:function:fn"
    text = dedent(
        f"""
        version: 1
        account_id: "123456789012"
        functions:
          {fn}:
            - event_source_arn: {SQS}
          "210987654321:function:other": []
        """
    )
    _, errors = errors_of(tmp_path, text)
    assert where(errors) == [(4, f"functions.{fn}"), (6, "functions.210987654321:function:other")]
    assert all(
        "account 210987654321, but this file's account_id is 123456789012" in e.message
        for e in errors
    )


def test_cross_region_what_may_differ(tmp_path: Path) -> None:
    """Sources in other accounts (SQS and Kinesis resource policies, MSK VPC connections) and
    destinations are not region-checked: AWS allows them, or the reference does not say."""
    text = dedent(
        f"""
        version: 1
        region: us-west-2
        account_id: "123456789012"
        functions:
          fn:
            - event_source_arn: arn:aws:sqs:us-west-2:210987654321:shared
          {WEST_FN}:
            - event_source_arn: arn:aws:kinesis:us-west-2:123456789012:stream/s
              starting_position: LATEST
              destination_config: {{on_failure: {{destination: {DLQ}}}}}
        """
    )
    assert len(valid(tmp_path, text).mappings()) == 2


# -- spec_from_loaded: validating files already loaded --------------------------------------------


def test_spec_from_loaded_validates_each_file_and_across_files() -> None:
    from esm_reconcile.loader import load_text
    from esm_reconcile.validate import spec_from_loaded

    good = load_text("a.yaml", f"version: 1\nfunctions:\n  a:\n    - event_source_arn: {SQS}\n")
    spec = spec_from_loaded([good], now=NOW)
    assert [m.function for m in spec.mappings()] == ["a"]
    bad = load_text(
        "b.yaml",
        f"version: 1\nfunctions:\n  b:\n    - event_source_arn: {SQS}\n      batch_size: 0\n",
    )
    rival = load_text("c.yaml", "version: 1\nfunctions:\n  c: []\n  a: []\n")
    with pytest.raises(SpecErrors) as info:
        spec_from_loaded([good, bad, rival], now=NOW)
    assert [(e.file, e.line, e.field) for e in info.value.errors] == [
        ("b.yaml", 5, "functions.b[0].batch_size"),
        ("c.yaml", 4, "functions.a"),  # managed by a.yaml too
    ]
