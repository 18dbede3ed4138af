"""GitHub Actions output: `::error` annotations and the step summary (never fatal)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from esm_reconcile.github import (
    STEP_SUMMARY_LIMIT,
    TOO_LONG_NOTE,
    append_step_summary,
    error_annotation,
)

# -- annotations --------------------------------------------------------------------------------


def _unescape(text: str) -> str:
    # As the runner does it (ActionCommand.UnescapeValue): "%25" last.
    for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


def parse_workflow_command(line: str) -> tuple[str, dict[str, str], str]:
    """Split `::name k=v,k=v::data` the way the Actions runner does."""
    match = re.fullmatch(r"::(\S+?)(?: (.*?))?::(.*)", line, flags=re.DOTALL)
    assert match, line
    name, properties, data = match.groups()
    parsed: dict[str, str] = {}
    for pair in (properties or "").split(","):
        if pair:
            key, _, value = pair.partition("=")
            parsed[key] = _unescape(value)
    return name, parsed, _unescape(data)


def test_plain_annotation_is_the_familiar_command() -> None:
    assert (
        error_annotation("specs/a.yaml", 5, "functions.f[0].batch_size: too big")
        == "::error file=specs/a.yaml,line=5::functions.f[0].batch_size: too big"
    )


def test_message_escapes_percent_cr_and_lf() -> None:
    line = error_annotation("a.yaml", 3, "100% wrong\r\nsecond line %0A stays text")
    assert line == "::error file=a.yaml,line=3::100%25 wrong%0D%0Asecond line %250A stays text"
    assert "\n" not in line and "\r" not in line
    assert parse_workflow_command(line)[2] == "100% wrong\r\nsecond line %0A stays text"


def test_file_property_escapes_colon_comma_percent_and_newlines() -> None:
    file = "C:/specs/a,b%c\nd.yaml"
    line = error_annotation(file, 7, "bad: value, really")
    assert line == "::error file=C%3A/specs/a%2Cb%25c%0Ad.yaml,line=7::bad: value, really"
    name, properties, message = parse_workflow_command(line)
    assert (name, properties, message) == (
        "error",
        {"file": file, "line": "7"},
        "bad: value, really",
    )


def test_title_is_an_escaped_property() -> None:
    line = error_annotation("a.yaml", 2, "m", title="esm: spec, error")
    assert line == "::error file=a.yaml,line=2,title=esm%3A spec%2C error::m"


@pytest.mark.parametrize("unknown_line", [0, None, -1])
def test_an_unknown_line_is_left_out_never_line_0(unknown_line: int | None) -> None:
    line = error_annotation("a.yaml", unknown_line, "cannot parse")
    assert line == "::error file=a.yaml::cannot parse"
    assert "line=" not in line


def test_no_file_gives_a_bare_annotation() -> None:
    assert error_annotation("", 0, "no spec files") == "::error::no spec files"


# -- step summary -------------------------------------------------------------------------------

PLAN_MARKDOWN = "**Plan: 1 to create, 0 to update, 0 to replace, 0 to delete.**\n\n#### `+` x\n"


def test_no_step_summary_outside_github_actions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_step_summary(PLAN_MARKDOWN) is None
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "")
    assert append_step_summary(PLAN_MARKDOWN) is None
    assert list(tmp_path.iterdir()) == []


def test_appends_to_the_summary_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert append_step_summary(PLAN_MARKDOWN) is None
    assert append_step_summary("**No changes.**\n") is None
    assert summary.read_text(encoding="utf-8") == (
        "earlier step\n" + PLAN_MARKDOWN + "\n" + "**No changes.**\n\n"
    )


def test_a_plan_that_fits_exactly_is_written_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    addition = (PLAN_MARKDOWN + "\n").encode()
    summary.write_bytes(b"x" * (STEP_SUMMARY_LIMIT - len(addition)))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert append_step_summary(PLAN_MARKDOWN) is None
    assert summary.stat().st_size == STEP_SUMMARY_LIMIT
    assert summary.read_bytes().endswith(addition)


def test_a_plan_too_long_leaves_its_headline_and_a_note(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    # Fewer characters than the limit, more bytes: the limit is in bytes.
    huge = PLAN_MARKDOWN + "値" * (STEP_SUMMARY_LIMIT // 2)
    assert len(huge) < STEP_SUMMARY_LIMIT
    assert append_step_summary(huge) is None
    assert summary.read_text(encoding="utf-8") == (
        "earlier step\n"
        "**Plan: 1 to create, 0 to update, 0 to replace, 0 to delete.**\n\n"
        f"{TOO_LONG_NOTE}\n\n"
    )


def test_a_full_summary_is_left_alone_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"x" * (STEP_SUMMARY_LIMIT - 10))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    warning = append_step_summary(PLAN_MARKDOWN)
    assert warning is not None and "full" in warning and warning.endswith("going on")
    assert summary.stat().st_size == STEP_SUMMARY_LIMIT - 10


def _unwritable_paths(tmp_path: Path) -> list[tuple[str, str]]:
    regular_file = tmp_path / "a-file"
    regular_file.write_text("")
    paths = [
        (str(tmp_path), "Is a directory"),
        (str(tmp_path / "missing" / "summary.md"), "No such file or directory"),
        (str(regular_file / "summary.md"), "Not a directory"),
    ]
    if os.path.exists("/dev/full"):
        paths.append(("/dev/full", "No space left on device"))
    return paths


def test_an_unwritable_summary_is_a_warning_not_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for path, reason in _unwritable_paths(tmp_path):
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", path)
        warning = append_step_summary(PLAN_MARKDOWN)
        assert warning == (
            f"warning: could not write the GitHub step summary to {path}: {reason}; going on"
        )
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_summary_is_a_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    summary.chmod(0o444)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    warning = append_step_summary(PLAN_MARKDOWN)
    assert warning is not None and "Permission denied" in warning
    assert summary.read_text() == "earlier step\n"
