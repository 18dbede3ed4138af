"""Property-based fuzzing of load → validate: whatever the input, the only outcomes are a valid
Spec or SpecErrors (one line per error), never another exception.

Inputs: arbitrary YAML-ish text, arbitrary nested data dumped to YAML (huge numbers, nan, inf,
unicode, control characters, odd keys), spec-shaped documents with wrong values in real
fields, and mutations of the example specs (a key deleted, a value replaced by one of another
type, an item duplicated, a value nested, the text truncated or spliced with random bytes).
A valid spec must also normalize (normalize.comparable, to_request) without error.

Derandomized with no example database, so CI runs the same examples every time; the budget is
300 examples per property (about 10 s in all). Raise FUZZ_EXAMPLES to search longer locally,
e.g. `FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py`.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esm_reconcile.errors import SpecErrors
from esm_reconcile.loader import load_text
from esm_reconcile.normalize import comparable, to_request
from esm_reconcile.spec import field_paths
from esm_reconcile.validate import Spec, load_spec, spec_from_loaded

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml")) + [REPO_ROOT / "mappings.example.yaml"]
EXAMPLE_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in EXAMPLES}
NOW = datetime(2026, 1, 1, tzinfo=UTC)

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the property --------------------------------------------------------------------------------


def _checked(outcome: Callable[[], Spec]) -> Spec | SpecErrors:
    """Run one load → validate: a Spec, or SpecErrors whose every error is one line."""
    try:
        spec = outcome()
    except SpecErrors as exc:
        assert exc.errors, "SpecErrors without errors"
        for error in exc.errors:
            shown = str(error)
            assert len(shown.splitlines()) == 1 and "\n" not in shown, repr(shown)
            assert error.line >= 0
        return exc
    for mapping in spec.mappings():
        # What plan does next with a valid spec: the comparable form and the API request.
        comparable(mapping.kind, mapping.settings)
        to_request(mapping.settings)
    return spec


def check_text(text: str) -> Spec | SpecErrors:
    return _checked(lambda: spec_from_loaded([load_text("fuzz.yaml", text)], now=NOW))


@pytest.fixture(scope="module")
def fuzz_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file, rewritten by each example (module scope: hypothesis runs many per test)."""
    return tmp_path_factory.mktemp("fuzz") / "fuzz.yaml"


def check_file(path: Path, content: bytes) -> Spec | SpecErrors:
    """The same through a real file (load_spec), which also decodes the bytes."""
    path.write_bytes(content)
    return _checked(lambda: load_spec([path], now=NOW))


# -- strategies ----------------------------------------------------------------------------------

huge_ints = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**4000), max_value=10**4000),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**300, 0, -1, 10001, 604801]),
)
odd_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 5e-324, -0.0]),
)
odd_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\nb",
            "\u2028",
            "\x85",
            "\ufeff",
            "*a",
            "&a",
            "<<",
            "~",
            "null",
            "yes",
            "2024-13-01",
            "0x" + "f" * 30,
            "arn:aws:sqs:us-east-1:123456789012:q",
            "arn:aws:kinesis:us-east-1:123456789012:stream/s",
            "arn:aws:sqs:us-west-2:123456789012:q.fifo",
            "arn:aws:lambda:eu-west-1:123456789012:function:f",
            "arn:aws:kafka:us-east-1:123456789012:cluster/c/1",
            "arn:aws:mq:us-east-1:123456789012:broker:b:1",
            "arn:aws:rds:us-east-1:123456789012:cluster:d",
            "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1",
            "kafka://topic",
            "b-1.example.com:9092",
            "LATEST",
            "AT_TIMESTAMP",
            "TRIM_HORIZON",
            "ReportBatchItemFailures",
            "BASIC_AUTH",
            "VIRTUAL_HOST",
            "IAM_AUTH",
            '{"a": [1]}',
            '{"a": [NaN]}',
            "[1]",
            "{",
        ]
    ),
)
scalars = st.one_of(st.none(), st.booleans(), huge_ints, odd_floats, odd_text)
FIELD_NAMES = sorted({p.rsplit(".", 1)[-1] for p in field_paths()} | {"ignore_changes"})
keys = st.one_of(
    st.sampled_from(FIELD_NAMES),
    st.sampled_from(["version", "functions", "defaults", "region", "x-a", "X-a", "<<", "pattern"]),
    odd_text,
)
nested = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=25,
)
mappings = st.dictionaries(st.sampled_from(FIELD_NAMES), nested, max_size=6).map(
    lambda m: {"event_source_arn": "arn:aws:sqs:us-east-1:123456789012:q", **m}
)
spec_documents = st.fixed_dictionaries(
    {"version": st.one_of(st.just(1), scalars)},
    optional={
        "region": st.one_of(st.sampled_from(["us-east-1", "eu-west-1"]), scalars),
        "account_id": st.one_of(st.just("123456789012"), scalars),
        "defaults": st.one_of(mappings, nested),
        "functions": st.one_of(
            st.dictionaries(
                st.one_of(
                    st.sampled_from(
                        ["f", "f:live", "arn:aws:lambda:us-east-1:123456789012:function:f"]
                    ),
                    odd_text,
                ),
                st.one_of(st.lists(mappings, max_size=3), nested),
                max_size=3,
            ),
            nested,
        ),
        "x-anchors": nested,
    },
)


def dump(data: Any) -> str:
    """YAML for data, or its repr when PyYAML cannot dump it (ints past Python's digit limit)."""
    try:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    except (ValueError, yaml.YAMLError):
        return repr(data)


YAML_TOKENS = [
    "version: 1\n",
    "functions:\n",
    "  f:\n",
    "    - ",
    "event_source_arn: arn:aws:sqs:us-east-1:123456789012:q\n",
    "batch_size: ",
    "filter_criteria: {filters: [{pattern: ",
    "}]}\n",
    "&a ",
    "&b ",
    "*a",
    "*b",
    "<<: ",
    "<<: [*a, *b]\n",
    "- ",
    ": ",
    "\n",
    "  ",
    "    ",
    "\t",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "? ",
    "'",
    '"',
    "#",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!pairs ",
    "!!timestamp ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!str ",
    "!!null ",
    "!!map ",
    "!!seq ",
    "!custom ",
    "2024-13-01",
    "2024-01-01T00:00:00Z",
    ".nan",
    ".inf",
    "1.0e+999",
    "0x" + "f" * 5000,
    "9" * 5000,
    "x-common",
    "a",
    "1",
    "~",
    "\x07",
    "\u2028",
    "\ufeff",
]
yaml_soup = st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join)


# Per field: values that fit it (so some documents are valid), and the others are the wrong type.
MERGE_VALUES = {
    "event_source_arn": [
        "arn:aws:sqs:us-east-1:123456789012:q",
        "arn:aws:sqs:us-east-1:123456789012:r",
        "arn:aws:kinesis:us-east-1:123456789012:stream/s",
    ],
    "batch_size": ["1", "20", "10000"],
    "enabled": ["true", "false"],
    "maximum_batching_window_in_seconds": ["0", "5"],
    "filter_criteria": ["{filters: [{pattern: {a: [1]}}]}", "{filters: []}"],
    "tags": ["{k: v}", "{}"],
}
MERGE_FIELDS = sorted(MERGE_VALUES)
ANY_VALUE = sorted({v for values in MERGE_VALUES.values() for v in values} | {"~", "[]"})


@st.composite
def flow_mapping(draw: st.DrawFn, anchors: list[str], mapping: bool = False) -> str:
    """A flow mapping of spec fields whose entries may merge (`<<`) or alias earlier anchors
    (and sometimes one that does not exist); a `mapping` mostly names its source."""
    # Anchors defined above; now and then one that is not.
    known = [*anchors * 8, "nope"]
    # Mostly each field once (a field written twice is only the duplicate-key error).
    fields = draw(st.lists(st.sampled_from(MERGE_FIELDS), max_size=4, unique=True))
    if mapping and "event_source_arn" not in fields and draw(st.integers(0, 3)) > 0:
        fields.append("event_source_arn")  # most mappings name their source
    entries = []
    for field in fields:
        kind = draw(st.sampled_from(["value", "alias"] if anchors else ["value"]))
        if kind == "value":
            fitting = draw(st.integers(0, 3)) > 0
            value = draw(st.sampled_from(MERGE_VALUES[field] if fitting else ANY_VALUE))
            entries.append(f"{field}: {value}")
        else:
            entries.append(f"{field}: *{draw(st.sampled_from(known))}")
    if anchors and draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(known), min_size=1, max_size=3))
        merge = f"*{names[0]}" if len(names) == 1 else "[" + ", ".join(f"*{n}" for n in names) + "]"
        entries.insert(draw(st.integers(0, len(entries))), f"<<: {merge}")
    return "{" + ", ".join(entries) + "}"


@st.composite
def merge_documents(draw: st.DrawFn) -> str:
    lines = ["version: 1", "region: us-east-1"]
    anchors: list[str] = []
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        lines.append(f"x-{i}: &x{i} {draw(flow_mapping(anchors))}")
        anchors.append(f"x{i}")
    lines += ["functions:", "  f:"]
    for i in range(draw(st.integers(min_value=1, max_value=3))):
        anchored = draw(st.booleans())
        anchor = f"&m{i} " if anchored else ""
        lines.append(f"    - {anchor}{draw(flow_mapping(anchors, mapping=True))}")
        if anchored:
            anchors.append(f"m{i}")
    return "\n".join(lines) + "\n"


# -- arbitrary input -----------------------------------------------------------------------------


@FUZZ
@given(merge_documents())
def test_anchors_aliases_and_merge_keys(text: str) -> None:
    check_text(text)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check_text(text)


@FUZZ
@given(yaml_soup)
def test_yaml_token_soup(text: str) -> None:
    check_text(text)


@FUZZ
@given(nested)
def test_arbitrary_nested_data(data: Any) -> None:
    check_text(dump(data))


@FUZZ
@given(spec_documents)
def test_spec_shaped_documents_with_wrong_values(document: dict[str, Any]) -> None:
    check_text(dump(document))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_in_a_file(fuzz_path: Path, content: bytes) -> None:
    check_file(fuzz_path, content)


# -- mutations of the example specs --------------------------------------------------------------
# They start from valid specs (test_examples.py::test_example_validates), so a mutation is what
# makes a case invalid.

EXAMPLE_DATA = {name: yaml.safe_load(text) for name, text in EXAMPLE_TEXTS.items()}


def _containers(node: Any, out: list[Any]) -> list[Any]:
    """Every dict and list in node, node first."""
    if isinstance(node, dict | list):
        out.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, out)
    return out


def _mutate(data: Any, draw: st.DrawFn) -> Any:
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        containers = _containers(data, [])
        if not containers:
            return draw(nested)
        target = draw(st.sampled_from(containers))
        slots = list(target) if isinstance(target, dict) else list(range(len(target)))
        if not slots:
            continue
        slot = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["delete", "replace", "duplicate", "nest", "rename"]))
        if action == "delete":
            del target[slot]
        elif action == "replace":
            target[slot] = draw(nested)
        elif action == "duplicate" and isinstance(target, list):
            target.insert(slot, copy.deepcopy(target[slot]))
        elif action == "nest":
            target[slot] = draw(st.sampled_from([[target[slot]], {"a": target[slot]}]))
        elif action == "rename" and isinstance(target, dict):
            target[draw(keys)] = target.pop(slot)
    return data


@FUZZ
@given(st.sampled_from(sorted(EXAMPLE_DATA)), st.data())
def test_structural_mutations_of_the_examples(name: str, data: st.DataObject) -> None:
    mutated = _mutate(EXAMPLE_DATA[name], data.draw)
    check_text(dump(mutated))


@FUZZ
@given(st.sampled_from(sorted(EXAMPLE_TEXTS)), st.data())
def test_text_mutations_of_the_examples(fuzz_path: Path, name: str, data: st.DataObject) -> None:
    content = EXAMPLE_TEXTS[name].encode("utf-8")
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        at = data.draw(st.integers(min_value=0, max_value=len(content)))
        action = data.draw(st.sampled_from(["truncate", "insert", "delete", "replace"]))
        if action == "truncate":
            content = content[:at]
        elif action == "insert":
            content = content[:at] + data.draw(st.binary(min_size=1, max_size=8)) + content[at:]
        elif action == "delete":
            content = content[:at] + content[at + data.draw(st.integers(1, 40)) :]
        else:
            token = data.draw(st.sampled_from(YAML_TOKENS)).encode()
            content = content[:at] + token + content[at + len(token) :]
    check_file(fuzz_path, content)
