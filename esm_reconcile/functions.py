"""Function references as a spec names them, and the qualified ARN AWS reports for them.

AWS keys mappings by the function ARN it returns: a bare name or unqualified ARN comes back
unqualified; `name:$LATEST`, `name:3` and `name:alias` come back with that qualifier
(reference A.4). So `name` and `name:live` are different functions here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = r"[a-zA-Z0-9_-]{1,64}"
_QUALIFIER = r"\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]{1,128}"
_REF = re.compile(
    rf"^(?:arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z]{{2}}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):"
    rf"(?P<account>\d{{12}}):function:|(?P<partial_account>\d{{12}}):function:)?"
    rf"(?P<name>{_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$"
)


@dataclass(frozen=True)
class FunctionRef:
    name: str
    qualifier: str | None = None
    region: str | None = None
    account: str | None = None
    partition: str | None = None

    def arn(self, region: str, account: str, partition: str = "aws") -> str:
        base = (
            f"arn:{self.partition or partition}:lambda:{self.region or region}:"
            f"{self.account or account}:function:{self.name}"
        )
        return f"{base}:{self.qualifier}" if self.qualifier else base


def parse_function_ref(ref: str) -> FunctionRef:
    """`name`, `name:qualifier`, `ACCOUNT:function:name[:q]` or a full function ARN."""
    match = _REF.fullmatch(ref)  # `$` alone would also accept a trailing newline
    if match is None:
        raise ValueError("not a function reference: use name, name:qualifier, or a function ARN")
    return FunctionRef(
        name=match["name"],
        qualifier=match["qualifier"],
        region=match["region"],
        account=match["account"] or match["partial_account"],
        partition=match["partition"],
    )


def function_label(function_arn: str) -> str:
    """`arn:...:function:name[:q]` → `name[:q]`, for addresses of unlisted mappings."""
    return function_arn.split(":function:", 1)[-1]
