"""Live mappings as plain data, converted from Get/List responses (pure; no AWS calls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .normalize import kind_of, source_label
from .rules import Kind
from .spec import from_api


@dataclass
class LiveMapping:
    uuid: str
    function_arn: str
    state: str
    settings: dict[str, Any]  # spec form
    esm_arn: str | None = None
    tags: dict[str, str] | None = None  # read only when the spec manages this mapping's tags
    last_modified: str | None = None

    @property
    def kind(self) -> Kind | None:
        return kind_of(self.settings)

    @property
    def source(self) -> str:
        return source_label(self.settings)

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> LiveMapping:
        modified = response.get("LastModified")
        return cls(
            uuid=response["UUID"],
            function_arn=response.get("FunctionArn", ""),
            state=response.get("State", ""),
            settings=from_api(response),
            esm_arn=response.get("EventSourceMappingArn"),
            last_modified=modified.isoformat() if hasattr(modified, "isoformat") else modified,
        )
