"""loader.py: YAML with the line of every key and item, duplicate keys, clean errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from esm_reconcile.errors import SpecError, SpecErrors
from esm_reconcile.loader import expand_paths, load_file, load_text
from esm_reconcile.validate import load_spec
from tests.cli_runner import run_esm


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_errors(path: Path) -> list[SpecError]:
    with pytest.raises(SpecErrors) as info:
        load_file(path)
    return info.value.errors


# -- line numbers ----------------------------------------------------------------------------------

SPEC = """
# a comment
version: 1
functions:
  orders-handler:
    - event_source_arn: arn:aws:sqs:us-east-1:123456789012:orders
      batch_size: 50
      scaling_config:
        maximum_concurrency: 100
      function_response_types:
        - ReportBatchItemFailures

    - event_source_arn: arn:aws:sqs:us-east-1:123456789012:other
      filter_criteria: {filters: [{pattern: {a: [1]}}]}
  empty: []
"""


def test_data_and_lines_of_keys(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path, SPEC))
    assert loaded.data["version"] == 1
    assert loaded.data["functions"]["orders-handler"][0]["batch_size"] == 50
    assert loaded.data["functions"]["empty"] == []
    fn = ("functions", "orders-handler")
    assert loaded.lines[("version",)] == 2
    assert loaded.lines[("functions",)] == 3
    assert loaded.lines[fn] == 4
    assert loaded.lines[(*fn, 0, "event_source_arn")] == 5
    assert loaded.lines[(*fn, 0, "batch_size")] == 6
    assert loaded.lines[(*fn, 0, "scaling_config")] == 7
    assert loaded.lines[(*fn, 0, "scaling_config", "maximum_concurrency")] == 8
    assert loaded.lines[("functions", "empty")] == 14


def test_lines_of_list_items(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path, SPEC))
    fn = ("functions", "orders-handler")
    assert loaded.lines[(*fn, 0)] == 5
    assert loaded.lines[(*fn, 1)] == 12  # after the blank line
    assert loaded.lines[(*fn, 0, "function_response_types", 0)] == 10
    # flow style: everything on one line
    assert loaded.lines[(*fn, 1, "filter_criteria", "filters", 0, "pattern")] == 13


def test_line_of_falls_back_to_deepest_known_prefix(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path, SPEC))
    fn = ("functions", "orders-handler")
    assert loaded.line_of((*fn, 0, "batch_size")) == 6
    assert loaded.line_of((*fn, 0, "no_such_key")) == 5  # the mapping item
    assert loaded.line_of((*fn, 0, "scaling_config", "nope", 3)) == 7
    assert loaded.line_of(("nothing",)) == 2  # the document itself starts after the comment


def test_non_string_keys_keep_their_text_or_are_refused(tmp_path: Path) -> None:
    """`1` reads as 1 and means "1"; `true`, `on` and `0x10` read as True and 16, which is not
    what was written: a tag key or function name would silently become another name."""
    loaded = load_file(write(tmp_path, "1: a\n"))
    assert loaded.data == {"1": "a"}
    with pytest.raises(SpecErrors) as refused:
        load_file(write(tmp_path, "true: b\n0x10: c\n"))
    assert [e.message for e in refused.value.errors] == [
        "the key true reads as True in YAML; quote it",
        "the key 0x10 reads as 16 in YAML; quote it",
    ]


def test_unquoted_timestamps_and_json_strings_are_kept(tmp_path: Path) -> None:
    loaded = load_file(
        write(
            tmp_path,
            """
            ts: 2024-01-01T00:00:00Z
            pattern: '{"a": [1]}'
            """,
        )
    )
    assert loaded.data["ts"].year == 2024
    assert loaded.data["pattern"] == '{"a": [1]}'


def test_merge_keys_are_resolved(tmp_path: Path) -> None:
    loaded = load_file(
        write(
            tmp_path,
            """
            base: &base
              batch_size: 5
            item:
              <<: *base
              enabled: true
            """,
        )
    )
    assert loaded.data["item"] == {"batch_size": 5, "enabled": True}


def test_merge_key_can_be_overridden(tmp_path: Path) -> None:
    """YAML merge keys: an explicit key overrides the merged one; that is not a duplicate."""
    loaded = load_file(
        write(
            tmp_path,
            """
            base: &base
              batch_size: 5
              enabled: true
            item:
              <<: *base
              batch_size: 7
            """,
        )
    )
    assert loaded.data["item"] == {"batch_size": 7, "enabled": True}
    assert loaded.lines[("item", "batch_size")] == 6


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\nfunctions: {}\n")
    loaded = load_file(path)
    assert loaded.data == {"version": 1, "functions": {}}
    assert loaded.lines[("functions",)] == 2


# -- duplicate keys --------------------------------------------------------------------------------


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        functions: {}
        version: 1
        """,
    )
    (error,) = load_errors(path)
    assert (error.file, error.line, error.field) == (str(path), 3, "version")
    assert "duplicate key" in error.message
    assert "line 1" in error.message  # names the first line too


def test_duplicate_nested_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        functions:
          f:
            - event_source_arn: arn:aws:sqs:us-east-1:123456789012:q
              batch_size: 1
              enabled: true
              batch_size: 2
        """,
    )
    (error,) = load_errors(path)
    assert (error.file, error.line, error.field) == (str(path), 7, "functions.f[0].batch_size")
    assert "duplicate key" in error.message
    assert "line 5" in error.message


def test_duplicate_function_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        functions:
          f: []
          g: []
          f: []
        """,
    )
    (error,) = load_errors(path)
    assert (error.line, error.field) == (5, "functions.f")
    assert "line 3" in error.message


def test_duplicate_key_in_flow_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "a: {b: 1, c: 2, b: 3}\n")
    (error,) = load_errors(path)
    assert (error.line, error.field) == (1, "a.b")


def test_keys_equal_after_string_conversion_are_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path, "1: a\n'1': b\n")
    (error,) = load_errors(path)
    assert (error.line, error.field) == (2, "1")


def test_every_duplicate_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        version: 1
        functions:
          f:
            - batch_size: 1
              batch_size: 2
            - enabled: true
              enabled: false
        """,
    )
    errors = load_errors(path)
    assert [(e.line, e.field) for e in errors] == [
        (2, "version"),
        (6, "functions.f[0].batch_size"),
        (8, "functions.f[1].enabled"),
    ]
    assert all(e.file == str(path) for e in errors)


def test_duplicates_reach_load_spec(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nfunctions: {}\nfunctions: {}\n")
    with pytest.raises(SpecErrors) as info:
        load_spec([path])
    assert [(e.file, e.line, e.field) for e in info.value.errors] == [(str(path), 3, "functions")]


def test_non_scalar_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\n? [a, b]\n: 1\n")
    (error,) = load_errors(path)
    assert error.line == 2
    assert "keys" in error.message


# -- syntax errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("version: 1\nfunctions: [\n", 3),  # unclosed flow sequence: found at end of input
        ("version: 1\nfunctions:\n  f: [a, b\n  g: 1\n", 3),  # where the '[' was opened
        ("a: 1\n\tb: 2\n", 2),  # tab indentation
        ("version: 1\nfunctions:\n  f: 'unterminated\n", 4),
        ("version: 1\n  bad_indent: 2\n", 2),
        ("a: *nope\n", 1),  # unknown alias
        ("a: !!python/object:os.system x\n", 1),  # unsafe tag refused by SafeLoader
    ],
)
def test_syntax_error_has_file_and_line(
    tmp_path: Path, text: str, line: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    (error,) = load_errors(path)
    assert error.file == str(path)
    assert error.line == line
    assert error.message.startswith("invalid YAML")
    assert "Traceback" not in str(error)
    assert str(error).startswith(f"{path}:{line}: ")
    assert error.__class__ is SpecError


def test_syntax_error_is_not_chained(tmp_path: Path) -> None:
    path = write(tmp_path, "a: [\n")
    with pytest.raises(SpecErrors) as info:
        load_file(path)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_multiple_documents_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\n---\nversion: 1\n")
    (error,) = load_errors(path)
    assert error.file == str(path)
    assert error.line == 2


# -- empty, unreadable, non-UTF-8 ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_file_loads_as_none(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_file(path)
    assert loaded.data is None
    assert loaded.line_of(("anything",)) == 1


def test_empty_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(SpecErrors) as info:
        load_spec([path])
    (error,) = info.value.errors
    assert (error.file, error.line) == (str(path), 1)
    assert "version" in error.message and "functions" in error.message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\nfunctions:\n  caf\xe9: []\n".encode("latin-1"))
    (error,) = load_errors(path)
    assert error.file == str(path)
    assert "UTF-8" in error.message
    assert str(error).startswith(str(path))
    assert "Traceback" not in str(error)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    (error,) = load_errors(path)
    assert error.file == str(path)
    assert "cannot read" in error.message


def test_directory_given_to_load_file(tmp_path: Path) -> None:
    (error,) = load_errors(tmp_path)
    assert error.file == str(tmp_path)
    assert "cannot read" in error.message


# -- expand_paths ----------------------------------------------------------------------------------


def test_expand_directory(tmp_path: Path) -> None:
    for name in ["b.yaml", "a.yml", "c.yaml", "notes.txt", "d.YAML.bak", "yaml"]:
        (tmp_path / name).write_text("x: 1\n")
    (tmp_path / "sub.yaml").mkdir()  # a directory with a yaml-like name
    (tmp_path / "sub.yaml" / "inner.yaml").write_text("x: 1\n")
    assert expand_paths([str(tmp_path)]) == [
        tmp_path / "a.yml",
        tmp_path / "b.yaml",
        tmp_path / "c.yaml",
    ]


def test_expand_does_not_recurse(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "x.yaml").write_text("x: 1\n")
    assert expand_paths([str(tmp_path)]) == []


def test_expand_keeps_files_and_order(tmp_path: Path) -> None:
    one = tmp_path / "one.txt"  # named files are taken whatever their suffix
    one.write_text("x: 1\n")
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "z.yaml").write_text("x: 1\n")
    (folder / "y.yaml").write_text("x: 1\n")
    missing = tmp_path / "missing.yaml"
    assert expand_paths([str(one), str(folder), str(missing)]) == [
        one,
        folder / "y.yaml",
        folder / "z.yaml",
        missing,  # reported by load_file as unreadable, not dropped silently
    ]


def test_expand_empty_directory(tmp_path: Path) -> None:
    assert expand_paths([str(tmp_path)]) == []


@pytest.mark.parametrize(
    "text",
    ["version:\t1\nfunctions: {}\n", "version: 1\t# c\nfunctions: {}\n", "version: [1,\t2]\n"],
)
def test_tabs_get_one_verdict_whichever_yaml_parser_is_installed(tmp_path: Path, text: str) -> None:
    """libyaml accepts these tabs, PyYAML's Python parser does not: files with tabs always go
    through the Python parser, so validity does not depend on how PyYAML was built."""
    path = tmp_path / "tabs.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecErrors) as caught:
        load_file(path)
    assert "invalid YAML" in str(caught.value) and "'\\t'" in str(caught.value)


def test_a_control_character_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bell.yaml"
    path.write_text("version: 1\nfunctions: {f: [\x07]}\n", encoding="utf-8")
    with pytest.raises(SpecErrors, match="control characters are not allowed"):
        load_file(path)


def test_an_alias_of_a_mapping_with_a_merge_key_is_no_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "alias.yaml"
    path.write_text("base: &b {x: 1}\nm: &m {<<: *b, x: 2}\na: [*m, *m]\n", encoding="utf-8")
    assert load_file(path).data["a"] == [{"x": 2}, {"x": 2}]


def test_the_same_file_named_twice_is_listed_once(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    a, b = folder / "a.yaml", folder / "b.yaml"
    a.write_text("x: 1\n")
    b.write_text("x: 1\n")
    monkeypatch.chdir(folder)
    assert expand_paths(["a.yaml", "a.yaml"]) == [Path("a.yaml")]
    # A directory and one of its files, by another spelling: first reached, first listed.
    assert expand_paths([".", "a.yaml", str(b), "../specs/b.yaml"]) == [
        Path("a.yaml"),
        Path("b.yaml"),
    ]
    assert expand_paths(["b.yaml", "."]) == [Path("b.yaml"), Path("a.yaml")]


def test_a_symlink_to_a_named_file_is_the_same_file(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text("x: 1\n")
    (tmp_path / "link.yaml").symlink_to(real)
    assert expand_paths([str(real), str(tmp_path / "link.yaml")]) == [real]
    loop = tmp_path / "loop.yml"
    loop.symlink_to(loop)  # cannot be resolved: listed, for load_file to report
    assert expand_paths([str(loop), str(loop)]) == [loop]


def test_the_same_file_twice_through_the_cli_is_one_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        region: us-east-1
        functions:
          f: [{event_source_arn: "arn:aws:sqs:us-east-1:123456789012:q"}]
        """,
    )
    result = run_esm("validate", "-f", path, "-f", tmp_path, "-f", path)
    assert result.code == 0, result.err
    assert "1 file(s) valid" in result.output


def test_load_text_reads_text_as_if_from_the_named_file(tmp_path: Path) -> None:
    path = write(tmp_path, SPEC)
    from_text = load_text("elsewhere/spec.yaml", path.read_text(encoding="utf-8"))
    from_file = load_file(path)
    assert from_text.path == "elsewhere/spec.yaml"
    assert (from_text.data, from_text.lines) == (from_file.data, from_file.lines)
    with pytest.raises(SpecErrors) as info:
        load_text("elsewhere/spec.yaml", "a: 1\na: 2\n")
    (error,) = info.value.errors
    assert (error.file, error.line, error.field) == ("elsewhere/spec.yaml", 2, "a")


def test_merged_mappings_may_share_keys_and_the_earlier_wins(tmp_path: Path) -> None:
    """YAML: in `<<: [*a, *b]` a key of a overrides the same key of b. Not a duplicate: the
    file writes each key once (only two keys written in one mapping are a duplicate)."""
    path = tmp_path / "merge.yaml"
    path.write_text(
        "x-a: &a {batch_size: 1, enabled: true}\n"
        "x-b: &b {batch_size: 2, tags: {team: t}}\n"
        "m: {<<: [*a, *b], x: 1}\n"
        "n: {<<: [*b, *a], batch_size: 3}\n",
        encoding="utf-8",
    )
    data = load_file(path).data
    assert data["m"] == {"batch_size": 1, "enabled": True, "tags": {"team": "t"}, "x": 1}
    assert data["n"] == {"batch_size": 3, "enabled": True, "tags": {"team": "t"}}


def test_garbage_collection_is_paused_only_while_a_document_is_built(tmp_path: Path) -> None:
    """Building pauses the cyclic collector (speed at 16,000 mappings); it must come back on,
    after a good file and after a refused one alike, and stay off if it was off."""
    import gc

    from esm_reconcile.loader import gc_paused

    good = write(tmp_path, "version: 1\nfunctions: {}\n")
    load_file(good)
    assert gc.isenabled()
    with pytest.raises(SpecErrors):
        load_file(write(tmp_path, "a: 1\na: 2\n"))
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
