"""Hostile YAML structure, refused before anything recursive meets it.

PyYAML's composers recurse once per nesting level (RecursionError; libyaml's crashes the process
near 100,000 levels), and an alias shares one node that the loader's builder then builds once per
use: 10 levels of 9 aliases each is 9^10 nodes from a 600-byte file. So one pass over the parser's
events refuses nesting deeper than MAX_DEPTH, an alias inside the node it names (a cycle), and
aliases that would add more nodes than the file's size justifies.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import MAX_DEPTH, SpecError, SpecErrors

# Nodes that aliases may add beyond those written in the file: the larger of a floor (a small
# file reusing anchors heavily) and a multiple of the nodes written (`<<: *common` in each of
# 10,000 mappings adds about one node per node written). A 600-byte alias bomb asks for 10^9.
ALIAS_NODES_FLOOR = 100_000
ALIAS_NODES_PER_WRITTEN = 10
# Likewise for the text aliases repeat: one alias of a 1 MB scalar is one node but 1 MB, and
# 30,000 of them (a 200 KB file) would be 30 GB once built and compared.
ALIAS_CHARS_FLOOR = 10_000_000
ALIAS_CHARS_PER_WRITTEN = 10
# Nodes as written: a 10,000-mapping spec has about 150,000. A few million already take
# gigabytes once built and validated, from a file of a few MB.
MAX_NODES = 1_000_000


def checked_events(
    path: str, text: str, loader_class: type[yaml.SafeLoader], keep: bool
) -> tuple[list[yaml.Event], yaml.YAMLError | None]:
    """Parse `text` into events (kept when `keep`), refusing hostile structure as they come,
    before anything recursive runs on them (SpecErrors).

    Stops after the first document and the event that follows it, which is as far as composing
    a single document reads. A YAML error ends the stream early: it is returned, for the
    composer to raise at the same point it would have.
    """
    counts = _StructureCounts(path, len(text))
    anchors = counts.anchors
    scalars = 0  # the commonest event, counted here rather than in `counts` (speed)
    chars = 0  # the text of the scalars seen so far
    events: list[yaml.Event] = []
    parser = None
    try:
        parser = loader_class(text)  # the pure-Python reader checks characters right here
        first_document_read = False
        while (event := parser.get_event()) is not None:
            if keep:
                events.append(event)
            kind = type(event)
            if kind is yaml.ScalarEvent:
                scalars += 1
                chars += len(event.value)
                if event.anchor is not None:
                    anchors[event.anchor] = (1, 0, len(event.value))
                if scalars > MAX_NODES:
                    raise counts.too_many(event)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                counts.collection_start(event, scalars, chars)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                counts.collection_end(scalars, chars)
            elif kind is yaml.AliasEvent:
                counts.alias(event, scalars)
            if first_document_read:
                break  # the event after the document: composing reads this far, no further
            first_document_read = kind is yaml.DocumentEndEvent
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):
            # Newer libyaml stops deep input itself, while scanning ahead of the events.
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark is not None else 0
            message = f"nested deeper than {MAX_DEPTH} levels"
            raise SpecError(path, line, "", message).as_group() from None
        return events, exc
    finally:
        if parser is not None:
            parser.dispose()
    return events, None


class _StructureCounts:
    """What the pass over the events keeps: only counts. Per anchor, the nodes it expands to and
    its height; per open collection, its anchor, the nodes expanded before it and the deepest
    level inside it; and the nodes as written (an alias is one) and as the builder builds them
    (an alias is as many as its anchor's node holds).

    Scalars, most of the events, are counted by the loop and passed in: `written` and `expanded`
    here count collections and aliases only, and a total adds the scalars seen so far.
    """

    def __init__(self, path: str, text_length: int) -> None:
        self.path = path
        # name -> (nodes it expands to, height, characters of scalar text it expands to)
        self.anchors: dict[str, tuple[int, int, int]] = {}
        # per open collection: [anchor, nodes expanded before it, deepest level, chars before]
        self.open: list[list[Any]] = []
        self.open_anchors: dict[str, int] = {}  # names of the open collections' anchors, counted
        self.written = 0
        self.expanded = 0
        self.alias_chars = 0  # scalar text that aliases repeat
        self.chars_limit = max(ALIAS_CHARS_FLOOR, ALIAS_CHARS_PER_WRITTEN * text_length)

    def collection_start(self, event: yaml.CollectionStartEvent, scalars: int, chars: int) -> None:
        if len(self.open) >= MAX_DEPTH:
            raise self._refuse(event, f"nested deeper than {MAX_DEPTH} levels")
        self.written += 1
        if self.written + scalars > MAX_NODES:
            raise self.too_many(event)
        self.expanded += 1
        self.open.append(
            [
                event.anchor,
                self.expanded + scalars - 1,
                len(self.open) + 1,
                chars + self.alias_chars,
            ]
        )
        if event.anchor is not None:
            self.open_anchors[event.anchor] = self.open_anchors.get(event.anchor, 0) + 1

    def collection_end(self, scalars: int, chars: int) -> None:
        anchor, before, deepest, chars_before = self.open.pop()
        if self.open and deepest > self.open[-1][2]:
            self.open[-1][2] = deepest
        if anchor is not None:
            self.open_anchors[anchor] -= 1
            self.anchors[anchor] = (
                self.expanded + scalars - before,
                deepest - len(self.open),
                chars + self.alias_chars - chars_before,
            )

    def too_many(self, event: yaml.Event) -> SpecErrors:
        return self._refuse(event, f"more than {MAX_NODES:,} values in one file: refused")

    def alias(self, event: yaml.AliasEvent, scalars: int) -> None:
        self.written += 1
        name = event.anchor
        if self.open_anchors.get(name):
            raise self._refuse(event, f"alias *{name} is inside the node it names (a cycle)")
        # An undefined alias is one node here; the composer reports it in its words.
        nodes, height, size = self.anchors.get(name, (1, 0, 0))
        if len(self.open) + height > MAX_DEPTH:
            raise self._refuse(
                event, f"alias *{name} makes this nested deeper than {MAX_DEPTH} levels"
            )
        self.expanded += nodes
        limit = max(ALIAS_NODES_FLOOR, ALIAS_NODES_PER_WRITTEN * (self.written + scalars))
        if self.expanded - self.written > limit:  # nodes added by aliases (scalars cancel out)
            raise self._refuse(
                event,
                f"alias *{name} expands to {nodes:,} nodes; the aliases in this file "
                f"would add more than {limit:,} (an alias bomb?): refused",
            )
        self.alias_chars += size
        if self.alias_chars > self.chars_limit:
            raise self._refuse(
                event,
                f"alias *{name} repeats {size:,} characters; the aliases in this file would "
                f"repeat more than {self.chars_limit:,} (an alias bomb?): refused",
            )
        if self.open and len(self.open) + height > self.open[-1][2]:
            self.open[-1][2] = len(self.open) + height

    def _refuse(self, event: yaml.Event, message: str) -> SpecErrors:
        return SpecError(self.path, event.start_mark.line + 1, "", message).as_group()
