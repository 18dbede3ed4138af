"""Domain errors. The core raises these; the CLI turns them into words and exit codes."""

from __future__ import annotations

from dataclasses import dataclass

# Collections inside collections, the document's own mapping being level 1, in a spec or a
# filter pattern. A real spec stays under 20 (a filter pattern nests a few levels below
# functions.NAME[i].filter_criteria.filters); PyYAML's composers recurse once per level
# (libyaml's crashes the process near 100,000).
MAX_DEPTH = 100


SHOWN_CHARS = 200  # of a key or value quoted in an error: one line must stay readable


def one_line(text: str) -> str:
    """Text from a spec as it may appear in an error, which is one line: line breaks and
    control characters escaped (a key holding one must not split a message, or forge one),
    and cut to SHOWN_CHARS (a 1 MB key must not make a 1 MB message, once per error)."""
    head = text[: SHOWN_CHARS + 1]
    shown = head if head.isprintable() else repr(head)[1:-1]
    if len(text) > SHOWN_CHARS or len(shown) > SHOWN_CHARS:
        return shown[:SHOWN_CHARS] + f"… ({len(text)} characters)"
    return shown


class EsmError(Exception):
    """Any error the user should see as a message, not a traceback."""


@dataclass(frozen=True)
class SpecError:
    """One problem in a spec file, located by file, line and field path."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )

    def as_group(self) -> SpecErrors:
        return SpecErrors([self])

    @staticmethod
    def group(errors: list[SpecError]) -> SpecErrors:
        return SpecErrors(errors)


SHOWN_ERRORS = 1000


class SpecErrors(EsmError):
    """Every problem found in the spec files, all at once."""

    def __init__(self, errors: list[SpecError]) -> None:
        # A default's error would repeat once per mapping it reaches: report it once.
        self.errors = sorted(set(errors), key=lambda e: (e.file, e.line, e.field, e.message))
        shown = [str(e) for e in self.errors[:SHOWN_ERRORS]]
        if len(self.errors) > SHOWN_ERRORS:
            shown.append(f"... and {len(self.errors) - SHOWN_ERRORS} more error(s)")
        super().__init__("\n".join(shown))

    @property
    def shown(self) -> list[SpecError]:
        """The errors worth printing: the first SHOWN_ERRORS (a broken generator can make a
        million; a thousand already say what is wrong)."""
        return self.errors[:SHOWN_ERRORS]


class AwsError(EsmError):
    """An AWS call failed; carries the mapping or function it concerns."""

    def __init__(self, concerning: str, code: str, message: str) -> None:
        self.concerning = concerning
        self.code = code
        self.aws_message = message
        super().__init__(f"{concerning}: {code}: {message}")
