"""Load YAML spec files into plain data, remembering the line of every key and item.

PyYAML silently keeps the last of two equal keys; here that is an error, because a spec where
`batch_size` appears twice says two things and we cannot know which one was meant.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import MAX_DEPTH, SpecError, SpecErrors, one_line

Path_ = tuple[str | int, ...]

# Nodes that aliases may add beyond those written in the file: the larger of a floor (a small
# file reusing anchors heavily) and a multiple of the nodes written (`<<: *common` in each of
# 10,000 mappings adds about one node per node written). A 600-byte alias bomb asks for 10^9.
ALIAS_NODES_FLOOR = 100_000
ALIAS_NODES_PER_WRITTEN = 10
# Python refuses to convert longer decimal integers (sys.get_int_max_str_digits; 0 means no
# limit, and then Python's default is ours); a hex literal can still make one, which no message
# or JSON could then print.
INT_DIGIT_LIMIT = sys.get_int_max_str_digits() or 4300
_INT_TOO_LARGE = 10**INT_DIGIT_LIMIT


@dataclass
class LoadedFile:
    path: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, loc: Path_) -> int:
        """Line of the deepest known prefix of `loc` (1-based)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1


class _Builder:
    def __init__(self, path: str, loader: yaml.constructor.SafeConstructor) -> None:
        self.path = path
        self.loader = loader
        self.lines: dict[Path_, int] = {}
        self.errors: list[SpecError] = []
        self.written: dict[int, tuple[set[Any], set[int]]] = {}  # node id -> written keys, ids

    def build(self, node: yaml.Node, loc: Path_) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            # YAML merge keys (<<): keys written here override merged ones; only two written
            # keys with one name are a duplicate.
            # flatten_mapping rewrites the node in place, and an alias builds the same node
            # again: remember what was written here from the first time.
            if id(node) not in self.written:
                explicit = [p for p in node.value if p[0].tag != "tag:yaml.org,2002:merge"]
                self.written[id(node)] = (
                    {k.value for k, _ in explicit if isinstance(k, yaml.ScalarNode)},
                    {id(pair[0]) for pair in explicit},
                )
            explicit_keys, explicit_ids = self.written[id(node)]
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                merged = id(key_node) not in explicit_ids
                if (
                    merged
                    and isinstance(key_node, yaml.ScalarNode)
                    and key_node.value in explicit_keys
                ):
                    continue
                known_errors = len(self.errors)
                key = self._construct(key_node, loc)
                if len(self.errors) > known_errors:
                    continue  # an unreadable key, reported
                if not isinstance(key, str | int | bool | float) or key is None:
                    self.errors.append(
                        SpecError(
                            self.path,
                            key_node.start_mark.line + 1,
                            dotted(loc),
                            "mapping keys must be plain scalars",
                        )
                    )
                    continue
                key = key if isinstance(key, str) else str(key)
                # Merged mappings may share keys: `<<: [*a, *b]` takes a's (YAML: earlier
                # wins), and flatten_mapping lists b's pairs first, so the later pair wins.
                if key in out and not merged:
                    first = self.lines.get((*loc, key))
                    self.errors.append(
                        SpecError(
                            self.path,
                            key_node.start_mark.line + 1,
                            dotted((*loc, key)),
                            f"duplicate key (first given on line {first})",
                        )
                    )
                    continue
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self._construct(node, loc)

    def _construct(self, node: yaml.Node, loc: Path_) -> Any:
        """A scalar (or a complex key) as PyYAML's safe constructor reads it. Values it cannot
        read (a 5000-digit number, 2024-13-01, `!!bool maybe`) are errors at their line; the
        constructor raises plain Python exceptions for those, not YAML errors."""
        if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
            return node.value  # what the constructor returns, without its bookkeeping (fast)
        try:
            value = self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            message = _unreadable(node, exc)
        else:
            if not (isinstance(value, int) and abs(value) >= _INT_TOO_LARGE):
                return value
            message = f"number too large (more than {INT_DIGIT_LIMIT} digits)"
        self.errors.append(SpecError(self.path, node.start_mark.line + 1, dotted(loc), message))
        return None


_STR_TAG = "tag:yaml.org,2002:str"


def _unreadable(node: yaml.Node, exc: Exception) -> str:
    """Why the safe constructor could not read this scalar, in a user's words."""
    text = node.value if isinstance(node.value, str) else ""
    if node.tag == "tag:yaml.org,2002:int" and sum(c.isdigit() for c in text) > INT_DIGIT_LIMIT:
        return f"number too large (more than {INT_DIGIT_LIMIT} digits)"
    shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
    kind = node.tag.rsplit(":", 1)[-1]
    if kind == "timestamp":
        reason = f" ({exc})" if isinstance(exc, ValueError) else ""  # "month must be in 1..12"
        return f"{shown} is not a valid date/time{reason}"
    return f"{shown} is not a valid {kind}"


def dotted(loc: Path_) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{one_line(part)}" if out else one_line(part)
    return out or "(document)"


def _yaml_error(path: str, exc: yaml.MarkedYAMLError) -> SpecError:
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


def _reader_error(path: str, text: str, exc: yaml.YAMLError) -> SpecError:
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


def _checked_events(
    path: str, text: str, loader_class: type[yaml.SafeLoader], keep: bool
) -> tuple[list[yaml.Event], yaml.YAMLError | None]:
    """Parse `text` into events (kept when `keep`), refusing hostile structure as they come,
    before anything recursive runs on them (SpecErrors).

    PyYAML's composers recurse once per nesting level (RecursionError; libyaml's crashes the
    process near 100,000 levels), and an alias shares one node that our builder then builds
    once per use: 10 levels of 9 aliases each is 9^10 nodes from a 600-byte file. So refuse
    nesting deeper than MAX_DEPTH, an alias inside the node it names (a cycle), and aliases
    that would add more nodes than the file's size justifies. Only counts are kept: per anchor,
    the nodes it expands to and its height.

    Stops after the first document and the event that follows it, which is as far as composing
    a single document reads. A YAML error ends the stream early: it is returned, for the
    composer to raise at the same point it would have.
    """
    anchors: dict[str, tuple[int, int]] = {}  # name -> (nodes it expands to, height)
    # Open collections: [anchor, nodes expanded before it, deepest level inside it].
    open_: list[list[Any]] = []
    open_anchors: dict[str, int] = {}  # names of the open collections' anchors, counted
    written = expanded = 0  # nodes as written (an alias is one), and as the builder builds them
    events: list[yaml.Event] = []

    def refuse(event: yaml.Event, message: str) -> SpecErrors:
        return SpecError(path, event.start_mark.line + 1, "", message).as_group()

    parser = None
    try:
        parser = loader_class(text)  # the pure-Python reader checks characters right here
        first_document_read = False
        while (event := parser.get_event()) is not None:
            if keep:
                events.append(event)
            kind = type(event)
            if kind is yaml.ScalarEvent:
                written += 1
                expanded += 1
                if event.anchor is not None:
                    anchors[event.anchor] = (1, 0)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if len(open_) >= MAX_DEPTH:
                    raise refuse(event, f"nested deeper than {MAX_DEPTH} levels")
                written += 1
                expanded += 1
                open_.append([event.anchor, expanded - 1, len(open_) + 1])
                if event.anchor is not None:
                    open_anchors[event.anchor] = open_anchors.get(event.anchor, 0) + 1
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                anchor, before, deepest = open_.pop()
                if open_ and deepest > open_[-1][2]:
                    open_[-1][2] = deepest
                if anchor is not None:
                    open_anchors[anchor] -= 1
                    anchors[anchor] = (expanded - before, deepest - len(open_))
            elif kind is yaml.AliasEvent:
                written += 1
                name = event.anchor
                if open_anchors.get(name):
                    raise refuse(event, f"alias *{name} is inside the node it names (a cycle)")
                # An undefined alias is one node here; the composer reports it in its words.
                nodes, height = anchors.get(name, (1, 0))
                if len(open_) + height > MAX_DEPTH:
                    raise refuse(
                        event, f"alias *{name} makes this nested deeper than {MAX_DEPTH} levels"
                    )
                expanded += nodes
                limit = max(ALIAS_NODES_FLOOR, ALIAS_NODES_PER_WRITTEN * written)
                if expanded - written > limit:
                    raise refuse(
                        event,
                        f"alias *{name} expands to {nodes:,} nodes; the aliases in this file "
                        f"would add more than {limit:,} (an alias bomb?): refused",
                    )
                if open_ and len(open_) + height > open_[-1][2]:
                    open_[-1][2] = len(open_) + height
            if first_document_read:
                break  # the event after the document: composing reads this far, no further
            first_document_read = kind is yaml.DocumentEndEvent
    except yaml.YAMLError as exc:
        return events, exc
    finally:
        if parser is not None:
            parser.dispose()
    return events, None


class _ReplayLoader(
    yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
):
    """PyYAML's Python composer and constructor over events already parsed and checked, so
    the slow pure-Python parser runs once."""

    def __init__(self, events: list[yaml.Event], error: yaml.YAMLError | None) -> None:
        self._events = events
        self._error = error
        self._next = 0
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def _pending(self) -> yaml.Event | None:
        if self._next < len(self._events):
            return self._events[self._next]
        if self._error is not None:
            raise self._error
        return None

    def check_event(self, *choices: type[yaml.Event]) -> bool:
        event = self._pending()
        return event is not None and (not choices or isinstance(event, choices))

    def peek_event(self) -> yaml.Event | None:
        return self._pending()

    def get_event(self) -> yaml.Event | None:
        event = self._pending()
        self._next += 1
        return event

    def dispose(self) -> None:
        self._events = []


# libyaml's parser when PyYAML has it: a 10,000-mapping spec loads several times faster. Nodes
# and their line marks are the same either way; errors are re-parsed in Python for its wording.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _python_worded(path: str, text: str, exc: yaml.MarkedYAMLError) -> yaml.MarkedYAMLError:
    """The same syntax error as the pure-Python parser words it (_yaml_error knows its words).
    The events are checked again: this parser might read further than libyaml did."""
    try:
        events, error = _checked_events(path, text, yaml.SafeLoader, keep=True)
        _ReplayLoader(events, error).get_single_node()
    except yaml.MarkedYAMLError as python_exc:
        return python_exc
    except (yaml.YAMLError, SpecErrors):
        pass
    return exc


def load_file(path: str | Path) -> LoadedFile:
    """Parse one YAML file. Raises SpecErrors (all found) for syntax errors and duplicate keys."""
    path_str = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(path_str, 0, "", f"cannot read file: {exc.strerror}").as_group() from None
    except UnicodeDecodeError:
        raise SpecError(path_str, 0, "", "file is not UTF-8 text").as_group() from None
    return load_text(path_str, text)


def load_text(path: str, text: str) -> LoadedFile:
    """Parse YAML text as if read from the file `path` (which names it in errors).
    Raises SpecErrors (all found) for syntax errors, duplicate keys, unreadable values, and
    hostile structure (alias bombs, deep nesting), the last before anything recursive runs."""
    path_str = str(path)
    # libyaml accepts tabs in places PyYAML refuses: keep one verdict for such files.
    python_parser = "\t" in text or _LOADER is yaml.SafeLoader
    loader: yaml.SafeLoader | _ReplayLoader | None = None
    try:
        if python_parser:
            events, error = _checked_events(path_str, text, yaml.SafeLoader, keep=True)
            loader = _ReplayLoader(events, error)
        else:
            # Events are cheap with libyaml (a tenth of composing): check them, then compose.
            # A YAML error is left to the composer, which meets it at the same point.
            _checked_events(path_str, text, _LOADER, keep=False)
            loader = _LOADER(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        worded = exc if python_parser else _python_worded(path_str, text, exc)
        raise _yaml_error(path_str, worded).as_group() from None
    except yaml.YAMLError as exc:
        raise _reader_error(path_str, text, exc).as_group() from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        return LoadedFile(path_str, None, {(): 1})
    builder = _Builder(path_str, loader)
    try:
        data = builder.build(root, ())
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(path_str, exc).as_group() from None
    if builder.errors:
        raise SpecError.group(builder.errors)
    return LoadedFile(path_str, data, builder.lines)


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named, and the *.yaml / *.yml files of directories named, in a stable order.
    A file reached twice (`-f a.yaml -f a.yaml`, `-f . -f a.yaml`) is listed once, where it
    was first reached: it is one file, not two files managing the same functions."""
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        found = (
            sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file())
            if p.is_dir()
            else [p]
        )
        for file in found:
            resolved = _identity(file)
            if resolved not in seen:
                seen.add(resolved)
                out.append(file)
    return out


def _identity(path: Path) -> Path:
    """The file a path names, through symlinks and `..`. A path that cannot be resolved (a
    symlink loop) is its own identity: load_file reports it."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path.absolute()
