"""Load YAML spec files into plain data, remembering the line of every key and item.

PyYAML silently keeps the last of two equal keys; here that is an error, because a spec where
`batch_size` appears twice says two things and we cannot know which one was meant.

Hostile structure (alias bombs, deep nesting) is refused by one pass over the parser's events
(yaml_limits.py) before anything recursive runs; syntax errors are worded in yaml_errors.py.
"""

from __future__ import annotations

import gc
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import MAX_DEPTH as MAX_DEPTH  # re-exported: tests import it from here
from .errors import SpecError, SpecErrors, one_line
from .yaml_errors import reader_error, yaml_error
from .yaml_limits import ALIAS_NODES_FLOOR as ALIAS_NODES_FLOOR  # re-exported: tests import it
from .yaml_limits import checked_events

Path_ = tuple[str | int, ...]
# A 10,000-mapping spec is about 2 MB; a file far larger is a mistake or an attack.
MAX_SPEC_BYTES = 32 * 2**20

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
    """Plain data from a composed document, noting the line of every key and item; errors
    (duplicate keys, keys that are not plain scalars, unreadable values) are collected."""

    def __init__(self, path: str, loader: yaml.constructor.SafeConstructor) -> None:
        self.path = path
        self.loader = loader
        self.lines: dict[Path_, int] = {}
        self.errors: list[SpecError] = []
        self.written: dict[int, tuple[set[Any], set[int]]] = {}  # node id -> written keys, ids

    def build(self, node: yaml.Node, loc: Path_) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self._construct(node, loc)

    def _mapping(self, node: yaml.MappingNode, loc: Path_) -> dict[str, Any]:
        """YAML merge keys (<<): keys written here override merged ones; only two written keys
        with one name are a duplicate."""
        explicit_keys, explicit_ids = self._written_keys(node)
        ranks = self._merge_ranks(node)
        self.loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        rank_of: dict[str, int] = {}  # per merged key: the rank of the mapping it came from
        for key_node, value_node in node.value:
            merged = id(key_node) not in explicit_ids
            if merged and isinstance(key_node, yaml.ScalarNode) and key_node.value in explicit_keys:
                continue
            key = self._key(key_node, loc)
            if key is None:
                continue
            if key in out and not merged:
                first = self.lines.get((*loc, key))
                self._error(key_node, (*loc, key), f"duplicate key (first given on line {first})")
                continue
            if merged:
                # Merged mappings may share keys: `<<: [*a, *b]` takes a's (YAML: the earlier
                # wins). PyYAML's versions list the merged pairs in different orders.
                rank = ranks.get(id(key_node), 0)
                if key in rank_of and rank_of[key] <= rank:
                    continue
                rank_of[key] = rank
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*loc, key))
        return out

    def _merge_ranks(self, node: yaml.MappingNode) -> dict[int, int]:
        """For each key node that `<<` merges into `node`, the position of the mapping it
        comes from in the merge list (0 for `<<: *a` or the first of `<<: [*a, *b]`)."""
        ranks: dict[int, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for rank, source in enumerate(sources):
                if isinstance(source, yaml.MappingNode):
                    self._written_keys(source)  # before flattening rewrites it
                    self.loader.flatten_mapping(source)  # its own merges first
                    for merged_key, _ in source.value:
                        ranks.setdefault(id(merged_key), rank)
        return ranks

    def _written_keys(self, node: yaml.MappingNode) -> tuple[set[Any], set[int]]:
        """The keys written in this mapping (not merged into it with <<): their names, and the
        ids of their nodes. flatten_mapping rewrites the node in place, and an alias builds the
        same node again: what was written is remembered from the first time."""
        if id(node) not in self.written:
            explicit = [p for p in node.value if p[0].tag != "tag:yaml.org,2002:merge"]
            self.written[id(node)] = (
                {k.value for k, _ in explicit if isinstance(k, yaml.ScalarNode)},
                {id(pair[0]) for pair in explicit},
            )
        return self.written[id(node)]

    def _key(self, key_node: yaml.Node, loc: Path_) -> str | None:
        """A mapping key as text, or None when it is unreadable or not a plain scalar
        (reported)."""
        known_errors = len(self.errors)
        key = self._construct(key_node, loc)
        if len(self.errors) > known_errors:
            return None  # an unreadable key, reported
        if not isinstance(key, str | int | bool | float) or key is None:
            self._error(key_node, loc, "mapping keys must be plain scalars")
            return None
        if isinstance(key, str):
            return key
        written = key_node.value if isinstance(key_node, yaml.ScalarNode) else ""
        if str(key) != written:
            # YAML 1.1 reads `on`, `yes`, `0x10`, `1_000` as true, true, 16, 1000: a tag key or
            # a function named so would silently become another name.
            self._error(
                key_node,
                (*loc, written),
                f"the key {one_line(written)} reads as {key!r} in YAML; quote it",
            )
            return None
        return written

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
        self._error(node, loc, message)
        return None

    def _error(self, node: yaml.Node, loc: Path_, message: str) -> None:
        self.errors.append(SpecError(self.path, node.start_mark.line + 1, dotted(loc), message))


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
    """A location as messages name it: `functions.orders[0].batch_size`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{one_line(part)}" if out else one_line(part)
    return out or "(document)"


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
    """The same syntax error as the pure-Python parser words it (yaml_error knows its words).
    The events are checked again: this parser might read further than libyaml did."""
    try:
        events, error = checked_events(path, text, yaml.SafeLoader, keep=True)
        _ReplayLoader(events, error).get_single_node()
    except yaml.MarkedYAMLError as python_exc:
        return python_exc
    except (yaml.YAMLError, SpecErrors):
        pass
    return exc


def load_file(path: str | Path) -> LoadedFile:
    """Parse one YAML file. Raises SpecErrors (all found) for syntax errors and duplicate keys."""
    path_str = str(path)

    def refused(message: str) -> SpecErrors:
        return SpecError(path_str, 0, "", message).as_group()

    try:
        # O_NONBLOCK: a FIFO with no writer must not hang validate; only regular files are read.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise refused("not a regular file")
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise refused(f"cannot read file: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise refused(f"larger than {MAX_SPEC_BYTES // 2**20} MiB; split it into several files")
    try:
        # As read_text would: universal newlines, so lines count the same way.
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        raise refused("file is not UTF-8 text") from None
    return load_text(path_str, text)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a document's nodes and data are built: they are
    millions of new objects that all live on, and every collection would walk them all again
    (a 16,000-mapping spec loaded superlinearly). The file's size is bounded (MAX_NODES)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_text(path: str, text: str) -> LoadedFile:
    """Parse YAML text as if read from the file `path` (which names it in errors).
    Raises SpecErrors (all found) for syntax errors, duplicate keys, unreadable values, and
    hostile structure (alias bombs, deep nesting), the last before anything recursive runs."""
    path_str = str(path)
    with gc_paused():
        loader, root = _compose(path_str, text)
        if root is None:
            return LoadedFile(path_str, None, {(): 1})
        builder = _Builder(path_str, loader)
        try:
            data = builder.build(root, ())
        except yaml.MarkedYAMLError as exc:
            raise yaml_error(path_str, exc).as_group() from None
    if builder.errors:
        raise SpecError.group(builder.errors)
    return LoadedFile(path_str, data, builder.lines)


def _compose(path: str, text: str) -> tuple[yaml.SafeLoader | _ReplayLoader, yaml.Node | None]:
    """The document's root node (None for an empty document), its structure checked first, and
    the loader that composed it, whose constructor reads its scalars."""
    # libyaml accepts tabs in places PyYAML refuses: keep one verdict for such files.
    python_parser = "\t" in text or _LOADER is yaml.SafeLoader
    loader: yaml.SafeLoader | _ReplayLoader | None = None
    try:
        if python_parser:
            events, error = checked_events(path, text, yaml.SafeLoader, keep=True)
            loader = _ReplayLoader(events, error)
        else:
            # Events are cheap with libyaml (a tenth of composing): check them, then compose.
            # A YAML error is left to the composer, which meets it at the same point.
            checked_events(path, text, _LOADER, keep=False)
            loader = _LOADER(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        worded = exc if python_parser else _python_worded(path, text, exc)
        raise yaml_error(path, worded).as_group() from None
    except yaml.YAMLError as exc:
        raise reader_error(path, text, exc).as_group() from None
    finally:
        if loader is not None:
            loader.dispose()
    return loader, root


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named, and the *.yaml / *.yml files of directories named, in a stable order.
    A file reached twice (`-f a.yaml -f a.yaml`, `-f . -f a.yaml`) is listed once, where it
    was first reached: it is one file, not two files managing the same functions."""
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        found = _directory_specs(p) if p.is_dir() else [p]
        for file in found:
            resolved = _identity(file)
            if resolved not in seen:
                seen.add(resolved)
                out.append(file)
    return out


def _directory_specs(directory: Path) -> list[Path]:
    """The *.yaml / *.yml files of a directory. A symlink there that leads out of it is
    refused: a pull request could add one to any file on the CI machine and have its lines
    quoted back in errors. Naming such a file with -f reads it."""
    inside = _identity(directory)
    found, outside = [], []
    for entry in sorted(directory.iterdir()):
        if entry.suffix not in (".yaml", ".yml") or not entry.is_file():
            continue
        if entry.is_symlink() and inside not in _identity(entry).parents:
            outside.append(SpecError(str(entry), 0, "", f"a symlink out of {directory}: refused"))
        found.append(entry)
    if outside:
        raise SpecErrors(outside)
    return found


def _identity(path: Path) -> Path:
    """The file a path names, through symlinks and `..`. A path that cannot be resolved (a
    symlink loop) is its own identity: load_file reports it."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path.absolute()
