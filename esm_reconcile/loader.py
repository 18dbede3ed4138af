"""Load YAML spec files into plain data, remembering the line of every key and item.

PyYAML silently keeps the last of two equal keys; here that is an error, because a spec where
`batch_size` appears twice says two things and we cannot know which one was meant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

Path_ = tuple[str | int, ...]


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
    def __init__(self, path: str, loader: yaml.SafeLoader) -> None:
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
                key = self.loader.construct_object(key_node, deep=True)
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
                if key in out:
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
        return self.loader.construct_object(node, deep=True)


def dotted(loc: Path_) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
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
    return SpecError(path, line, "", f"invalid YAML: {problem}")


# libyaml's parser when PyYAML has it: a 10,000-mapping spec loads several times faster. Nodes
# and their line marks are the same either way; errors are re-parsed in Python for its wording.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _python_worded(text: str, exc: yaml.MarkedYAMLError) -> yaml.MarkedYAMLError:
    """The same syntax error as the pure-Python parser words it (_yaml_error knows its words)."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.MarkedYAMLError as python_exc:
        return python_exc
    try:
        loader.get_single_node()
    except yaml.MarkedYAMLError as python_exc:
        return python_exc
    finally:
        loader.dispose()
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
    # libyaml accepts tabs in places PyYAML refuses: keep one verdict for such files.
    loader_class = yaml.SafeLoader if "\t" in text else _LOADER
    loader = None
    try:
        loader = loader_class(text)  # the pure-Python reader checks characters right here
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        worded = exc if loader_class is yaml.SafeLoader else _python_worded(text, exc)
        raise _yaml_error(path_str, worded).as_group() from None
    except yaml.YAMLError as exc:
        raise SpecError(path_str, 0, "", f"invalid YAML: {exc}").as_group() from None
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
    """Files named, and the *.yaml / *.yml files of directories named, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(
                sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file())
            )
        else:
            out.append(p)
    return out
