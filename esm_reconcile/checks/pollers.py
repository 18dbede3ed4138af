"""provisioned_poller_config: how many pollers, and not beside maximum concurrency (reference
A.8)."""

from __future__ import annotations

from typing import Any

from .. import rules
from ..rules import KIND_NAMES, Kind
from .context import Problem, RuleContext

_MINIMUM = "provisioned_poller_config.minimum_pollers"
_MAXIMUM = "provisioned_poller_config.maximum_pollers"


def poller_counts_in_range(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    pollers = settings.get("provisioned_poller_config") or {}
    minimum, maximum = pollers.get("minimum_pollers"), pollers.get("maximum_pollers")
    low, high = rules.MIN_POLLERS.get(kind, 1), rules.MAX_POLLERS.get(kind)
    name = KIND_NAMES[kind]
    problems: list[Problem] = []
    if minimum is not None and minimum < low:
        problems.append((_MINIMUM, f"at least {low} for {name} sources"))
    if maximum is not None and maximum < low:
        problems.append((_MAXIMUM, f"at least {low} for {name} sources"))
    if maximum is not None and high is not None and maximum > high:
        problems.append((_MAXIMUM, f"at most {high} for {name} sources"))
    if minimum is not None and maximum is not None and minimum > maximum:
        problems.append((_MINIMUM, "must not exceed maximum_pollers"))
    return problems


def pollers_exclude_max_concurrency(
    settings: dict[str, Any], kind: Kind, context: RuleContext
) -> list[Problem]:
    # Where the kind takes no scaling_config, that field is refused already.
    if not (
        settings.get("provisioned_poller_config")
        and settings.get("scaling_config")
        and rules.applies("scaling_config", kind)
    ):
        return []
    return [
        ("scaling_config", "maximum concurrency and provisioned pollers are mutually exclusive")
    ]
