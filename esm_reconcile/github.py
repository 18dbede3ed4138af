"""GitHub Actions: workflow-command annotations and the job's step summary."""

from __future__ import annotations

import os

from .render import terminal_safe

STEP_SUMMARY_LIMIT = 1024 * 1024  # bytes; GitHub drops a step's whole summary beyond 1 MiB
TOO_LONG_NOTE = "(plan too long for the step summary; see the log)"


def _escape_data(text: str) -> str:
    # The runner's own escaping (actions/toolkit command.ts): "%" first, so that "%0A" in the
    # text stays text; a raw CR or LF would end the command early.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # ":" ends the property list and "," separates properties.
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_annotation(file: str, line: int | None, message: str, title: str | None = None) -> str:
    """The `::error` workflow command that shows `message` as an annotation on file:line.

    A line of 0 (or None) means the line is unknown: GitHub then annotates the file.
    """
    properties = []
    if file:
        properties.append(f"file={_escape_property(file)}")
    if line is not None and line > 0:
        properties.append(f"line={line}")
    if title:
        properties.append(f"title={_escape_property(title)}")
    joined = " " + ",".join(properties) if properties else ""
    # A log viewer is a terminal too: no escape sequence from a file name or message.
    return terminal_safe(f"::error{joined}::{_escape_data(message)}")


def append_step_summary(markdown: str) -> str | None:
    """Append `markdown` to the step summary (GITHUB_STEP_SUMMARY), if there is one.

    A summary that would pass GitHub's limit is replaced by the markdown's first line (its
    headline) and a note saying the plan is in the log. Never raises: the summary is a
    courtesy, and a problem with it must not abort a plan or an apply. Returns a one-line
    warning for stderr when the summary could not be written, else None.
    """
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    try:
        used = os.path.getsize(path)
    except OSError:
        used = 0  # no file yet, or one that open() below reports on
    room = STEP_SUMMARY_LIMIT - used
    text = markdown.rstrip("\n") + "\n\n"
    if _utf8_size(text) > room:
        headline = markdown.split("\n", 1)[0]
        text = f"{headline}\n\n{TOO_LONG_NOTE}\n\n"
        if _utf8_size(text) > room:
            return (
                f"warning: the GitHub step summary {path} is full "
                f"({STEP_SUMMARY_LIMIT // 1024} KiB); the plan is only in the log; going on"
            )
    try:
        # backslashreplace: a lone surrogate must not make the write itself fail.
        # O_NONBLOCK: a FIFO nobody reads fails at once (ENXIO) instead of hanging the run.
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
        with open(descriptor, "a", encoding="utf-8", errors="backslashreplace") as summary:
            summary.write(text)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return f"warning: could not write the GitHub step summary to {path}: {reason}; going on"
    return None


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", errors="backslashreplace"))
