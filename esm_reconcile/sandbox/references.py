"""What the specs name (function references, source ARNs), as the sandbox needs it.

The one module of the sandbox that imports the package's parsers: the views here are built on
`model.parse_function_ref` and `model.parse_arn`, never on a parser of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from esm_reconcile.errors import EsmError
from esm_reconcile.model import Arn, function_label, parse_arn
from esm_reconcile.model import FunctionRef as _ParsedRef
from esm_reconcile.model import parse_function_ref as _parse_function_ref

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "Arn",
    "FunctionRef",
    "choose_account",
    "function_label",
    "function_ref",
    "qualified_function_arn",
    "source_arn",
]

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's own default account

_ACCOUNT_ID = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class FunctionRef:
    """A function reference from a spec, with its region settled and its qualifier split."""

    region: str
    account: str | None
    name: str
    qualifier: str | None  # None or "$LATEST": the unpublished function itself

    @property
    def version(self) -> int | None:
        return int(self.qualifier) if self.qualifier and self.qualifier.isdigit() else None

    @property
    def alias(self) -> str | None:
        if self.qualifier in (None, "$LATEST") or self.version is not None:
            return None
        return self.qualifier


def _parsed_ref(ref: str) -> _ParsedRef:
    try:
        return _parse_function_ref(ref)
    except ValueError:
        raise EsmError(f"sandbox: cannot tell which function {ref!r} names") from None


def function_ref(ref: str, default_region: str) -> FunctionRef:
    """`name`, `name:qualifier`, a full function ARN or `ACCOUNT:function:name[:qualifier]`."""
    parsed = _parsed_ref(ref)
    return FunctionRef(
        parsed.region or default_region, parsed.account, parsed.name, parsed.qualifier
    )


def source_arn(arn: str) -> Arn | None:
    """Split an ARN; None for anything that is not one (the spec validator reports those)."""
    return parse_arn(arn)


def qualified_function_arn(requested: Any, region: str, account: str) -> str | None:
    """A FunctionName as a request sends it (name, name:qualifier, partial or full ARN) as a
    full ARN, keeping its qualifier; None for anything that names no function."""
    if not isinstance(requested, str):
        return None
    try:
        return _parse_function_ref(requested).arn(region, account)
    except ValueError:
        return None


def choose_account(
    account_id: str | None, function_refs: Iterable[str], source_arns: Iterable[str]
) -> str:
    """The one account the sandbox hosts: the one asked for or named by the refs and ARNs,
    else moto's default. More than one is an error: moto serves one account per server."""
    named = {account for ref in function_refs if (account := _parsed_ref(ref).account)}
    arns = [arn for arn in map(source_arn, source_arns) if arn is not None]
    named |= {arn.account for arn in arns if _ACCOUNT_ID.match(arn.account)}
    if account_id is not None:
        if not _ACCOUNT_ID.match(account_id):
            raise EsmError(f"sandbox: account id {account_id!r} is not 12 digits")
        named.add(account_id)
    if len(named) > 1:
        raise EsmError(
            "the sandbox hosts a single account, but the specs name " + ", ".join(sorted(named))
        )
    return named.pop() if named else DEFAULT_ACCOUNT_ID
