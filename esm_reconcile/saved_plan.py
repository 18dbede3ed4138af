"""Saved plans (`esm plan --out`, `esm apply PLANFILE`): the file format. Pure: no AWS here.

A saved plan records everything its changes were derived from: the spec files' full text, the
region, account and partition, the spec's profile, the targets, and every live mapping of the
managed functions as the plan saw it. It sits in an artifact store between review and merge, so
it is untrusted input: `load` accepts only what the typed, versioned model below describes and
refuses anything else with one line naming the file and the place. reconcile.verified_plans then
re-derives the changes from what the file recorded and refuses the file when the stored changes
differ; apply executes the re-derived plan, never the stored requests.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from . import strict_json
from .errors import EsmError
from .model import LiveMapping
from .plan import Action, Change

KIND = "esm-saved-plan"
BUNDLE_KIND = "esm-saved-plans"  # several regions or accounts: one document each
VERSION = 2
# Bounds on what apply is willing to read: far above any real plan, far below what hurts.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NESTING = 100  # JSON depth; deeper recursion is where json and pydantic give up
SHOWN_CHARS = 120  # of a value quoted in an error: file contents must not flood a log line

Text = Annotated[str, Field(min_length=1)]
# Values that messages print as they are must not carry line breaks or terminal escapes.
MappingUuid = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
SettingName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,127}$")]


class _Strict(BaseModel):
    # Exactly what esm writes: no unknown keys, no "5" for 5, no true for 1.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SavedFieldChange(_Strict):
    name: Text
    before: JsonValue
    after: JsonValue
    forces_replacement: bool


class SavedTagChanges(_Strict):
    arn: str | None
    set: dict[str, str]
    remove: list[str]


class SavedChange(_Strict):
    """One plan.Change, field for field (tests/test_saved_plan_untrusted.py keeps them in step)."""

    action: Action
    address: Text
    function_arn: Text
    event_source: Text
    uuid: MappingUuid | None
    fields: list[SavedFieldChange]
    kind: str
    create_request: dict[str, JsonValue] | None
    update_request: dict[str, JsonValue] | None
    tag_changes: SavedTagChanges | None
    warnings: list[str]
    wait_gone: list[MappingUuid]
    prevent_destroy: bool = False  # absent in plans saved before the key existed

    @field_validator("uuid")
    @classmethod
    def _uuid_fits_action(cls, uuid: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        if action == "create" and uuid is not None:
            raise ValueError("a create has no uuid yet")
        if action in ("update", "replace", "delete") and not uuid:
            raise ValueError(f"{with_article(action)} needs the uuid of the mapping it changes")
        return uuid

    @field_validator("create_request")
    @classmethod
    def _request_fits_action(
        cls, request: dict[str, Any] | None, info: ValidationInfo
    ) -> dict[str, Any] | None:
        action = info.data.get("action")
        if action in ("create", "replace") and request is None:
            raise ValueError(f"{with_article(action)} needs its create_request")
        return request


def with_article(action: str) -> str:
    return ("an " if action[0] in "aeiou" else "a ") + action


class ObservedMapping(_Strict):
    """A live mapping of a managed function as the plan saw it: what diff.diff reads."""

    uuid: MappingUuid
    function_arn: str
    state: str
    settings: dict[SettingName, JsonValue]  # spec form
    esm_arn: str | None
    tags: dict[str, str] | None  # None: not read (the spec does not manage its tags)

    @classmethod
    def of(cls, mapping: LiveMapping) -> ObservedMapping:
        try:
            return cls.model_validate(
                jsonable(
                    {
                        "uuid": mapping.uuid,
                        "function_arn": mapping.function_arn,
                        "state": mapping.state,
                        "settings": mapping.settings,
                        "esm_arn": mapping.esm_arn,
                        "tags": mapping.tags,
                    }
                )
            )
        except ValidationError as exc:  # an endpoint that answers oddly, not a file
            first = exc.errors(include_url=False, include_input=False)[0]
            raise EsmError(
                f"mapping {shown(mapping.uuid)}: unexpected read-back: "
                f"{location(first['loc'])}: {first['msg']}"
            ) from None

    def to_live(self) -> LiveMapping:
        return LiveMapping(
            uuid=self.uuid,
            function_arn=self.function_arn,
            state=self.state,
            settings=copy.deepcopy(self.settings),
            esm_arn=self.esm_arn,
            tags=dict(self.tags) if self.tags is not None else None,
        )


class SavedSpecFile(_Strict):
    path: Text
    text: str


class SavedScopePlan(_Strict):
    """The plan of one region and account, with what it was derived from."""

    kind: Literal["esm-saved-plan"]
    version: Literal[2]
    # As boto3 accepted it (a region from the AWS config need not look like AWS's own).
    region: Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]
    account: Annotated[str, Field(pattern=r"^\d{12}$")]
    partition: Annotated[str, Field(pattern=r"^aws(-[a-z]+)*$")]
    profile: str | None  # the spec's own; a --profile given to plan was the runner's
    targets: list[Text]
    spec_files: Annotated[list[SavedSpecFile], Field(min_length=1)]
    observed_mappings: list[ObservedMapping]
    changes: list[SavedChange]

    @property
    def name(self) -> str:
        """As reconcile.Scope names it in messages."""
        return self.region + (f" (profile {self.profile})" if self.profile else "")


class SavedPlanBundle(_Strict):
    kind: Literal["esm-saved-plans"]
    version: Literal[2]
    plans: Annotated[list[SavedScopePlan], Field(min_length=2)]  # one is written unbundled


# -- writing ------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """`value` as it comes back from a saved plan (timestamps become text, tuples lists)."""
    return json.loads(json.dumps(value, default=str))


def saved_change(change: Change) -> dict[str, Any]:
    """A change in saved form: plain JSON, the form stored and re-derived changes compare in."""
    return jsonable(asdict(change))


def record(
    *,
    spec_files: list[tuple[str, str]],
    region: str,
    account: str,
    partition: str,
    profile: str | None,
    targets: tuple[str, ...],
    observed: list[LiveMapping],
    changes: list[Change],
) -> SavedScopePlan:
    """One region's saved plan: spec files as (path, full text), every live mapping of the
    managed functions (Deleting ones too: diff waits for them), and the plan's changes."""
    document = {
        "kind": KIND,
        "version": VERSION,
        "region": region,
        "account": account,
        "partition": partition,
        "profile": profile,
        "targets": list(targets),
        "spec_files": [{"path": path, "text": text} for path, text in spec_files],
        "observed_mappings": [ObservedMapping.of(m).model_dump() for m in observed],
        "changes": [saved_change(c) for c in changes],
    }
    try:
        return SavedScopePlan.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise EsmError(f"cannot save the plan: {location(first['loc'])}: {first['msg']}") from None


def dumps(plans: list[SavedScopePlan]) -> str:
    """The file's text: one region's document as is, several in a bundle. Refuses a plan that
    `load` would refuse (too large, nested too deeply) rather than write one apply cannot read."""
    parts = [p.model_dump(mode="json") for p in plans]
    document = (
        parts[0] if len(parts) == 1 else {"kind": BUNDLE_KIND, "version": VERSION, "plans": parts}
    )
    if strict_json.depth(document) > MAX_NESTING:
        raise EsmError(
            f"cannot save the plan: its data nests deeper than {MAX_NESTING} levels, "
            "more than a saved plan may"
        )
    text = json.dumps(document, indent=1)
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise EsmError(
            f"cannot save the plan: it would take more than {MAX_FILE_BYTES // 2**20} MiB, "
            "more than a saved plan may"
        )
    return text


# -- reading ------------------------------------------------------------------------------------


def load(path: str) -> list[SavedScopePlan]:
    """Each region's saved plan from a file, typed and checked; EsmError (one line) otherwise."""
    too_big = (
        f"{path}: not a saved plan: larger than {MAX_FILE_BYTES // 2**20} MiB, "
        "more than a saved plan may be"
    )
    try:
        with open(path, "rb") as handle:
            # A regular file says its size up front; a pipe or device is read up to the bound.
            size = _size(handle)
            if size > MAX_FILE_BYTES:
                raise EsmError(too_big)
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise EsmError(f"{path}: cannot read saved plan: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise EsmError(too_big)
    return parse(raw, path)


def _size(handle: Any) -> int:
    info = os.fstat(handle.fileno())
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def parse(raw: bytes, source: str) -> list[SavedScopePlan]:
    """The saved plans in a file's bytes; `source` names the file in errors."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EsmError(f"{source}: not a saved plan (not UTF-8 text)") from None
    try:
        document = strict_json.loads(text)
    except RecursionError:
        raise EsmError(
            f"{source}: damaged saved plan: nested deeper than a saved plan may be"
        ) from None
    except json.JSONDecodeError as exc:
        raise EsmError(
            f"{source}: not a saved plan, or a damaged one: not valid JSON "
            f"({exc.msg}: line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:  # a duplicate key, NaN, an integer beyond Python's digit limit
        problem = str(exc)
        if "integer string conversion" in problem:
            problem = "a number with more digits than a saved plan may have"
        raise EsmError(f"{source}: damaged saved plan: {_one_line(problem)}") from None
    if strict_json.depth(document) > MAX_NESTING:
        raise EsmError(
            f"{source}: damaged saved plan: nested deeper than {MAX_NESTING} levels, "
            "more than a saved plan may be"
        )
    _check_kind_and_version(document, source)
    try:
        if document["kind"] == BUNDLE_KIND:
            return list(SavedPlanBundle.model_validate(document).plans)
        return [SavedScopePlan.model_validate(document)]
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        message = _one_line(str(first["msg"]).removeprefix("Value error, "))
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise EsmError(
            f"{source}: damaged saved plan: {location(first['loc'])}: {message}{more}"
        ) from None


def _check_kind_and_version(document: Any, source: str) -> None:
    if not isinstance(document, dict) or document.get("kind") not in (KIND, BUNDLE_KIND):
        raise EsmError(f"{source}: not a saved plan (write one with: esm plan --out FILE)")
    version = document.get("version")
    if type(version) is int and version < VERSION:
        raise EsmError(
            f"{source}: saved plan format version {version} was made by an older esm; plan again"
        )
    if type(version) is int and version > VERSION:
        raise EsmError(
            f"{source}: saved plan format version {version} was made by a newer esm "
            f"(this one reads version {VERSION}); apply it with that esm, or plan again"
        )


# -- comparing ----------------------------------------------------------------------------------


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def location(loc: tuple[str | int, ...]) -> str:
    """`plans[0].changes[3].uuid`; a key from the file that is not plain is quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":  # pydantic: the problem is the dict key itself
            out += " (key)"
        else:
            name = part if _PLAIN_KEY.match(part) else shown(part)
            out += f".{name}" if out else name
    return out or "(document)"


def shown(value: Any) -> str:
    """A value from a file, quoted for a one-line message and cut short."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 4 * SHOWN_CHARS else flat[: 4 * SHOWN_CHARS - 1] + "…"
