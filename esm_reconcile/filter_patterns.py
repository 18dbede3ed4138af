"""Event filter patterns: the spec's Filter model, the grammar AWS holds a pattern to, and the
one canonical text of a pattern (key order and spacing do not matter)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import Field, field_validator

from . import strict_json
from .errors import MAX_DEPTH, one_line
from .spec_fields import ApiModel


class Filter(ApiModel):
    pattern: dict[str, Any] | Annotated[str, Field(max_length=4096)] = Field(
        serialization_alias="Pattern",
        description="An event filter pattern: a YAML mapping or a JSON string (same meaning).",
    )

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern_type(cls, value: Any) -> Any:
        # One clear error for a wrong type, not one per member of the union.
        if not isinstance(value, dict | str):
            raise ValueError("pattern must be a mapping or a JSON string")
        if isinstance(value, str) and len(value) > 4096:
            raise ValueError("pattern is longer than 4096 characters")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_is_json_object(cls, value: dict[str, Any] | str) -> dict[str, Any] | str:
        parsed = value
        if isinstance(value, str):
            try:
                parsed = strict_json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"pattern is not valid JSON: {exc.msg}") from None
            except ValueError as exc:  # NaN, Infinity, a key given twice
                raise ValueError(f"pattern is not valid JSON: {exc}") from None
            except RecursionError:
                raise ValueError(f"pattern is nested deeper than {MAX_DEPTH} levels") from None
        if not isinstance(parsed, dict) or not parsed:
            raise ValueError("pattern must be a non-empty JSON object")
        # Before anything recursive (the checks below, json.dumps) meets it: 4096 characters
        # of JSON nest up to 800 levels.
        if strict_json.depth(parsed) > MAX_DEPTH:
            raise ValueError(f"pattern is nested deeper than {MAX_DEPTH} levels")
        problem = _pattern_problem(parsed, "")
        if problem:
            raise ValueError(
                f"invalid filter pattern: {problem} (AWS: Invalid filter pattern definition.)"
            )
        if len(canonical_pattern(parsed)) > 4096:
            raise ValueError("pattern is longer than 4096 characters")
        return value


def _pattern_problem(node: dict[str, Any], path: str) -> str | None:
    """EventBridge-style grammar: each key holds a nested object or a non-empty array, and
    everything in it is JSON (a YAML date, binary or .nan is not)."""
    for key, value in node.items():
        where = f"{path}.{one_line(key)}" if path else one_line(key)
        if isinstance(value, dict):
            if not value:
                return f"{where} is an empty object"
            problem = _pattern_problem(value, where)
            if problem:
                return problem
        elif not isinstance(value, list):
            return f"{where} must be an array of values or matchers, not {_shown(value)}"
        elif not value:
            return f"{where} is an empty array"
        else:
            problem = _not_json(value, where)
            if problem:
                return problem
    return None


def _not_json(value: Any, where: str) -> str | None:
    """Why `value` (inside a pattern's array) is not JSON data, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} holds {value}, which is not a JSON number"
    if value is None or isinstance(value, str | int | float):
        return None
    if isinstance(value, list):
        return next((p for p in (_not_json(v, where) for v in value) if p), None)
    if isinstance(value, dict):
        return next(
            (p for p in (_not_json(v, f"{where}.{one_line(k)}") for k, v in value.items()) if p),
            None,
        )
    return f"{where} holds a {type(value).__name__}, which is not JSON (quote it)"


def _shown(value: Any) -> str:
    """A pattern value for a message: JSON where it is JSON, else its type."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return f"a {type(value).__name__}"


def canonical_pattern(pattern: dict[str, Any] | str) -> str:
    """One text per meaning: key order and spacing do not matter."""
    parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"))


class FilterCriteria(ApiModel):
    filters: list[Filter] = Field(
        default_factory=list,
        serialization_alias="Filters",
        description="Up to 10 filters (5 by default quota); an event matching any filter is processed.",
    )
