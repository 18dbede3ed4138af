"""JSON Schema of the spec format, generated from the pydantic models."""

from __future__ import annotations

from typing import Any

from .spec import SpecDocument


def spec_schema() -> dict[str, Any]:
    schema = SpecDocument.model_json_schema(by_alias=False)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return schema
