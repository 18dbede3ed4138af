"""The spec format as pydantic models: one source for parsing, field ranges and the JSON Schema.

Each field's `serialization_alias` is its CreateEventSourceMapping parameter name, so a model
converts to an API request with `to_api` and a read-back converts into spec form with `from_api`.
Shape rules (types, ranges, enums, patterns) live in the models; per-kind rules live in rules.py
and are checked by validate.py.

This module holds the document (SpecDocument) and is where the rest of the spec format is
imported from: the models' building blocks are in spec_fields.py, filter patterns in
filter_patterns.py, one mapping's settings in mapping_settings.py, and the conversions between
spec form and API form in api_form.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

# Re-exported: validation, the model and tests import these names from here.
from .api_form import field_paths as field_paths
from .api_form import from_api as from_api
from .api_form import to_api as to_api
from .filter_patterns import canonical_pattern as canonical_pattern
from .mapping_settings import TOOL_KEYS as TOOL_KEYS
from .mapping_settings import MappingSettings as MappingSettings
from .mapping_settings import MappingSpec as MappingSpec
from .spec_fields import ApiModel, matching_whole

# SPEC: top-level keys starting with x- are ignored (they hold YAML anchors for reuse).
EXTENSION_KEY_PATTERN = "^x-"


def is_extension_key(key: Any) -> bool:
    """A top-level key the spec ignores (x-common: &common {...})."""
    return isinstance(key, str) and key.startswith("x-")


class SpecDocument(ApiModel):
    """A spec file, version 1."""

    model_config = ConfigDict(
        extra="forbid",
        regex_engine="python-re",
        strict=True,
        title="esm-reconcile spec",
        json_schema_extra={
            "$id": "https://esm-reconcile/spec-v1.json",
            "patternProperties": {
                EXTENSION_KEY_PATTERN: {
                    "description": "Ignored: a place for YAML anchors to reuse, as in compose "
                    "files (x-common: &common {batch_size: 5}, then <<: *common in a mapping)."
                }
            },
        },
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_extension_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not is_extension_key(k)}
        return data

    version: Literal[1] = Field(description="Spec format version; always 1.")
    region: str | None = Field(
        None,
        description="AWS region; else --region, else the AWS config.",
        pattern=matching_whole(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"),
    )
    account_id: str | None = Field(
        None,
        description="Refuse to run against any other account.",
        pattern=matching_whole(r"^\d{12}$"),
    )
    profile: str | None = Field(
        None,
        description="AWS shared-config profile for this file's account; else --profile, else "
        "the default credential chain. Files of different regions or profiles are planned and "
        "applied concurrently, each with its own rate limit.",
        min_length=1,
    )
    defaults: MappingSpec | None = Field(
        None, description="Merged into every mapping; a mapping's own keys win."
    )

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_is_quoted(cls, value: Any) -> Any:
        if isinstance(value, int):
            # YAML reads 012345678901 as a number (octal, even): the id must be a string.
            raise ValueError('write the account id as a quoted string, e.g. "123456789012"')
        return value

    functions: dict[str, list[MappingSpec]] = Field(
        description="Managed functions (name, name:qualifier, or ARN) and their exact mappings."
    )
