"""Who manages what, and what a run is limited to: scopes, the one-owner rule and --target.

A function listed in a spec is managed exclusively (apply deletes its mappings the spec does not
list), so two files managing one function would undo each other on every apply: exactly one
owner per function, checked offline by file (validate), once regions and profiles are resolved
(split_by_scope), and once accounts are known by the ARN a name resolves to (check_one_owner).
All three ask `owner_conflicts`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from .checks.functions import region_errors
from .errors import EsmError, SpecError, SpecErrors
from .model import Spec, SpecFile, function_of_address, parse_function_ref
from .plan import Plan


@dataclass(frozen=True)
class Claim:
    """A file's claim on a function: `key` is the function as far as it is known (a label in
    a region and profile, or a resolved ARN), `label` as the file names it, `where` the file."""

    key: Hashable
    label: str
    where: str


def owner_conflicts(claims: Iterable[Claim]) -> list[tuple[Claim, Claim]]:
    """Each claim on a function that another file claimed first, with that first claim."""
    first: dict[Hashable, Claim] = {}
    conflicts: list[tuple[Claim, Claim]] = []
    for claim in claims:
        earlier = first.setdefault(claim.key, claim)
        if earlier is not claim and (earlier.where, earlier.label) != (claim.where, claim.label):
            conflicts.append((claim, earlier))
    return conflicts


@dataclass
class Scope:
    """The files of one run that go to one region with one set of credentials."""

    region: str | None  # None: boto3 finds none; connect() says so
    profile: str | None
    spec: Spec

    @property
    def name(self) -> str:
        return (self.region or "(no region)") + (
            f" (profile {self.profile})" if self.profile else ""
        )


def split_by_scope(
    spec: Spec,
    region: str | None,
    profile: str | None,
    region_of_profile: Callable[[str | None], str | None],
) -> list[Scope]:
    """Group files by where they go: a file's own region and profile, else the command line's,
    else the AWS config's (`region_of_profile`, no API call)."""
    grouped: dict[tuple[str | None, str | None], list[SpecFile]] = {}
    misplaced: list[SpecError] = []
    for spec_file in spec.files:
        file_profile = spec_file.profile or profile
        file_region = spec_file.region or region or region_of_profile(file_profile)
        grouped.setdefault((file_region, file_profile), []).append(spec_file)
        if not spec_file.region:
            # Offline validation could not know where this file goes; now it is known.
            misplaced += region_errors(spec_file, file_region)
    if misplaced:
        raise SpecErrors(misplaced)
    scopes = [Scope(r, p, Spec(files)) for (r, p), files in grouped.items()]
    claims = (
        Claim((scope.name, function), function, spec_file.path)
        for scope in scopes
        for spec_file in scope.spec.files
        for function in spec_file.functions
    )
    for claim, first in owner_conflicts(claims)[:1]:
        scope_name, _ = claim.key  # type: ignore[misc]
        raise EsmError(
            f"{claim.where}: function {claim.label} in {scope_name} is also managed "
            f"by {first.where}; one file must own it"
        )
    return scopes


def check_one_owner(resolved: Iterable[tuple[Scope, str, str, str]]) -> None:
    """One owner per function by the ARN it resolves to: `orders` and its full ARN are one
    function, and two profiles may reach one account. `resolved`: each scope with its region,
    account and partition."""
    claims = (
        Claim(
            parse_function_ref(label).arn(region, account, partition),
            label,
            f"{spec_file.path} ({scope.name})",
        )
        for scope, region, account, partition in resolved
        for spec_file in scope.spec.files
        for label in spec_file.functions
    )
    for claim, first in owner_conflicts(claims)[:1]:
        raise EsmError(
            f"function {claim.key} is managed as {first.label} in {first.where} and as "
            f"{claim.label} in {claim.where}; one file must own it, under one name"
        )


def check_targets(spec: Spec, targets: tuple[str, ...]) -> None:
    """Every --target names a function of the spec (or a mapping of one)."""
    unknown = [t for t in targets if function_of_address(t) not in spec.functions]
    if unknown:
        raise EsmError(
            "--target names no function of the spec: "
            + ", ".join(unknown)
            + " (use a function as the spec names it, or an address as the plan prints it)"
        )


def apply_targets(plan: Plan, targets: tuple[str, ...]) -> Plan:
    """Keep only the changes a --target names: a function as the spec names it, or an address.
    The targets were checked against the whole run's spec (check_targets)."""
    plan.changes = [
        c for c in plan.changes if c.address in targets or function_of_address(c.address) in targets
    ]
    plan.warnings.append(
        "targeting is in effect (" + ", ".join(targets) + "): other changes are not shown "
        "and will not be applied"
    )
    return plan
