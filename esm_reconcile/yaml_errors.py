"""YAML syntax errors in a user's words, at the line the user must fix."""

from __future__ import annotations

import yaml

from .errors import SpecError


def yaml_error(path: str, exc: yaml.MarkedYAMLError) -> SpecError:
    """A YAML error at the line the user must fix. PyYAML notices an unclosed `{`/`[` or a key
    without `: ` only on a later line; its context mark is where the mistake is."""
    problem = exc.problem or str(exc)
    pm, cm, context = exc.problem_mark, exc.context_mark, exc.context or ""
    line = pm.line + 1 if pm else (cm.line + 1 if cm else 0)
    if cm is not None and context.startswith(
        ("while scanning a simple key", "while parsing a flow")
    ):
        if pm is not None and pm.line != cm.line:
            problem += f" on line {pm.line + 1}"
        line = cm.line + 1
        if context.startswith("while scanning a simple key"):
            problem += "; a key needs ': ' (a colon and a space) after it"
        else:
            bracket = "{" if "mapping" in context else "["
            problem += f"; the '{bracket}' opened on this line is not closed"
    elif cm is not None and context.startswith("while parsing a block") and "but found" in problem:
        problem += (
            f": this line does not line up with the block that starts on line {cm.line + 1}"
            " (check the indentation)"
        )
    elif isinstance(exc, yaml.composer.ComposerError) and context:
        # "expected a single document in the stream" / "but found another document";
        # "found duplicate anchor 'a'; first occurrence" / "second occurrence".
        where = f" (line {cm.line + 1})" if cm is not None and pm is not None else ""
        problem = f"{context}{where}, {problem}"
    return SpecError(path, line, "", "invalid YAML: " + " ".join(problem.splitlines()))


def reader_error(path: str, text: str, exc: yaml.YAMLError) -> SpecError:
    """A YAML error without a mark: the reader's refusal of a character. PyYAML words it over
    two lines with an offset; say it in one, at the character's line."""
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if isinstance(exc, yaml.reader.ReaderError) and bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        return SpecError(
            path,
            line,
            "",
            f"invalid YAML: unacceptable character #x{ord(bad.group()):04x}: {exc.reason}",
        )
    return SpecError(path, 0, "", "invalid YAML: " + " ".join(str(exc).split()))
