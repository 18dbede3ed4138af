"""Spec files → desired mappings, with every error found offline (shape, per-kind and cross-field).

Shape errors come from the pydantic models; each mapping's AWS rules from checks/ (which reads
the per-kind tables in rules.py); the rules across files from checks/ and ownership. Each error
names file, line and field. Nothing here calls AWS.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from . import rules
from .checks import Problem, check_mapping
from .checks.functions import function_ref_error, region_errors
from .checks.kafka import consumer_group_errors
from .errors import SpecError, SpecErrors, one_line
from .loader import LoadedFile, Path_, dotted, gc_paused, load_file
from .model import DesiredMapping, Spec, SpecFile, kind_of
from .ownership import Claim, owner_conflicts
from .spec import TOOL_KEYS, MappingSpec, SpecDocument, field_paths

__all__ = [
    "Spec",
    "SpecFile",
    "check_mapping",
    "load_spec",
    "region_errors",
    "spec_from_loaded",
    "validate_loaded",
]


def load_spec(paths: list[str | Path], now: datetime | None = None) -> Spec:
    """Load and validate spec files. Raises SpecErrors with every problem found."""
    errors: list[SpecError] = []
    loaded: list[LoadedFile] = []
    for path in paths:
        try:
            loaded.append(load_file(path))
        except SpecErrors as exc:
            errors.extend(exc.errors)
    try:
        spec = spec_from_loaded(loaded, now=now)
    except SpecErrors as exc:
        raise SpecErrors([*errors, *exc.errors]) from None
    if errors:
        raise SpecErrors(errors)
    return spec


def spec_from_loaded(loaded: list[LoadedFile], now: datetime | None = None) -> Spec:
    """Validate already-loaded files, each alone and together (cross-file checks).
    Raises SpecErrors with every problem found."""
    errors: list[SpecError] = []
    files: list[SpecFile] = []
    for one in loaded:
        with gc_paused():  # as while loading: many new objects, all kept
            spec_file, file_errors = validate_loaded(one, now=now)
        errors.extend(file_errors)
        if spec_file is not None:
            files.append(spec_file)
    errors += _one_owner_errors(files)
    errors += consumer_group_errors(Spec(files).mappings())
    if errors:
        raise SpecErrors(errors)
    return Spec(files)


def validate_loaded(
    loaded: LoadedFile, now: datetime | None = None
) -> tuple[SpecFile | None, list[SpecError]]:
    """One file: its shape, each mapping's rules (also of mappings whose shape is wrong in
    some keys, so one run reports every problem), and where its functions and sources are."""
    if not isinstance(loaded.data, dict):
        return None, [_not_a_mapping(loaded)]
    document, shape_errors = _read_document(loaded)
    reader = _FileReader(loaded, document.defaults, now, shape_errors)
    reader.check_defaults()
    spec_file = SpecFile(loaded.path, document.region, document.account_id, document.profile)
    for function, items in document.functions.items():
        spec_file.function_lines[function] = loaded.line_of(("functions", function))
        spec_file.functions[function] = reader.read_function(function, items)
    errors = reader.errors + region_errors(spec_file)
    return (None if errors else spec_file), errors


# -- the document's shape -------------------------------------------------------------------------

# Each mapping of a function as validated (None when nothing of it could be), with the keys
# dropped because their shape was wrong.
_Items = list[tuple[MappingSpec | None, set[str]]]


@dataclass
class _Document:
    """A spec file's top level, as far as its shape allows."""

    defaults: dict[str, Any]  # spec form, only what the file sets
    functions: dict[str, _Items]
    region: str | None = None
    account_id: str | None = None
    profile: str | None = None


def _not_a_mapping(loaded: LoadedFile) -> SpecError:
    data = loaded.data
    what = "empty" if data is None else f"a {type(data).__name__}"
    return SpecError(
        loaded.path,
        loaded.line_of(()),
        "",
        f"a spec file must be a mapping with 'version' and 'functions' (this one is {what})",
    )


def _read_document(loaded: LoadedFile) -> tuple[_Document, list[SpecError]]:
    try:
        document = SpecDocument.model_validate(loaded.data)
    except ValidationError as exc:
        return _salvage_document(loaded.data), _shape_errors(loaded, exc)
    functions = {
        name: [(item, set()) for item in items] for name, items in document.functions.items()
    }
    parsed = _Document(
        defaults=_set_fields(document.defaults),
        functions=functions,
        region=document.region,
        account_id=document.account_id,
        profile=document.profile,
    )
    return parsed, []


def _salvage_document(data: dict[str, Any]) -> _Document:
    """Every mapping whose shape is right, or right but for some keys, so the per-kind rules of
    those are still checked in the same run."""
    raw_functions = data.get("functions")
    functions = {
        str(name): [_salvage(item) for item in items]
        for name, items in (raw_functions.items() if isinstance(raw_functions, dict) else ())
        if isinstance(items, list)
    }
    return _Document(_set_fields(_salvage(data.get("defaults") or {})[0]), functions)


def _salvage(item: Any) -> tuple[MappingSpec | None, set[str]]:
    """Validate a mapping whose shape is wrong somewhere, without its wrong keys. Returns the
    model and the dropped keys."""
    try:
        return MappingSpec.model_validate(item), set()
    except ValidationError as exc:
        if not isinstance(item, dict):
            return None, set()
        dropped = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
    try:
        rest = {k: v for k, v in item.items() if k not in dropped}
        return MappingSpec.model_validate(rest), dropped
    except ValidationError:
        return None, set()


def _set_fields(mapping: MappingSpec | None) -> dict[str, Any]:
    return mapping.model_dump(exclude_unset=True) if mapping else {}


_PATTERN_HINTS = {
    "account_id": 'must be a 12-digit AWS account id, quoted (e.g. "123456789012")',
    "region": "not a region name (like us-east-1)",
    "KAFKA_BOOTSTRAP_SERVERS": "each broker must be host:port (e.g. b-1.kafka.example.com:9092)",
    "event_source_arn": "not an ARN (arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE)",
    "destination": "must be an SQS, SNS or S3 ARN, or kafka://topic for Kafka sources",
}


def _shape_errors(loaded: LoadedFile, exc: ValidationError) -> list[SpecError]:
    errors: list[SpecError] = []
    for err in exc.errors():
        # pydantic names its validator functions ("function-after[...]") in the location.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        message = _shape_message(err, loc)
        errors.append(SpecError(loaded.path, loaded.line_of(loc), dotted(loc), message))
    return errors


def _shape_message(err: ErrorDetails, loc: Path_) -> str:
    """pydantic's message, in this tool's words where those say more."""
    if err["type"] == "extra_forbidden":
        candidates = field_paths() + [*TOOL_KEYS, *SpecDocument.model_fields]
        names = [c.rsplit(".", 1)[-1] for c in candidates]
        close = difflib.get_close_matches(str(loc[-1]), names, 1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "literal_error" and loc == ("version",):
        return "unsupported spec version; this tool reads version: 1"
    if err["type"] == "string_pattern_mismatch":
        key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        return f"{err['input']!r}: {_PATTERN_HINTS.get(key, err['msg'])}"
    if err["type"] == "value_error":
        return err["msg"].removeprefix("Value error, ")
    return err["msg"]


# -- mappings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placement:
    """Where one mapping's keys are written: in the mapping, or in the defaults it took them
    from."""

    base: Path_  # ("functions", function, index)
    own: dict[str, Any]
    defaults: dict[str, Any]

    def location(self, path: str) -> Path_:
        """The location of a dotted field path of the merged mapping."""
        top, *rest = path.split(".")
        if top in self.own or top not in self.defaults:
            where: Path_ = (*self.base, top)
        else:
            where = ("defaults", top)
        return (*where, *(int(p) if p.isdigit() else p for p in rest))


def _with_defaults(own: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The mapping's own keys over the defaults that reach it: a default reaches only the
    mappings whose kind has that field (the SPEC's own example sets maximum_retry_attempts
    beside an SQS mapping)."""
    kind = kind_of(own)
    merged = {k: v for k, v in defaults.items() if kind is None or rules.applies(k, kind)}
    if kind is not None and "ignore_changes" in merged:
        merged["ignore_changes"] = [  # `ignore_changes: null` in defaults sets none
            e for e in merged["ignore_changes"] or () if rules.applies(e.split(".")[0], kind)
        ]
    return {**merged, **own}


def _follows_from_dropped(problem: Problem, dropped: set[str]) -> bool:
    """Keys with shape errors were dropped to check the rest; what follows from that is no news
    (a dropped key may be a misspelling of a required one: skip "required" then too)."""
    path, message = problem
    return path.split(".")[0] in dropped or bool(dropped and message.startswith("required"))


@dataclass
class _FileReader:
    """Reads one file's mappings into desired mappings, collecting every error on the way."""

    loaded: LoadedFile
    defaults: dict[str, Any]
    now: datetime | None
    errors: list[SpecError] = field(default_factory=list)

    def error(self, loc: Path_, message: str) -> None:
        self.errors.append(
            SpecError(self.loaded.path, self.loaded.line_of(loc), dotted(loc), message)
        )

    def check_defaults(self) -> None:
        if "event_source_arn" in self.defaults or "self_managed_event_source" in self.defaults:
            self.error(("defaults",), "a source cannot be a default; name it in each mapping")

    def read_function(self, function: str, items: _Items) -> list[DesiredMapping]:
        """The function's valid mappings; each source once."""
        ref_error = function_ref_error(function)
        if ref_error:
            self.error(("functions", function), ref_error)
        mappings: list[DesiredMapping] = []
        seen: dict[str, int] = {}  # source -> line of its first mapping
        for index, (item, dropped) in enumerate(items):
            if item is None:
                continue  # its shape errors are reported already
            desired = self.read_mapping(function, index, item, dropped)
            if desired is None:
                continue
            if desired.source in seen:
                self.error(
                    ("functions", function, index),
                    f"duplicate mapping: {one_line(function)} already maps "
                    f"{one_line(desired.source)} (line {seen[desired.source]})",
                )
                continue
            seen[desired.source] = desired.line
            mappings.append(desired)
        return mappings

    def read_mapping(
        self, function: str, index: int, item: MappingSpec, dropped: set[str]
    ) -> DesiredMapping | None:
        """The mapping with the file's defaults merged in; None when it has errors."""
        own = item.model_dump(exclude_unset=True)
        merged = _with_defaults(own, self.defaults)
        place = _Placement(("functions", function, index), own, self.defaults)
        found = [
            p for p in check_mapping(merged, now=self.now) if not _follows_from_dropped(p, dropped)
        ]
        for path, message in found:
            self.error(place.location(path), message)
        if dropped or found:
            return None
        return DesiredMapping(
            function=function,
            kind=kind_of(merged),  # type: ignore[arg-type]  # checked above
            settings={k: v for k, v in merged.items() if k not in TOOL_KEYS},
            ignore_changes=tuple(merged.get("ignore_changes") or ()),
            prevent_destroy=bool(merged.get("prevent_destroy")),
            file=self.loaded.path,
            line=self.loaded.line_of(place.base),
            index=index,
            key_lines={
                path: self.loaded.line_of(place.location(path))
                for path in (*rules.CONSUMER_GROUP_PATHS, "event_source_arn")
            },
        )


# -- across files ---------------------------------------------------------------------------------


def _one_owner_errors(files: list[SpecFile]) -> list[SpecError]:
    """A function managed by two files of one region would be fought over; refuse it. (Files
    whose region or profile is left to the command line are checked again once those are
    resolved: ownership.split_by_scope.)"""
    by_path = {spec_file.path: spec_file for spec_file in files}
    claims = (
        Claim((spec_file.region, spec_file.profile, function), function, spec_file.path)
        for spec_file in files
        for function in spec_file.functions
    )
    return [
        SpecError(
            claim.where,
            by_path[claim.where].function_lines[claim.label],
            dotted(("functions", claim.label)),
            f"function is also managed by {first.where}; one file must own it",
        )
        for claim, first in owner_conflicts(claims)
    ]
