"""Domain errors. The core raises these; the CLI turns them into words and exit codes."""

from __future__ import annotations

from dataclasses import dataclass

# Collections inside collections, the document's own mapping being level 1, in a spec or a
# filter pattern. A real spec stays under 20 (a filter pattern nests a few levels below
# functions.NAME[i].filter_criteria.filters); PyYAML's composers recurse once per level
# (libyaml's crashes the process near 100,000).
MAX_DEPTH = 100


def one_line(text: str) -> str:
    """Text from a spec as it may appear in an error, which is one line: line breaks and
    control characters escaped (a key holding one must not split a message, or forge one)."""
    return text if text.isprintable() else repr(text)[1:-1]


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


class SpecErrors(EsmError):
    """Every problem found in the spec files, all at once."""

    def __init__(self, errors: list[SpecError]) -> None:
        # A default's error would repeat once per mapping it reaches: report it once.
        self.errors = sorted(set(errors), key=lambda e: (e.file, e.line, e.field, e.message))
        super().__init__("\n".join(str(e) for e in self.errors))


class AwsError(EsmError):
    """An AWS call failed; carries the mapping or function it concerns."""

    def __init__(self, concerning: str, code: str, message: str) -> None:
        self.concerning = concerning
        self.code = code
        self.aws_message = message
        super().__init__(f"{concerning}: {code}: {message}")
