"""The building blocks of the spec's pydantic models: their common base (ApiModel), AWS's
patterns anchored to match a whole value, and `api_field`, which declares a setting by its
CreateEventSourceMapping parameter name."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


def matching_whole(pattern: str) -> str:
    """An AWS pattern that must match the whole value. Python's `$` also matches before a final
    newline, so "name\n" would pass; `$(?!\n)` does not, and in JSON Schema's dialect (the
    schema shows these patterns) it means just `$`. A `$` inside [...] is a character."""
    return re.sub(r"(?<!\\)\$(?![^\[]*\])", r"$(?!\\n)", pattern)


Arn = Annotated[
    str,
    Field(
        pattern=matching_whole(
            r"^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$"
        )
    ),
]
AccessUri = Annotated[
    str, Field(min_length=1, max_length=200, pattern=matching_whole(r"^[a-zA-Z0-9-\/*:_+=.@-]*$"))
]


class ApiModel(BaseModel):
    # python-re: AWS patterns use look-ahead, which the default Rust engine lacks.
    # strict: YAML `true` is not a batch size, and "10" is not a number.
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, regex_engine="python-re", strict=True
    )


def api_field(name: str, description: str, **kwargs: Any) -> Any:
    """An optional setting whose API (CreateEventSourceMapping) name is `name`; a `pattern`
    must match the whole value."""
    if "pattern" in kwargs:
        kwargs["pattern"] = matching_whole(kwargs["pattern"])
    return Field(None, serialization_alias=name, description=description, **kwargs)
