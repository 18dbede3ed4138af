"""Hostile spec files: alias bombs, deep nesting, huge numbers, values the YAML constructor
cannot read. Each is one clear spec error (file, line, field where there is one), found
quickly and in bounded memory, never a traceback, whichever YAML parser reads the file.

A tab anywhere in a file sends it through PyYAML's pure-Python parser (loader.load_text), so
every case runs twice: as written (libyaml) and with a tab in a trailing comment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import jsonschema
import pytest
import yaml

from esm_reconcile.errors import SpecError, SpecErrors
from esm_reconcile.loader import (
    ALIAS_NODES_FLOOR,
    INT_DIGIT_LIMIT,
    MAX_DEPTH,
    LoadedFile,
    load_file,
    load_text,
)
from esm_reconcile.schema import spec_schema
from esm_reconcile.validate import load_spec, spec_from_loaded
from tests.cli_runner import run_esm, run_esm_process

REPO_ROOT = Path(__file__).resolve().parent.parent
SQS = "arn:aws:sqs:us-east-1:123456789012:orders"
HEAD = (
    f"version: 1\nregion: us-east-1\nfunctions:\n  orders-handler:\n    - event_source_arn: {SQS}\n"
)
PARSERS = ["libyaml", "python"]


def as_parsed_by(parser: str, text: str) -> str:
    """The same YAML, read by libyaml or (a tab in a comment) by the pure-Python parser."""
    if parser == "python":
        return text + "# a tab:\t\n"
    return text


def refused(text: str, name: str = "spec.yaml") -> list[SpecError]:
    with pytest.raises(SpecErrors) as info:
        load_text(name, text)
    return info.value.errors


def alias_bomb(levels: int, fanout: int = 9) -> str:
    """The classic "billion laughs": each level a list of `fanout` aliases of the one below."""
    lines = ["version: 1", "x-a0: &a0 [" + ", ".join(["lol"] * fanout) + "]"]
    for i in range(1, levels):
        lines.append(f"x-a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]")
    lines.append(f"functions: {{f: [{{tags: {{bomb: *a{levels - 1}}}}}]}}")
    return "\n".join(lines) + "\n"


# -- alias bombs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("parser", PARSERS)
def test_alias_bomb_is_refused_naming_the_alias_and_its_line(parser: str) -> None:
    text = as_parsed_by(parser, alias_bomb(10))
    assert len(text.encode()) < 700  # 9^10 = 3.5 billion nodes once expanded
    started = time.perf_counter()
    (error,) = refused(text)
    assert time.perf_counter() - started < 2
    # The first alias whose expansion passes the budget: *a4 (6,643 nodes) used in x-a5.
    assert (error.file, error.line, error.field) == ("spec.yaml", 7, "")
    assert error.message.startswith("alias *a4 expands to 66,430 nodes")
    assert "alias bomb" in error.message and f"{ALIAS_NODES_FLOOR:,}" in error.message


def test_alias_bomb_refusal_is_fast_and_small_in_a_fresh_process(tmp_path: Path) -> None:
    """Peak memory and time of refusing the 10-level bomb, measured in a fresh interpreter
    (ru_maxrss is a process-wide peak). Before the budget, 6 levels took 2.4 s and 245 MB,
    and 10 levels grew past 11 GB."""
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(10), encoding="utf-8")
    probe = textwrap.dedent(
        f"""
        import json, resource, time
        from esm_reconcile.errors import SpecErrors
        from esm_reconcile.loader import load_file
        from esm_reconcile.validate import load_spec
        load_file({str(REPO_ROOT / "mappings.example.yaml")!r})  # warm up: imports, caches
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        try:
            load_spec([{str(path)!r}])
        except SpecErrors as exc:
            message = str(exc)
        seconds = time.perf_counter() - started
        grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(json.dumps({{"seconds": seconds, "grown_kb": grown_kb, "message": message}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    measured = json.loads(result.stdout)
    assert "alias *a4" in measured["message"]
    assert measured["seconds"] < 2, measured
    assert measured["grown_kb"] < 50 * 1024, measured  # ru_maxrss is in KiB on Linux


def test_alias_bomb_refusal_allocates_little() -> None:
    text = alias_bomb(10)
    tracemalloc.start()
    try:
        refused(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, peak


def test_alias_bomb_made_of_merge_keys_is_refused() -> None:
    """`<<: [*a, *a, ...]` expands like a list of aliases (and PyYAML's flatten_mapping would
    copy every merged pair): counted the same way."""
    lines = ["version: 1", "x-m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}"]
    for i in range(1, 10):
        lines.append(f"x-m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]}")
    lines.append("functions: {f: [{<<: *m9}]}")
    started = time.perf_counter()
    (error,) = refused("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 2
    assert error.message.startswith("alias *m") and "alias bomb" in error.message


def test_an_alias_inside_the_node_it_names_is_refused() -> None:
    text = "version: 1\nfunctions: &loop {f: [*loop]}\n"
    (error,) = refused(text)
    assert (error.line, error.field) == (2, "")
    assert error.message == "alias *loop is inside the node it names (a cycle)"


@pytest.mark.parametrize("parser", PARSERS)
def test_merge_anchor_used_by_hundreds_of_mappings_loads(parser: str) -> None:
    lines = [
        "version: 1",
        "region: us-east-1",
        "x-common: &common",
        "  batch_size: 20",
        "  maximum_batching_window_in_seconds: 5",
        "  function_response_types: [ReportBatchItemFailures]",
        "  scaling_config: {maximum_concurrency: 50}",
        "x-filters: &filters",
        "  filters: [{pattern: {body: {kind: [order, refund], amount: [{numeric: ['>', 0]}]}}}]",
        "functions:",
    ]
    for i in range(400):
        lines += [
            f"  fn-{i}:",
            "    - <<: *common",
            f"      event_source_arn: arn:aws:sqs:us-east-1:123456789012:q-{i}",
            "      filter_criteria: *filters",
        ]
    text = as_parsed_by(parser, "\n".join(lines) + "\n")
    spec = spec_from_loaded([load_text("many.yaml", text)])
    assert len(spec.mappings()) == 400
    first = spec.functions["fn-0"][0].settings
    assert first["batch_size"] == 20 and first["filter_criteria"]["filters"][0]["pattern"]


def test_aliases_may_add_nodes_in_proportion_to_a_big_file() -> None:
    """Past the floor, the budget grows with the file: 10,000 mappings merging an 11-node
    anchor add 110,000 nodes, more than the floor, and still load."""
    lines = ["version: 1", "x-common: &common {a: 1, b: 2, c: 3, d: 4, e: 5}", "functions:"]
    lines += [f"  fn-{i}: [{{<<: *common, z: {i}}}]" for i in range(10_000)]
    loaded = load_text("big.yaml", "\n".join(lines) + "\n")
    assert loaded.data["functions"]["fn-9999"] == [
        {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "z": 9999}
    ]


def test_a_small_file_may_use_aliases_up_to_the_floor() -> None:
    # An anchor of 1 + 99 nodes used 1,000 times: 99,000 nodes added, under the floor.
    anchor = "[" + ", ".join(["x"] * 99) + "]"
    text = f"x-a: &a {anchor}\nb: [" + ", ".join(["*a"] * 1000) + "]\n"
    assert len(load_text("f.yaml", text).data["b"]) == 1000
    more = f"x-a: &a {anchor}\nb: [" + ", ".join(["*a"] * 1100) + "]\n"
    (error,) = refused(more)
    assert error.message.startswith("alias *a expands to 100 nodes")


# -- deep nesting --------------------------------------------------------------------------------

DEEP = 3000
NESTINGS = {
    # what: (text, line of the error)
    "functions flow list": ("version: 1\nfunctions: " + "[" * DEEP + "]" * DEEP + "\n", 2),
    "functions flow mapping": (
        "version: 1\nfunctions: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n",
        2,
    ),
    "block lists on one line": ("version: 1\nfunctions:\n  f:\n    " + "- " * DEEP + "1\n", 4),
    "block lists, one per line": (
        "version: 1\nfunctions:\n  f:\n"
        + "".join("  " * (2 + i) + "-\n" for i in range(150))
        + "  " * 152
        + "1\n",
        102,  # the 101st level: the document, functions, f, then lists from line 4
    ),
    "filter pattern, flow": (
        HEAD
        + "      filter_criteria: {filters: [{pattern: "
        + "{a: " * DEEP
        + "[1]"
        + "}" * DEEP
        + "}]}\n",
        6,
    ),
    "filter pattern, block mappings": (
        HEAD
        + "      filter_criteria:\n        filters:\n          - pattern:\n"
        + "".join("  " * (7 + i) + "a:\n" for i in range(150))
        + "  " * 157
        + "- 1\n",
        102,  # the pattern's mapping is level 8, on line 9
    ),
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("what", list(NESTINGS))
def test_deep_nesting_is_refused_at_its_line(what: str, parser: str) -> None:
    text, line = NESTINGS[what]
    started = time.perf_counter()
    (error,) = refused(as_parsed_by(parser, text))
    assert time.perf_counter() - started < 5
    assert (error.line, error.field) == (line, "")
    assert error.message == f"nested deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize("parser", PARSERS)
def test_nesting_up_to_the_limit_loads(parser: str) -> None:
    # The document's mapping is level 1, `a:`'s list level 2, ... the innermost list MAX_DEPTH.
    inner = MAX_DEPTH - 1
    text = "a: " + "[" * inner + "1" + "]" * inner + "\n"
    data = load_text("ok.yaml", as_parsed_by(parser, text)).data
    assert data["a"][0][0][0] is not None
    one_more = "a: " + "[" * (inner + 1) + "1" + "]" * (inner + 1) + "\n"
    (error,) = refused(as_parsed_by(parser, one_more))
    assert error.message == f"nested deeper than {MAX_DEPTH} levels"


def test_an_alias_cannot_nest_past_the_limit() -> None:
    """Each level is fine as written; the alias puts 60 levels inside 50."""
    deep = "[" * 60 + "1" + "]" * 60
    text = f"x-deep: &deep {deep}\nb: {'[' * 49}*deep{']' * 49}\n"
    (error,) = refused(text)
    assert error.line == 2
    assert error.message == f"alias *deep makes this nested deeper than {MAX_DEPTH} levels"


def test_nesting_that_crashed_libyaml_is_refused_in_a_fresh_process(tmp_path: Path) -> None:
    """PyYAML's libyaml composer recurses in C: 100,000 levels killed the process (SIGSEGV)."""
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\nfunctions: " + "[" * 200_000 + "\n", encoding="utf-8")
    result = run_esm_process("validate", "-f", path, timeout=120)
    assert result.code == 1, result
    assert f"{path}:2: nested deeper than {MAX_DEPTH} levels" in result.err


def test_a_deep_json_string_pattern_is_refused() -> None:
    # 4096 characters of JSON nest 800 levels: past what the checks may recurse into.
    pattern = '{"":' * 800 + "[1]" + "}" * 800
    text = HEAD + f"      filter_criteria: {{filters: [{{pattern: '{pattern}'}}]}}\n"
    (error,) = spec_errors(text)
    assert (error.line, error.field) == (
        6,
        "functions.orders-handler[0].filter_criteria.filters[0].pattern",
    )
    assert error.message == f"pattern is nested deeper than {MAX_DEPTH} levels"


def spec_errors(text: str, name: str = "spec.yaml") -> list[SpecError]:
    with pytest.raises(SpecErrors) as info:
        spec_from_loaded([load_text(name, text)])
    return info.value.errors


# -- huge numbers and values the constructor cannot read ----------------------------------------


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "value",
    ["9" * 5000, "-" + "9" * 5000, "0x" + "f" * 4000, "0b" + "1" * 15000],
    ids=["5000 digits", "negative", "hex", "binary"],
)
def test_huge_integer_is_refused_at_its_field(parser: str, value: str) -> None:
    text = as_parsed_by(parser, HEAD + f"      batch_size: {value}\n")
    (error,) = refused(text)
    assert (error.line, error.field) == (6, "functions.orders-handler[0].batch_size")
    assert error.message == f"number too large (more than {INT_DIGIT_LIMIT} digits)"


def test_huge_integer_as_a_key_is_refused() -> None:
    (error,) = refused("version: 1\n? " + "9" * 5000 + "\n: 1\n")
    assert error.line == 2
    assert error.message.startswith("number too large")


def test_big_integers_python_can_print_are_left_to_the_range_checks() -> None:
    (error,) = spec_errors(HEAD + "      batch_size: " + "9" * 4000 + "\n")
    assert error.field == "functions.orders-handler[0].batch_size"
    assert error.message == "Input should be less than or equal to 10000"


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1.0e+999", "1.5"])
def test_floats_in_integer_fields_are_type_errors(value: str) -> None:
    (error,) = spec_errors(HEAD + f"      batch_size: {value}\n")
    assert (error.line, error.field) == (6, "functions.orders-handler[0].batch_size")
    assert error.message == "Input should be a valid integer"


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("{a: [.nan]}", "a holds nan, which is not a JSON number"),
        ("{a: [{numeric: ['>', .inf]}]}", "a.numeric holds inf, which is not a JSON number"),
        ("{a: [-.inf]}", "a holds -inf, which is not a JSON number"),
        ("{a: [2024-05-01]}", "a holds a date, which is not JSON (quote it)"),
        ("{a: [2024-05-01 10:00:00]}", "a holds a datetime, which is not JSON (quote it)"),
        ("{a: [!!binary aGk=]}", "a holds a bytes, which is not JSON (quote it)"),
        ("{a: .nan}", "a must be an array of values or matchers, not a float"),
        ("'{\"a\": [NaN]}'", "NaN is not a JSON number"),
        ("'{\"a\": [Infinity]}'", "Infinity is not a JSON number"),
        ("'{\"a\": [1e999]}'", "a holds inf, which is not a JSON number"),
    ],
)
def test_filter_patterns_hold_only_json(pattern: str, words: str) -> None:
    (error,) = spec_errors(HEAD + f"      filter_criteria: {{filters: [{{pattern: {pattern}}}]}}\n")
    assert (error.line, error.field) == (
        6,
        "functions.orders-handler[0].filter_criteria.filters[0].pattern",
    )
    assert words in error.message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2024-13-01", "'2024-13-01' is not a valid date/time (month must be in 1..12)"),
        ("0000-01-01", "'0000-01-01' is not a valid date/time (year 0 is out of range)"),
        ("2024-01-01 00:00:00 +25:00", "is not a valid date/time (offset must be"),
        ("!!timestamp soon", "'soon' is not a valid date/time"),
        ("!!bool maybe", "'maybe' is not a valid bool"),
        ("!!int ''", "'' is not a valid int"),
        ("!!int twelve", "'twelve' is not a valid int"),
        ("!!float ''", "'' is not a valid float"),
        ("!!float abc", "'abc' is not a valid float"),
    ],
)
@pytest.mark.parametrize("parser", PARSERS)
def test_values_the_constructor_cannot_read_are_errors(parser: str, value: str, words: str) -> None:
    text = as_parsed_by(parser, HEAD + f"      starting_position_timestamp: {value}\n")
    (error,) = refused(text)
    assert (error.line, error.field) == (
        6,
        "functions.orders-handler[0].starting_position_timestamp",
    )
    assert words in error.message


def test_an_unreadable_value_is_shown_short() -> None:
    (error,) = refused("a: !!int " + "z" * 500 + "\n")
    assert error.message == f"{'z' * 37!r}... is not a valid int"


# -- one line per error --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ['"batch\\nsize"', '"a\\rb"', '"a\\u2028b"', '"a\\x85b"', '"tab\\there"', '"bell\\a"']
)
def test_a_key_with_line_breaks_or_control_characters_is_one_line(key: str) -> None:
    errors = spec_errors(HEAD + f"      {key}: 5\n")
    assert errors
    for error in errors:
        assert len(str(error).splitlines()) == 1, str(error)
        assert error.line == 6


# -- x- extension keys ---------------------------------------------------------------------------

EXTENSIONS = """\
version: 1
region: us-east-1
x-common: &common
  batch_size: 5
  maximum_batching_window_in_seconds: 2
x-queue: &queue arn:aws:sqs:us-east-1:123456789012:orders
x-anything: [1, {two: 3}, null]
functions:
  orders-handler:
    - <<: *common
      event_source_arn: *queue
    - <<: *common
      batch_size: 7
      event_source_arn: arn:aws:sqs:us-east-1:123456789012:refunds
"""


def test_x_keys_hold_anchors_and_are_ignored() -> None:
    spec = spec_from_loaded([load_text("x.yaml", EXTENSIONS)])
    first, second = spec.functions["orders-handler"]
    assert first.settings == {
        "batch_size": 5,
        "maximum_batching_window_in_seconds": 2,
        "event_source_arn": SQS,
    }
    assert second.settings["batch_size"] == 7


@pytest.mark.parametrize("key", ["X-common", "x_common", "_common", "common"])
def test_other_unknown_top_level_keys_stay_errors(key: str) -> None:
    (error,) = spec_errors(EXTENSIONS.replace("x-anything", key))
    assert (error.line, error.field, error.message) == (7, key, "unknown field")


def test_x_keys_are_not_ignored_inside_a_mapping() -> None:
    (error,) = spec_errors(HEAD + "      x-note: hello\n")
    assert (error.field, error.message) == ("functions.orders-handler[0].x-note", "unknown field")


def test_the_json_schema_allows_x_keys_and_nothing_else() -> None:
    validator = jsonschema.Draft7Validator(spec_schema())
    document = yaml.safe_load(EXTENSIONS)
    assert list(validator.iter_errors(document)) == []
    document["X-common"] = {}
    (error,) = validator.iter_errors(document)
    assert "X-common" in error.message


# -- the CLI: one line per error, exit 1 ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        alias_bomb(10),
        NESTINGS["functions flow list"][0],
        HEAD + "      batch_size: " + "9" * 5000 + "\n",
        "version: 1\nfunctions: &loop {f: [*loop]}\n",
    ],
    ids=["alias bomb", "deep", "huge number", "cycle"],
)
def test_cli_refuses_hostile_specs_in_one_line_each(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_esm("validate", "-f", path)
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0].startswith(f"{path}:") and lines[-1].endswith("nothing was changed.")
    assert len(lines) == 2, lines


def test_load_file_and_load_text_agree(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(10), encoding="utf-8")
    with pytest.raises(SpecErrors) as from_file:
        load_file(path)
    with pytest.raises(SpecErrors) as from_text:
        load_text(str(path), alias_bomb(10))
    assert from_file.value.errors == from_text.value.errors
    with pytest.raises(SpecErrors) as from_spec:
        load_spec([path])
    assert from_spec.value.errors == from_file.value.errors


def test_python_parser_gives_the_same_data_and_lines_as_libyaml() -> None:
    """Files with tabs are composed from already-checked events (one pure-Python parse):
    the result must be what libyaml's composer gives."""
    for path in [
        REPO_ROOT / "mappings.example.yaml",
        *sorted((REPO_ROOT / "examples").glob("*.yaml")),
    ]:
        text = path.read_text(encoding="utf-8")
        libyaml = load_text(str(path), text)
        python = load_text(str(path), as_parsed_by("python", text))
        assert isinstance(python, LoadedFile)
        assert (python.data, python.lines) == (libyaml.data, libyaml.lines), path


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a: *nope\nb: [\n", 1, "found undefined alias 'nope'"),  # met before the syntax error
        ("a: 1\n---\nb: *x\n", 2, "expected a single document in the stream (line 1), but"),
        ("a: &x 1\nb: &x 2\n", 2, "duplicate anchor 'x'; first occurrence (line 1), second"),
    ],
)
def test_composer_errors_keep_their_order_and_words(
    parser: str, text: str, line: int, words: str
) -> None:
    (error,) = refused(as_parsed_by(parser, text))
    assert error.line == line
    assert words in error.message


# -- found by fuzzing (tests/test_fuzz.py) -------------------------------------------------------


@pytest.mark.parametrize("parser", PARSERS)
def test_a_character_yaml_refuses_is_one_line_at_its_line(parser: str) -> None:
    """PyYAML words it over two lines, with an offset instead of a line."""
    (error,) = refused(as_parsed_by(parser, "version: 1\nfunctions:\n  f: [\x1f]\n"))
    assert error.line == 3
    assert error.message.startswith("invalid YAML: unacceptable character #x001f: ")
    assert len(str(error).splitlines()) == 1


@pytest.mark.parametrize("name", ['"a\\nb"', '"fn\\n"', '"fn\\t"', '" fn"'])
def test_a_function_name_with_a_line_break_is_refused_in_one_line(name: str) -> None:
    # `fn\n` passed functions._REF (its `$` also matches before a final newline).
    (error,) = spec_errors(f"version: 1\nfunctions:\n  {name}:\n    - event_source_arn: {SQS}\n")
    assert error.line == 3
    assert error.message.startswith("not a function reference")
    assert len(str(error).splitlines()) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_source_arn", '"arn:aws:sqs:us-east-1:123456789012:orders\\n"'),
        ("topics", '["orders\\n"]'),
        ("destination_config", '{on_failure: {destination: "kafka://dlq\\n"}}'),
        ("kms_key_arn", '"arn:aws:kms:us-east-1:123456789012:key/k\\n"'),
    ],
)
def test_a_trailing_newline_does_not_satisfy_an_aws_pattern(field: str, value: str) -> None:
    """Python's `$` matches before a final newline: "…:orders\\n" passed as an ARN."""
    source = "" if field == "event_source_arn" else f"event_source_arn: {SQS}, "
    text = f"version: 1\nfunctions:\n  f:\n    - {{{source}{field}: {value}}}\n"
    (error,) = spec_errors(text)
    assert error.line == 4 and error.field.startswith(f"functions.f[0].{field}")
    assert "\\n'" in error.message  # the value, shown with its newline escaped


@pytest.mark.parametrize("head", ['region: "us-east-1\\n"', 'account_id: "123456789012\\n"'])
def test_a_trailing_newline_in_region_or_account_is_refused(head: str) -> None:
    (error,) = spec_errors(f"version: 1\n{head}\nfunctions: {{}}\n")
    assert error.line == 2 and error.field == head.split(":")[0]


def test_a_pattern_key_with_a_line_break_is_shown_escaped() -> None:
    text = HEAD + '      filter_criteria: {filters: [{pattern: {"a\\u2028b": 1}}]}\n'
    (error,) = spec_errors(text)
    assert "a\\u2028b must be an array" in error.message
    assert len(str(error).splitlines()) == 1
