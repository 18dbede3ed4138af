"""What every mapping rule is given and returns, and how rules read a nested setting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..rules import Kind

# (dotted field path inside the mapping, message), e.g. ("batch_size", "at most 10 for ...").
Problem = tuple[str, str]


@dataclass(frozen=True)
class RuleContext:
    """What a rule needs beyond the mapping itself."""

    now: datetime  # a starting timestamp must not be later than this


# A rule: the mapping's merged settings (spec form), its source kind, the context.
MappingRule = Callable[[dict[str, Any], Kind, RuleContext], list[Problem]]


def member(settings: dict[str, Any], path: str) -> Any:
    """The value at `object.member` in the settings; None when either is not given."""
    parent, name = path.split(".")
    return (settings.get(parent) or {}).get(name)
